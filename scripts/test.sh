#!/usr/bin/env bash
# Build everything, then run the test suite.
# Usage: scripts/test.sh [--sanitize] [extra ctest args, e.g. -R Volume]
#   --sanitize  build with AddressSanitizer and UBSan into ./build-sanitize
#               (scripts/build.sh --sanitize) and run the same tests there,
#               but those that bound memory; any report fails the run, also
#               one from a daemon a test started
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ "${1:-}" != "--sanitize" ]]; then
  bash scripts/build.sh
  # exec so the script's exit status is exactly ctest's.
  exec ctest --test-dir build --output-on-failure \
    -j "${KALAVARA_TEST_JOBS:-2}" --timeout 600 "$@"
fi
shift

# The same build scripts/fuzz.sh runs the fuzz targets of (clang 14, see
# cmake/Sanitizers.cmake): CI compiles the project twice, not three times.
build=build-sanitize
bash scripts/build.sh --sanitize
# Every process the tests start, the daemons included, writes its report to
# a file here instead of to a stderr a test may never show (a daemon's is
# often thrown away); any file at the end fails the run.
logs=$PWD/$build/sanitizer-reports
rm -rf "$logs"
mkdir -p "$logs"
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [[ -x $symbolizer ]]; then export ASAN_SYMBOLIZER_PATH=$symbolizer; fi
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$logs/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan:${UBSAN_OPTIONS:-}"

# Excluded: the tests that bound a process's resident memory. The
# sanitizers' shadow memory and quarantine of freed blocks inflate it
# several times over, so they measure the sanitizer, not kalavara; the
# normal run keeps them.
rss_tests='Streaming\.LargeValueStreamsWithBoundedMemory'
rss_tests+='|MaintenanceMemory\.'
rss_tests+='|VolumeAdmin\.CopyPullsAValueFromAnotherVolumeCheckedAgainstItsETag'

status=0
# The fault suite (label faults) runs in the plain build only: its load and
# its LD_PRELOAD shim are about the daemons' behaviour under faults, which
# the sanitizers' slowdown would only stretch (scripts/fault-tests.sh runs
# it in full).
ctest --test-dir "$build" --output-on-failure -j "${KALAVARA_TEST_JOBS:-2}" --timeout 900 \
  -E "$rss_tests" -LE faults "$@" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "test: sanitizer reports:" >&2
  for report in "$logs"/*; do
    echo "--- $report" >&2
    cat "$report" >&2
  done
  status=1
fi
exit "$status"
