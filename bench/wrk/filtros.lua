-- wrk script: a mix of dashboard filter changes (HTMX fragment requests) with a session cookie.
-- Usage: COOKIE="emtp_session=..." wrk -t4 -c8 -d10s -s bench/wrk/filtros.lua http://127.0.0.1:PORT
-- The paths file (one path per line) is written by bench/bench_dashboards.py.
local paths = {}
local cookie = os.getenv("COOKIE") or ""
local file = os.getenv("WRK_PATHS") or "bench/wrk/paths.txt"
for line in io.lines(file) do
  if #line > 0 then paths[#paths + 1] = line end
end
local counter = 0

request = function()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, {
    ["Cookie"] = cookie,
    ["HX-Request"] = "true",
    ["HX-Target"] = "tablero",
    ["HX-Current-URL"] = "http://127.0.0.1/resumen",
  })
end

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f "
    .. "connect_err=%d read_err=%d write_err=%d timeout_err=%d status_err=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
end
