#!/usr/bin/env bash
# Build the libFuzzer targets (clang 14, ASan + UBSan) into ./build-sanitize
# and run each one in turn, one at a time, at a lower priority (nice).
# Usage: scripts/fuzz.sh [--seconds N] [--merge] [--build-only | --no-build] [TARGET...]
#   --seconds N   how long each target runs (default 30)
#   --merge       afterwards, fold the inputs that add coverage into the
#                 seed corpus, tests/fuzz/corpus/<target>/ (for a commit)
#   --build-only  build, run nothing
#   --no-build    run the targets as last built (e.g. two runs side by side)
#   TARGET        only these (default: every one, see TARGETS below)
# Fails when a target crashes, hangs, leaks, runs out of memory or a
# sanitizer reports anything; the input that did it is kept in
# build-sanitize/fuzz/findings/<target>/ and the log in
# build-sanitize/fuzz/logs/<target>.log. New corpus entries stay in
# build-sanitize/fuzz/corpus/<target>/ (out of the repository), where the
# next run starts from them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGETS=(key_codec headers signature index_record internal_api master_http volume_http)

seconds=30
merge=0
build_only=0
no_build=0
targets=()
while (($#)); do
  case "$1" in
    --seconds)
      seconds="$2"
      shift 2
      ;;
    --merge)
      merge=1
      shift
      ;;
    --build-only)
      build_only=1
      shift
      ;;
    --no-build)
      no_build=1
      shift
      ;;
    -h | --help)
      sed -n '2,18p' "$0"
      exit 0
      ;;
    -*)
      echo "fuzz: unknown option $1" >&2
      exit 2
      ;;
    *)
      targets+=("$1")
      shift
      ;;
  esac
done
((${#targets[@]})) || targets=("${TARGETS[@]}")
for target in "${targets[@]}"; do
  if [[ ! -d tests/fuzz/corpus/$target ]]; then
    echo "fuzz: no target $target (known: ${TARGETS[*]})" >&2
    exit 2
  fi
done

# The sanitized build scripts/test.sh --sanitize uses too (one build for
# both, see cmake/Sanitizers.cmake); only the fuzz targets are built here.
build=build-sanitize
((no_build)) || bash scripts/build.sh --sanitize --target "${targets[@]/#/fuzz_}"
((build_only)) && exit 0

# Reports must be readable: symbolized, and UBSan's with a stack.
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[[ -x $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

# The daemons' data goes to memory when it can: their fsyncs then cost
# nothing, and a crashed run leaves nothing on disk.
scratch_root=$build/fuzz/scratch
[[ -d /dev/shm && -w /dev/shm ]] && scratch_root=/dev/shm
scratch=""
trap 'if [[ -n $scratch ]]; then rm -rf "$scratch"; fi' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus=$build/fuzz/corpus/$target
  findings=$build/fuzz/findings/$target
  log=$build/fuzz/logs/$target.log
  mkdir -p "$corpus" "$findings" "$(dirname "$log")" "$scratch_root"
  scratch=$(mktemp -d "$scratch_root/kalavara-fuzz-$target.XXXXXX")
  args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
    -artifact_prefix="$findings/")
  [[ $target == *_http ]] && args+=(-dict=tests/fuzz/http.dict)
  echo "fuzz: $target for ${seconds}s (log: $log)"
  # New inputs go to the first folder; the seeds are only read.
  status=0
  KALAVARA_FUZZ_TMP=$scratch nice -n 10 "$build/bin/fuzz_$target" "${args[@]}" \
    "$corpus" "tests/fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line: "#N ... cov: C ft: F corp: ..." (edges, features).
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p')
  line="$target: ${execs:-?} execs, ${rate:-?}/s, ${cov:-cov ?}"
  if ((status != 0)); then
    failed+=("$target")
    line+=" FAILED (exit $status)"
    echo "fuzz: $target failed; the end of its log:" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$line")
  if ((merge && status == 0)); then
    echo "fuzz: merging $target's new inputs into tests/fuzz/corpus/$target"
    # By edges only (-use_counters=0): the set that keeps every edge
    # reached, not every hit count's bucket, stays a few hundred files.
    KALAVARA_FUZZ_TMP=$scratch nice -n 10 "$build/bin/fuzz_$target" -merge=1 -use_counters=0 \
      -timeout=30 -detect_leaks=0 "tests/fuzz/corpus/$target" "$corpus" >>"$log" 2>&1
  fi
  rm -rf "$scratch"
  scratch=""
done

printf 'fuzz: %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]} (inputs in $build/fuzz/findings/)" >&2
  exit 1
fi
