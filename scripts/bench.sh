#!/usr/bin/env bash
# Benchmarks kalavara against nginx on this machine, in one run, and writes
# the table to docs/benchmarks.md (issue 4). Not part of the test suite.
#
# Usage: scripts/bench.sh [--quick] [--threads N] [--out FILE]
#   --quick      every figure shortened (about a minute in all); the table says so
#   --threads N  worker threads of each daemon (-t N), nginx worker_processes N
#                and wrk threads (default 1)
#   --out FILE   where to write the table (default docs/benchmarks.md)
#
# Installs wrk and nginx-light with apt-get when missing, builds a Release
# tree in build-bench/, runs every daemon and nginx on 127.0.0.1 (free ports)
# in a temporary folder that is removed at the end, and touches nothing else.
# nginx_pids prints a list of pids that is split into words on purpose.
# shellcheck disable=SC2046
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

quick=0
threads=1
out=docs/benchmarks.md
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --threads) threads=${2:?--threads needs a number}; shift ;;
    --out) out=${2:?--out needs a file}; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --threads must be a positive number" >&2; exit 2; }

# --- sizes of every figure ---------------------------------------------------
if ((quick)); then
  wrk_seconds=2          # each wrk run
  paced_seconds=3        # figure 7
  cycle_seconds=3        # figure 4
  keys_small=10000       # figure 6 baseline
  keys_fig1=10000        # figures 1, 2, 7
  keys_large=100000      # figure 6
  files_4k=1000          # figure 3
  files_1m=200
  big_bytes=$((64 << 20)) # figure 5
  load_budget=60         # seconds the index loader may take for keys_large
else
  wrk_seconds=10
  paced_seconds=10
  cycle_seconds=10
  keys_small=100000
  keys_fig1=1000000
  keys_large=10000000
  files_4k=10000
  files_1m=10000
  big_bytes=$((1 << 30))
  load_budget=300
fi
connections=100

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  log "$*"
  # The daemons' logs say why, before the temporary folder goes.
  local f
  for f in "${work:-/nonexistent}"/*.log "${work:-/nonexistent}"/nginx/logs/error.log; do
    [[ -f $f ]] && { log "--- tail of $f"; tail -n 5 "$f" >&2; }
  done
  exit 1
}

# --- tools -------------------------------------------------------------------
install_tools() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "install ${missing[*]} by hand (no apt-get)"
  local as_root=(env)
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} by hand"
    if [[ -t 0 ]]; then as_root=(sudo env); else as_root=(sudo -n env); fi
  fi
  log "installing ${missing[*]}"
  "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -y -q update
  "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get -y -q install --no-install-recommends "${missing[@]}"
}
install_tools
bash scripts/install-deps.sh
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- build -------------------------------------------------------------------
if [[ ! -f build-bench/build.ninja ]]; then
  configure=(cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DKALAVARA_BUILD_TESTS=OFF)
  command -v ccache >/dev/null 2>&1 && configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  "${configure[@]}" >&2
fi
cmake --build build-bench -j "${KALAVARA_JOBS:-$(nproc)}" --target kalavara-master kalavara-volume \
  kalavara-bench kalavara-index-loader >&2
bin=$repo/build-bench/bin
for tool in kalavara-master kalavara-volume kalavara-bench kalavara-index-loader; do
  [[ -x $bin/$tool ]] || die "$bin/$tool was not built (is add_subdirectory(bench) in CMakeLists.txt?)"
done

# --- processes and the temporary folder --------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/kalavara-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# started_pid: the pid of the last daemon start_daemon started.
started_pid=
started_port=
# start_daemon NAME LOG CMD...: starts CMD (which must listen on port 0 and
# log "listening on ADDR:PORT"), waits up to 15 s for the line.
start_daemon() {
  local name=$1 logfile=$2
  shift 2
  # Emptied here, not only by the redirection below: that runs in the
  # background child, and until it has, the loop would read the port of an
  # earlier daemon that logged to the same file.
  : >"$logfile"
  "$@" >>"$logfile" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
  local i
  for ((i = 0; i < 150; i++)); do
    if started_port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$logfile" 2>/dev/null | head -n1) &&
      [[ -n $started_port ]]; then
      return 0
    fi
    kill -0 "$started_pid" 2>/dev/null || { cat "$logfile" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  cat "$logfile" >&2
  die "$name did not report its port within 15 s"
}

# stop_pid PID: SIGTERM, then wait (bounded) for it to exit.
stop_pid() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 250; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${pids[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  pids=("${kept[@]}")
}

start_volume() { # DIR [PORT] -> started_pid, started_port
  mkdir -p "$1"
  start_daemon volume "$1.log" "$bin/kalavara-volume" -p "${2:-0}" --bind 127.0.0.1 -t "$threads" \
    -d "$1" --log-level info
}
master_extra=() # extra master flags for the next start_master (e.g. --replicas 3)
start_master() { # DIR VOLUME_URL... -> started_pid, started_port
  local dir=$1
  shift
  start_daemon master "$dir.log" "$bin/kalavara-master" -p 0 --bind 127.0.0.1 -t "$threads" \
    -d "$dir" --log-level info "${master_extra[@]}" -v "$@"
}

# Peak RSS: reset VmHWM (clear_refs 5) before a figure, read it after.
reset_peak() { local pid; for pid in "$@"; do { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null || true; done; }
peak_kib() { # PID... -> the sum of their VmHWM in KiB
  local pid total=0 v
  for pid in "$@"; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
mib() { awk -v k="$1" 'BEGIN { if (k + 0 == 0) print "n/a"; else printf "%.1f MiB", k / 1024 }'; }

# json FIELD LINE -> the number in "FIELD":number
json() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2" | head -n1; }

# run_wrk PORT PREFIX KEYS -> the WRKJSON line
run_wrk() {
  local port=$1 prefix=$2 keys=$3 output
  output=$(BENCH_PREFIX=$prefix BENCH_KEYS=$keys BENCH_PATHS=${BENCH_PATHS:-} timeout $((wrk_seconds + 30)) \
    wrk -t "$threads" -c "$connections" -d "${wrk_seconds}s" --timeout 5s \
    -s "$repo/bench/wrk/random_keys.lua" "http://127.0.0.1:$port") || die "wrk failed: $output"
  local line
  line=$(sed -n 's/^WRKJSON //p' <<<"$output")
  [[ -n $line ]] || die "wrk printed no result: $output"
  echo "$line"
}

# run_bench ARGS... -> kalavara-bench's JSON line; dies on a wrong answer.
run_bench() {
  local output
  if ! output=$("$bin/kalavara-bench" "$@"); then
    die "kalavara-bench $* failed (wrong answers above): $output"
  fi
  echo "$output"
}

# --- the result table ---------------------------------------------------------
rows=()
# verdict VALUE OP TARGET -> "met" / "missed by X%"; OP is >= or <=.
verdict() {
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
    if (v == "" || t == 0) { print "not measured"; exit }
    if ((op == ">=" && v + 0 >= t + 0) || (op == "<=" && v + 0 <= t + 0)) { print "**met**"; exit }
    if (op == ">=") printf "**missed** by %.0f%%\n", (t - v) * 100 / t
    else printf "**missed** by %.0f%%\n", (v - t) * 100 / t
  }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
fmt_rate() { awk -v r="$1" 'BEGIN { printf "%.0f/s", r }'; }
lat() { echo "$(json p50_us "$1") / $(json p99_us "$1") µs"; }
# add_row FIGURE OURS NGINX RATIO OUR_LAT NGINX_LAT RSS TARGET RESULT
add_row() {
  local row="|" cell
  for cell in "$@"; do row+=" $cell |"; done
  rows+=("$row")
}

# A wrk line whose answers were not what the figure expects is a failed run.
check_wrk() { # LINE EXPECT(ok|all-errors) WHAT
  local socket status requests
  socket=$(json socket_errors "$1")
  status=$(json status_errors "$1")
  requests=$(json requests "$1")
  ((socket == 0)) || log "warning: $3: $socket socket errors"
  if [[ $2 == ok ]]; then
    ((status == 0)) || die "$3: $status answers were not 2xx/3xx"
  else
    ((status == requests)) || die "$3: only $status of $requests answers were errors (expected all 404)"
  fi
}

# --- machine -----------------------------------------------------------------
cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)
cpus=$(nproc)
date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
kernel=$(uname -r)
fs_type=$(df -T "$work" | awk 'NR == 2 {print $2}')
mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- src 2>/dev/null | head -n1)
[[ -n $dirty ]] && commit="$commit (src/ modified)"
log "working in $work ($fs_type); $cpus CPUs: $cpu_model; quick=$quick threads=$threads"

# --- nginx -------------------------------------------------------------------
files=$work/files
mkdir -p "$files" "$work/nginx/logs"
log "writing the value files for nginx ($files_4k x 4 KiB, $files_1m x 1 MiB)"
run_bench --mode write-files --dir "$files" --key-prefix bench/v4k/ --keys "$files_4k" \
  --value-size 4096 >/dev/null
run_bench --mode write-files --dir "$files" --key-prefix bench/v1m/ --keys "$files_1m" \
  --value-size $((1 << 20)) >/dev/null

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  die "no free port found"
}

nginx_port=
nginx_pid=
start_nginx() {
  local attempt user_line=""
  ((EUID == 0)) && user_line="user $(id -un) $(id -gn);"
  for attempt in 1 2 3 4 5; do
    nginx_port=$(free_port)
    cat >"$work/nginx/nginx.conf" <<EOF
# Generated by scripts/bench.sh. As close to the daemons as nginx gets: the
# same worker count, sendfile, no access log, keep-alive without a request cap.
$user_line
worker_processes $threads;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nginx_port;
    root $files;
    location /store/missing/ { return 404; }
    location /store/ { return 302 http://127.0.0.1:$nginx_port/x; }
    location / { }
  }
}
EOF
    "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" \
      >"$work/nginx/stdout.log" 2>&1 &
    nginx_pid=$!
    pids+=("$nginx_pid")
    local i
    for ((i = 0; i < 50; i++)); do
      if curl -s -o /dev/null "http://127.0.0.1:$nginx_port/bench/v4k/000000000"; then return 0; fi
      kill -0 "$nginx_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$nginx_pid"
    log "nginx did not start on port $nginx_port (attempt $attempt): $(tail -n2 "$work/nginx/logs/error.log" 2>/dev/null)"
  done
  die "nginx would not start"
}
nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid" || true); }
start_nginx
log "nginx on port $nginx_port (pid $nginx_pid)"

# nginx_fig PREFIX KEYS EXPECT -> "LINE|RSS_KIB"
nginx_fig() {
  local line
  reset_peak $(nginx_pids)
  line=$(run_wrk "$nginx_port" "$1" "$2")
  check_wrk "$line" "$3" "nginx $1"
  echo "$line|$(peak_kib $(nginx_pids))"
}

# --- phase A: the index at keys_small ----------------------------------------
volume_dir=$work/volume1
start_volume "$volume_dir"
volume_pid=$started_pid
volume_port=$started_port
volume_url=http://127.0.0.1:$volume_port
master_dir=$work/master1

load_index() { # START COUNT BUDGET -> loader JSON
  "$bin/kalavara-index-loader" -d "$master_dir" -v "$volume_url" --key-prefix bench/ \
    --start "$1" --count "$2" --max-seconds "$3"
}
log "loading $keys_small index records"
load_json=$(load_index 0 "$keys_small" "$load_budget") || die "index loader failed"
loaded=$(json records "$load_json")
log "loaded: $load_json"

start_master "$master_dir" "$volume_url"
master_pid=$started_pid
master_port=$started_port
master_url=http://127.0.0.1:$master_port

log "figure 6 (baseline): master GET among $loaded keys"
reset_peak "$master_pid"
fig6_small=$(run_wrk "$master_port" /store/bench/ "$loaded")
check_wrk "$fig6_small" ok "master GET at $loaded keys"
fig6_small_rss=$(peak_kib "$master_pid")
fig6_small_keys=$loaded

# --- phase B: keys_fig1 -------------------------------------------------------
if ((keys_fig1 > loaded)); then
  stop_pid "$master_pid"
  log "loading up to $keys_fig1 index records"
  load_json=$(load_index "$loaded" $((keys_fig1 - loaded)) "$load_budget") || die "index loader failed"
  loaded=$((loaded + $(json records "$load_json")))
  log "loaded: $load_json"
  start_master "$master_dir" "$volume_url"
  master_pid=$started_pid
  master_port=$started_port
  master_url=http://127.0.0.1:$master_port
fi

log "figure 1: master GET of existing keys among $loaded vs nginx return 302"
reset_peak "$master_pid"
fig1=$(run_wrk "$master_port" /store/bench/ "$loaded")
check_wrk "$fig1" ok "master GET at $loaded keys"
fig1_rss=$(peak_kib "$master_pid")
fig1_nginx=$(nginx_fig /store/bench/ "$loaded" ok)
r=$(ratio "$(json rate "$fig1")" "$(json rate "${fig1_nginx%|*}")")
add_row "1. master GET, existing key (random of $loaded) → 302" "$(fmt_rate "$(json rate "$fig1")")" \
  "$(fmt_rate "$(json rate "${fig1_nginx%|*}")") (\`return 302\`)" "${r}×" "$(lat "$fig1")" \
  "$(lat "${fig1_nginx%|*}")" "$(mib "$fig1_rss") / $(mib "${fig1_nginx##*|}")" "≥ 1.0×" \
  "$(verdict "$r" '>=' 1.0)"
fig1_rate=$(json rate "$fig1")

log "figure 2: master GET of missing keys vs nginx return 404"
reset_peak "$master_pid"
fig2=$(run_wrk "$master_port" /store/missing/ 1000000)
check_wrk "$fig2" all-errors "master GET of missing keys"
fig2_rss=$(peak_kib "$master_pid")
fig2_nginx=$(nginx_fig /store/missing/ 1000000 all-errors)
r=$(ratio "$(json rate "$fig2")" "$(json rate "${fig2_nginx%|*}")")
add_row "2. master GET, missing key → 404" "$(fmt_rate "$(json rate "$fig2")")" \
  "$(fmt_rate "$(json rate "${fig2_nginx%|*}")") (\`return 404\`)" "${r}×" "$(lat "$fig2")" \
  "$(lat "${fig2_nginx%|*}")" "$(mib "$fig2_rss") / $(mib "${fig2_nginx##*|}")" "≥ 1.0×" \
  "$(verdict "$r" '>=' 1.0)"

log "figure 7: paced master GET at half of $(fmt_rate "$fig1_rate")"
half=$(awk -v r="$fig1_rate" 'BEGIN { printf "%.0f", r / 2 }')
reset_peak "$master_pid"
fig7=$(run_bench --master "$master_url" --mode redirect --key-prefix bench/ --keys "$loaded" \
  --concurrency 16 --rate "$half" --duration "$paced_seconds")
fig7_rss=$(peak_kib "$master_pid")
reset_peak $(nginx_pids)
fig7_nginx=$(run_bench --master "http://127.0.0.1:$nginx_port" --mode redirect --key-prefix bench/ \
  --keys "$loaded" --concurrency 16 --rate "$half" --duration "$paced_seconds" --check-location false)
fig7_nginx_rss=$(peak_kib $(nginx_pids))
p99=$(json p99_us "$fig7")
add_row "7. master GET → 302 paced at $(fmt_rate "$half") (half of figure 1), p99" \
  "p99 $p99 µs at $(fmt_rate "$(json rate "$fig7")")" \
  "p99 $(json p99_us "$fig7_nginx") µs at $(fmt_rate "$(json rate "$fig7_nginx")")" "—" \
  "$(lat "$fig7")" "$(lat "$fig7_nginx")" "$(mib "$fig7_rss") / $(mib "$fig7_nginx_rss")" \
  "p99 ≤ 1000 µs" "$(verdict "$p99" '<=' 1000)"

log "figure 3: loading $files_4k x 4 KiB and $files_1m x 1 MiB values through the master"
run_bench --master "$master_url" --mode put --key-prefix bench/v4k/ --keys "$files_4k" \
  --value-size 4096 --concurrency 16 --duration 600 >/dev/null
run_bench --master "$master_url" --mode put --key-prefix bench/v1m/ --keys "$files_1m" \
  --value-size $((1 << 20)) --concurrency 8 --duration 900 >/dev/null
# Spot check that the volume serves what nginx serves, byte for byte.
cmp -s <(curl -sf "$volume_url/store/bench/v1m/000000000") "$files/bench/v1m/000000000" ||
  die "the volume and nginx disagree on bench/v1m/000000000"
# Also checks every answer with kalavara-bench (short, bounded).
run_bench --master "$master_url" --mode get --key-prefix bench/v4k/ --keys "$files_4k" \
  --value-size 4096 --concurrency 4 --duration 1 >/dev/null
# A volume that died during a figure (a daemon bug) is reported in the table
# and restarted on its port and data so the later figures can run.
volume_deaths=""
check_volume_alive() { # WHAT
  kill -0 "$volume_pid" 2>/dev/null && return 0
  local status=0
  wait "$volume_pid" 2>/dev/null || status=$?
  log "the volume DIED during $1 (exit status $status); restarting it"
  volume_deaths="$volume_deaths; the volume died at the end of the run (exit status $status$( ((status == 141)) && echo ": SIGPIPE"))"
  cp "$volume_dir.log" "$work/volume1-died-$status.log" 2>/dev/null || true
  start_volume "$volume_dir" "$volume_port"
  volume_pid=$started_pid
}
# The volume is read at the URLs the master redirects to (?version=V), as
# every client that goes through the master reads it; curl asks the master
# for all of them over one kept-alive connection.
redirect_paths() { # SIZE N -> a file of the volume's request targets
  local size=$1 n=$2 i file=$work/paths-$1.txt
  for ((i = 0; i < n; i++)); do
    printf 'url = "%s/store/bench/v%s/%09d"\noutput = "/dev/null"\n' "$master_url" "$size" "$i"
  done >"$work/locate-$size.cfg"
  curl -s -K "$work/locate-$size.cfg" -w '%{redirect_url}\n' | sed "s#^$volume_url##" >"$file"
  [[ $(grep -c '?version=' "$file") == "$n" ]] || die "the master did not redirect every bench/v$size key"
  echo "$file"
}
for size in 4k 1m; do
  if [[ $size == 4k ]]; then n=$files_4k; label="4 KiB"; else n=$files_1m; label="1 MiB"; fi
  log "figure 3: volume GET of $label values vs nginx sendfile"
  paths_file=$(redirect_paths "$size" "$n")
  reset_peak "$volume_pid"
  line=$(BENCH_PATHS=$paths_file run_wrk "$volume_port" "/store/bench/v$size/" "$n")
  check_wrk "$line" ok "volume GET $label"
  rss=$(peak_kib "$volume_pid")
  volume_deaths=""
  check_volume_alive "volume GET $label"
  ng=$(nginx_fig "/bench/v$size/" "$n" ok)
  r=$(ratio "$(json rate "$line")" "$(json rate "${ng%|*}")")
  mbs=$(awk -v r="$(json rate "$line")" -v s="$size" 'BEGIN { printf "%.0f", r * (s == "4k" ? 4096 : 1048576) / 1e6 }')
  nmbs=$(awk -v r="$(json rate "${ng%|*}")" -v s="$size" 'BEGIN { printf "%.0f", r * (s == "4k" ? 4096 : 1048576) / 1e6 }')
  add_row "3. volume GET, $label value (random of $n, at the master's redirect URLs)" "$(fmt_rate "$(json rate "$line")") ($mbs MB/s)" \
    "$(fmt_rate "$(json rate "${ng%|*}")") ($nmbs MB/s, static + sendfile)" "${r}×" "$(lat "$line")" \
    "$(lat "${ng%|*}")" "$(mib "$rss") / $(mib "${ng##*|}")" "≥ 1.0×" "$(verdict "$r" '>=' 1.0)$volume_deaths"
done

# The durable figures (4, 5) wait for the disk to be idle first: nginx's
# copy of the values is written without fsync, and its writeback would
# otherwise compete with their fsyncs.
settle_disk() { sync; }
settle_disk
log "figure 4: PUT/GET/DELETE/GET cycles, 16 clients, 1 KiB, 1 volume"
reset_peak "$master_pid" "$volume_pid"
fig4=$(run_bench --master "$master_url" --mode put-get-delete --concurrency 16 --value-size 1024 \
  --duration "$cycle_seconds" --key-prefix "bench/cycle1/")
rate=$(json rate "$fig4")
add_row "4. PUT/GET/DELETE/GET cycles, 16 clients, 1 KiB, 1 volume" "$(fmt_rate "$rate")" "—" "—" \
  "$(lat "$fig4") per cycle" "—" "$(mib "$(peak_kib "$master_pid")") master, $(mib "$(peak_kib "$volume_pid")") volume" \
  "≥ 4000/s" "$(verdict "$rate" '>=' 4000)"

stop_pid "$master_pid"

# --- figure 5: a fresh master and volume, so RSS is the streaming alone -------
big_label=$(awk -v b="$big_bytes" 'BEGIN { if (b >= 1073741824) printf "%g GiB", b / 1073741824; else printf "%g MiB", b / 1048576 }')
settle_disk
log "figure 5: one $big_label value PUT and GET (a fresh master and volume)"
start_volume "$work/big-volume"
big_volume_pid=$started_pid
start_master "$work/big-master" "http://127.0.0.1:$started_port"
big_master_pid=$started_pid
reset_peak "$big_master_pid" "$big_volume_pid"
fig5=$(run_bench --master "http://127.0.0.1:$started_port" --mode big --value-size "$big_bytes" --key-prefix bench/)
m_rss=$(peak_kib "$big_master_pid")
v_rss=$(peak_kib "$big_volume_pid")
rss_ok=$(awk -v m="$m_rss" -v v="$v_rss" 'BEGIN { print (m < 65536 && v < 65536) ? "met" : "missed" }')
for way in put get; do
  mbs=$(json "${way}_mb_s" "$fig5")
  v=$(verdict "$mbs" '>=' 500)
  [[ $rss_ok == met ]] || v="$v; RSS **missed**"
  add_row "5. one $big_label value, ${way^^} end to end" "$(awk -v m="$mbs" 'BEGIN { printf "%.0f MB/s", m }')" "—" "—" \
    "$(awk -v t="$(json "${way}_seconds" "$fig5")" 'BEGIN { printf "%.2f s in all", t }')" "—" "$(mib "$m_rss") master, $(mib "$v_rss") volume" \
    "≥ 500 MB/s, each daemon < 64 MiB" "$v"
done
stop_pid "$big_master_pid"
stop_pid "$big_volume_pid"

# --- phase C: 3 volumes -------------------------------------------------------
settle_disk
log "figure 4: cycles with 3 volumes and 3 replicas"
urls=()
vpids=()
for i in 1 2 3; do
  start_volume "$work/c-volume$i"
  vpids+=("$started_pid")
  urls+=("http://127.0.0.1:$started_port")
done
master_extra=(--replicas 3)
start_master "$work/c-master" "${urls[@]}"
master_extra=()
c_master_pid=$started_pid
reset_peak "$c_master_pid" "${vpids[@]}"
fig4c=$(run_bench --master "http://127.0.0.1:$started_port" --mode put-get-delete --concurrency 16 \
  --value-size 1024 --duration "$cycle_seconds" --key-prefix "bench/cycle3/")
rate=$(json rate "$fig4c")
vmax=0
for p in "${vpids[@]}"; do k=$(peak_kib "$p"); ((k > vmax)) && vmax=$k; done
add_row "4. cycles as above, 3 volumes, 3 replicas" "$(fmt_rate "$rate")" "—" "—" \
  "$(lat "$fig4c") per cycle" "—" "$(mib "$(peak_kib "$c_master_pid")") master, ≤ $(mib "$vmax") per volume" \
  "≥ 2500/s" "$(verdict "$rate" '>=' 2500)"
stop_pid "$c_master_pid"
for p in "${vpids[@]}"; do stop_pid "$p"; done

# --- phase D: keys_large ------------------------------------------------------
log "figure 6: loading up to $keys_large index records (at most $load_budget s)"
load_json=$(load_index "$loaded" $((keys_large - loaded)) "$load_budget") || die "index loader failed"
loaded=$((loaded + $(json records "$load_json")))
log "loaded: $load_json; $loaded records in the index"
start_master "$master_dir" "$volume_url"
master_pid=$started_pid
master_port=$started_port
reset_peak "$master_pid"
fig6=$(run_wrk "$master_port" /store/bench/ "$loaded")
check_wrk "$fig6" ok "master GET at $loaded keys"
fig6_rss=$(peak_kib "$master_pid")
r=$(ratio "$(json rate "$fig6")" "$(json rate "$fig6_small")")
note=""
((loaded < keys_large)) && note=" (**only $loaded of $keys_large** loaded in the $load_budget s budget)"
add_row "6. master GET among $loaded keys$note vs among $fig6_small_keys" \
  "$(fmt_rate "$(json rate "$fig6")")" "$(fmt_rate "$(json rate "$fig6_small")") (kalavara at $fig6_small_keys keys)" \
  "${r}×" "$(lat "$fig6")" "$(lat "$fig6_small") (at $fig6_small_keys)" \
  "$(mib "$fig6_rss") master (at $fig6_small_keys: $(mib "$fig6_small_rss"))" "≥ 0.80×, RSS ≤ 512 MiB" \
  "$(verdict "$r" '>=' 0.8); RSS $(verdict "$fig6_rss" '<=' 524288)"

# --- phase E: the index on etcd (docs/scaling.md) ------------------------------
# The same PUTs through the RocksDB master first, as the baseline; then one
# and two masters sharing a one-member etcd (its data folder beside ours).
etcd_keys=$((quick ? 2000 : 20000))
rocks_url=http://127.0.0.1:$master_port
log "figure 8: $etcd_keys 1 KiB PUTs through the RocksDB master (the baseline)"
fig8_rput=$(run_bench --master "$rocks_url" --mode put --key-prefix bench/rput/ --keys "$etcd_keys" \
  --value-size 1024 --concurrency 16 --duration 600)
stop_pid "$master_pid"
etcd_client_port=$(free_port)
etcd_peer_port=$(free_port)
: >"$work/etcd.log"
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer_port" >>"$work/etcd.log" 2>&1 &
etcd_pid=$!
pids+=("$etcd_pid")
etcd_url=http://127.0.0.1:$etcd_client_port
for ((i = 0; i < 150; i++)); do
  curl -s "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"' && break
  kill -0 "$etcd_pid" 2>/dev/null || { cat "$work/etcd.log" >&2; die "etcd exited at start"; }
  sleep 0.1
done
curl -s "$etcd_url/health" | grep -q '"health":"true"' || die "etcd did not get healthy within 15 s"
start_etcd_master() { # NAME -> started_pid, started_port
  start_daemon "master on etcd" "$work/$1.log" "$bin/kalavara-master" -p 0 --bind 127.0.0.1 \
    -t "$threads" --etcd "$etcd_url" --log-level info -v "$volume_url"
}
start_etcd_master etcd-master1
e1_pid=$started_pid
e1_port=$started_port
log "figure 8: $etcd_keys 1 KiB PUTs through a master on etcd"
reset_peak "$e1_pid"
fig8_eput=$(run_bench --master "http://127.0.0.1:$e1_port" --mode put --key-prefix bench/eput/ \
  --keys "$etcd_keys" --value-size 1024 --concurrency 16 --duration 600)
r=$(ratio "$(json rate "$fig8_eput")" "$(json rate "$fig8_rput")")
add_row "8. PUT of 1 KiB through the master, 16 clients: index on etcd vs RocksDB" \
  "$(fmt_rate "$(json rate "$fig8_eput")")" "$(fmt_rate "$(json rate "$fig8_rput")") (RocksDB)" "${r}×" \
  "$(lat "$fig8_eput")" "$(lat "$fig8_rput") (RocksDB)" "$(mib "$(peak_kib "$e1_pid")") master" "measured" "—"
log "figure 8: master GET among $etcd_keys keys on etcd"
reset_peak "$e1_pid"
fig8_eget=$(run_wrk "$e1_port" /store/bench/eput/ "$etcd_keys")
check_wrk "$fig8_eget" ok "master GET on etcd"
r=$(ratio "$(json rate "$fig8_eget")" "$fig1_rate")
add_row "8. master GET → 302, index on etcd ($etcd_keys keys) vs RocksDB (figure 1)" \
  "$(fmt_rate "$(json rate "$fig8_eget")")" "$(fmt_rate "$fig1_rate") (RocksDB)" "${r}×" \
  "$(lat "$fig8_eget")" "$(lat "$fig1") (RocksDB)" "$(mib "$(peak_kib "$e1_pid")") master" "measured" "—"
start_etcd_master etcd-master2
e2_pid=$started_pid
e2_port=$started_port
log "figure 8: two masters on etcd, GET through both at once"
both=$(mktemp "$work/both.XXXXXX")
run_wrk "$e2_port" /store/bench/eput/ "$etcd_keys" >"$both.2" &
w2=$!
fig8_get1=$(run_wrk "$e1_port" /store/bench/eput/ "$etcd_keys")
wait "$w2" || die "wrk on the second master failed"
fig8_get2=$(cat "$both.2")
check_wrk "$fig8_get1" ok "master 1 GET on etcd"
check_wrk "$fig8_get2" ok "master 2 GET on etcd"
sum=$(awk -v a="$(json rate "$fig8_get1")" -v b="$(json rate "$fig8_get2")" 'BEGIN { print a + b }')
r=$(ratio "$sum" "$(json rate "$fig8_eget")")
add_row "8. two masters on etcd, GET → 302 through both at once (sum) vs one" "$(fmt_rate "$sum")" \
  "$(fmt_rate "$(json rate "$fig8_eget")") (one master)" "${r}×" "$(lat "$fig8_get1") (master 1)" \
  "$(lat "$fig8_eget") (one)" "—" "measured" "—"
log "figure 8: two masters on etcd, PUTs through both at once"
run_bench --master "http://127.0.0.1:$e2_port" --mode put --key-prefix bench/eput2b/ --keys "$etcd_keys" \
  --value-size 1024 --concurrency 8 --duration 600 >"$both.p2" &
b2=$!
fig8_put1=$(run_bench --master "http://127.0.0.1:$e1_port" --mode put --key-prefix bench/eput2a/ \
  --keys "$etcd_keys" --value-size 1024 --concurrency 8 --duration 600)
wait "$b2" || die "kalavara-bench on the second master failed"
fig8_put2=$(cat "$both.p2")
sum=$(awk -v a="$(json rate "$fig8_put1")" -v b="$(json rate "$fig8_put2")" 'BEGIN { print a + b }')
r=$(ratio "$sum" "$(json rate "$fig8_eput")")
add_row "8. two masters on etcd, 1 KiB PUTs through both at once (8 clients each, sum) vs one" \
  "$(fmt_rate "$sum")" "$(fmt_rate "$(json rate "$fig8_eput")") (one master, 16 clients)" "${r}×" \
  "$(lat "$fig8_put1") (master 1)" "$(lat "$fig8_eput") (one)" "—" "measured" "—"
stop_pid "$e1_pid"
stop_pid "$e2_pid"
etcd_size=$(du -sh "$work/etcd" | cut -f1)
stop_pid "$etcd_pid"

stop_pid "$volume_pid"
stop_pid "$nginx_pid"
index_size=$(du -sh "$master_dir" | cut -f1)

# --- the document ---------------------------------------------------------------
mode_line="full run"
((quick)) && mode_line="**quick run** (\`scripts/bench.sh --quick\`: short runs and small key counts; not the issue's figures — run \`scripts/bench.sh\` for those)"
mkdir -p "$(dirname "$out")"
{
  cat <<EOF
# Benchmarks

Generated by \`scripts/bench.sh\` — do not edit by hand; re-run it instead.

* Date: $date_utc; $mode_line
* Machine: $cpus CPUs ($(nproc --all) online), $cpu_model, $mem_total RAM, Linux $kernel, temp folder on $fs_type
* kalavara commit $commit, Release build; nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///'); wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}')
* Workers: kalavara daemons \`-t $threads\`, nginx \`worker_processes $threads\`, wrk \`-t $threads -c $connections -d ${wrk_seconds}s\`
* Index: $loaded records at the end ($index_size on disk); the loader wrote the last $(json records "$load_json") in $(json seconds "$load_json") s ($(json rate "$load_json") records/s)
* etcd (figure 8): $(etcd --version | head -n1), one member on the same machine, data $etcd_size at the end

| figure | kalavara | nginx / baseline | ratio | kalavara p50 / p99 | nginx p50 / p99 | peak RSS (kalavara / nginx) | target | result |
|---|---|---|---|---|---|---|---|---|
EOF
  printf '%s\n' "${rows[@]}" | sort -s -k2,2n
  cat <<EOF

**Noise warning.** Everything runs on one machine: wrk (or kalavara-bench),
the daemons and nginx share its $cpus CPUs, and other work on the machine
(compiles, other services) changes the numbers from run to run. On a 2-core
machine the load generator takes about one core, so these are figures for
comparing kalavara with nginx *in the same run*, not absolute capacities.

## Method

* **Same conditions for both servers.** Our daemons and nginx run side by side
  on 127.0.0.1 with the same number of workers (\`-t N\` / \`worker_processes N\`,
  N = $threads) and are measured one after the other with the same wrk command
  line and the same request paths. nginx runs as the current user from a
  generated config (\`access_log off\`, \`sendfile on\`, unlimited keep-alive
  requests) in a temporary folder; everything is removed at the end.
* **Rates (figures 1, 2, 3, 6)**: \`wrk -t $threads -c $connections -d ${wrk_seconds}s\` with
  \`bench/wrk/random_keys.lua\`, which asks for a uniformly random key of the
  loaded set on every request. wrk does not follow redirects, so figures 1, 2
  and 6 measure the master's own answer (302 with the volume's URL, or 404);
  nginx answers the same paths with \`return 302 http://127.0.0.1:PORT/x;\` and
  \`return 404;\`. Every wrk run is checked: figures 1, 3 and 6 must have no
  answer outside 2xx/3xx (so every loaded key was found), figure 2 must have
  only 404s. p50/p99 come from wrk's latency histogram (its \`done()\` hook).
* **Index (figures 1, 2, 6, 7)**: synthetic records (\`bench/000000000\`, …, each
  pointing at the benchmark volume) are written straight into the stopped
  master's RocksDB folder by \`kalavara-index-loader\` through
  \`RocksDbIndexStore::put_batch\` in batches of 10,000, then the master is
  started on it. Figure 6 runs the same GET load at $fig6_small_keys and then at
  $loaded keys (the loader may stop at a time budget; the table says so).
* **Volume (figure 3)**: the values are stored through the master with
  \`kalavara-bench --mode put\` (real PUTs: 307, then the volume's 201), and
  \`kalavara-bench --mode write-files\` writes byte-identical files for nginx to
  serve from a static root with sendfile. wrk asks the volume for
  \`/store/bench/v4k/NNNNNNNNN\` and nginx for \`/bench/v4k/NNNNNNNNN\` (the page
  cache holds both copies when memory allows).
* **Cycles (figure 4)**: \`kalavara-bench --mode put-get-delete --concurrency 16\`,
  one thread and one keep-alive connection per client: PUT at the master (307;
  the 1 KiB body is sent to it too, as plain HTTP libraries do), PUT at the
  volume (201), GET at the master (302) and the volume (200, bytes checked),
  DELETE (204), GET (404). One cycle counts once; its latency is the whole
  cycle. The 3-volume run uses \`--replicas 3\`: every PUT is durable on all
  three volumes before its 201.
* **Big value (figure 5)**: on a fresh master and volume (so the peak RSS is
  the streaming's, not the block cache filled by the earlier figures),
  \`kalavara-bench --mode big\`: PUT at the master
  with \`Expect: 100-continue\` (as \`curl -T\` does), then the body streamed
  to the volume from a generator; GET through the 302, checking every chunk
  against the generator. The client never holds the value (1 MiB chunks).
  MB/s is 10^6 bytes per second, from the first request to the last byte.
* **Latency under load (figure 7)**: wrk has no constant-rate mode (wrk2 is
  not in Debian), so \`kalavara-bench --mode redirect --rate R\` paces 16
  connections at R = half of figure 1's rate in all, each request due at a
  fixed time (open loop), all on one thread with asynchronous I/O so that
  the client's own threads do not add scheduling delays to the tail. Latency is counted from when a request was *due*,
  not from when it was sent, so a stall of the server or of the client shows
  up in p99 instead of being hidden (no coordinated omission). The same
  client at the same rate against nginx's \`return 302\` shows how much of the
  p99 is the machine and the client itself.
* **Index on etcd (figure 8)**: one etcd member started by the script on
  loopback, its data folder in the same temporary folder (so on the same
  disk). The keys are written by real PUTs through the master (16 clients;
  two masters: 8 each, both at once), the same count through the RocksDB
  master first as the baseline. GET is wrk as in figure 1, over the keys
  written; two masters: one wrk per master, both at once, rates summed.
  Everything shares the machine's $cpus CPUs, etcd included, so a second
  master can only show what is left of them.
* **Peak RSS**: VmHWM from \`/proc/PID/status\`, reset before each figure
  (\`echo 5 > /proc/PID/clear_refs\`), read after it. For nginx it is the sum
  over its master and worker processes.
* **Bounds**: every load is limited in time (wrk \`-d\`, kalavara-bench
  \`--duration\` with a watchdog) and in count (\`--max-ops\`, \`--keys\`).
EOF
  # Why the missed figures miss: written by hand from profiles, kept with the
  # suite so that a re-run keeps it.
  if [[ -f "$repo/bench/ANALYSIS.md" ]]; then
    echo
    cat "$repo/bench/ANALYSIS.md"
  fi
} >"$out"
[[ $out == /* ]] || out=$repo/$out
log "results written to $out"
echo "$out"
