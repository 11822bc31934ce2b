-- wrk script for scripts/bench.sh: GET a random one of BENCH_KEYS numbered
-- paths, BENCH_PREFIX .. nine-digit number (e.g. /store/bench/000000042),
-- like kalavara-bench's key names. BENCH_KEYS=0 sends BENCH_PREFIX itself.
-- wrk does not follow redirects: against the master this measures the 302.
--
-- done() prints one line starting with WRKJSON: requests, rate, p50/p99 in
-- microseconds, socket errors, and responses that were not 2xx/3xx
-- ("status_errors": every answer of the missing-key figure, none otherwise).

local prefix = os.getenv("BENCH_PREFIX") or "/store/bench/"
local keys = tonumber(os.getenv("BENCH_KEYS") or "0")
-- BENCH_PATHS: a file of request targets, one per line, drawn at random
-- instead (the volume figure: the exact URLs the master redirects to).
local paths = {}
local paths_file = os.getenv("BENCH_PATHS") or ""
if paths_file ~= "" then
  for line in io.lines(paths_file) do paths[#paths + 1] = line end
end

function init(args)
  -- Each wrk thread has its own Lua state: seed each differently.
  local address = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + address % 1000003)
end

function request()
  if #paths > 0 then
    return wrk.format("GET", paths[math.random(1, #paths)])
  end
  if keys > 0 then
    return wrk.format("GET", string.format("%s%09d", prefix, math.random(0, keys - 1)))
  end
  return wrk.format("GET", prefix)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    'WRKJSON {"requests":%d,"seconds":%.3f,"rate":%.1f,"p50_us":%d,"p99_us":%d,'
      .. '"socket_errors":%d,"status_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50),
    latency:percentile(99), socket_errors, summary.errors.status))
end
