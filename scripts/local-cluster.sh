#!/usr/bin/env bash
# Build and run a local cluster: one master (:6000) and two volumes
# (:6001, :6002), set up as docs/security.md says a production cluster is:
# a shared secret (signed redirects and internal calls, signed reads) and an
# admin token, both made in the data directory on the first run. Ctrl-C
# stops everything.
#
# KALAVARA_DATA sets the data directory (default: data). A relative path is
# taken from the repo root, since the script runs from there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

data="${KALAVARA_DATA:-data}"
logs="$data/logs"
master_port=6000
vol1_port=6001
vol2_port=6002

# Only the daemons are needed here; skip building the tests.
bash scripts/build.sh --target kalavara-master kalavara-volume

# A port counts as taken if anything answers on it: an HTTP server (curl gets
# a response of any status) or any other listener (the TCP connect succeeds).
port_taken() {
  local port=$1
  curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

for port in "$master_port" "$vol1_port" "$vol2_port"; do
  if port_taken "$port"; then
    echo "local-cluster: port $port is already in use (another cluster running?)" >&2
    exit 1
  fi
done

mkdir -p "$data/master" "$data/vol1" "$data/vol2" "$logs"

# new_secret FILE: 32 random bytes as 64 hex digits, readable by us only.
new_secret() {
  [[ -s $1 ]] && return 0
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$1" && echo >>"$1")
}
new_secret "$data/secret"
new_secret "$data/admin-token"
chmod 600 "$data/secret" "$data/admin-token"
signing=(--secret-file "$data/secret" --sign-reads)

pids=()

# Daemons started in the background by a non-interactive shell ignore SIGINT,
# so Ctrl-C would not reach them: stop them explicitly. Everything funnels
# through the EXIT trap so cleanup runs exactly once.
# shellcheck disable=SC2317  # only called from the trap; shellcheck can't see that
cleanup() {
  trap - EXIT INT TERM
  if ((${#pids[@]} > 0)); then
    echo "local-cluster: stopping daemons"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run CMD in the background, logging to $logs/NAME.log.
start() {
  local name=$1
  shift
  echo "local-cluster: starting $name: $*"
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
}

# wait_ready NAME PORT: poll /healthz until it answers 2xx, the daemon dies,
# or 15 s pass.
wait_ready() {
  local name=$1 port=$2 pid=${pids[-1]}
  local log="$logs/$name.log"
  local deadline=$((SECONDS + 15))
  until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "local-cluster: $name exited during startup; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "local-cluster: $name not ready on :$port after 15 s; last lines of $log:" >&2
      tail -n 30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "local-cluster: $name ready on :$port"
}

# Volumes first, so the master can reach them as soon as it starts.
start vol1 build/bin/kalavara-volume -p "$vol1_port" -d "$data/vol1" "${signing[@]}"
wait_ready vol1 "$vol1_port"
start vol2 build/bin/kalavara-volume -p "$vol2_port" -d "$data/vol2" "${signing[@]}"
wait_ready vol2 "$vol2_port"
start master build/bin/kalavara-master -p "$master_port" -d "$data/master" "${signing[@]}" \
  --admin-token-file "$data/admin-token" --advertise-url "http://127.0.0.1:$master_port" \
  -v "http://127.0.0.1:$vol1_port" "http://127.0.0.1:$vol2_port"
wait_ready master "$master_port"

cat <<MSG

Cluster is up. Logs are in $logs/.
Try:
  curl -XPUT -L -d value http://localhost:$master_port/store/key
  curl -XGET -L http://localhost:$master_port/store/key
  curl -XDELETE -L http://localhost:$master_port/store/key

The volumes take only what the master signed (its redirects carry the
signature), so this is refused with 403:
  curl -XPUT -d value 'http://localhost:$vol1_port/store/key?version=1'

Admin endpoints need the token:
  curl -H "Authorization: Bearer \$(cat $data/admin-token)" http://localhost:$master_port/admin/volumes
  build/bin/kalavara-master scrub --master http://127.0.0.1:$master_port --admin-token-file $data/admin-token

Health, readiness and Prometheus metrics (docs/monitoring.md):
  curl http://localhost:$master_port/readyz
  curl -s http://localhost:$master_port/metrics | grep kalavara_master_volume_up
  curl -s http://localhost:$vol1_port/metrics | grep kalavara_volume_free_bytes

Add a third volume (in another terminal, from the repo root); it registers itself:
  build/bin/kalavara-volume -p 6003 -d $data/vol3 --secret-file $data/secret --sign-reads -m http://127.0.0.1:$master_port -b http://127.0.0.1:6003

Ctrl-C stops everything.
MSG

# Block until Ctrl-C/SIGTERM, or until one daemon exits on its own: then
# report it and stop the rest (a cluster missing a member is not useful).
status=0
wait -n "${pids[@]}" || status=$?
echo "local-cluster: a daemon exited (status $status); stopping the rest" >&2
# Unexpected even with status 0, so never report success here.
exit $((status == 0 ? 1 : status))
