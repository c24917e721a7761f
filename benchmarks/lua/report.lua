-- Shared by every script of http_bench.py: done() prints one line of JSON
-- (prefixed with BENCH_JSON) that the benchmark reads, instead of parsing
-- wrk's human-readable report. Defining only done() (no request/response)
-- keeps wrk on its fast path: the request is built once, not per request.
-- Latencies are in microseconds.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
