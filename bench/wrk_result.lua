-- What every bench script for wrk prints when its run is done: one `WRK_RESULT` line of
-- JSON (counts, latencies in µs) that bench/wrk.py reads back. A script loads it with
-- `dofile`, found next to itself, so that the line is written in one place.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,'
      .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
