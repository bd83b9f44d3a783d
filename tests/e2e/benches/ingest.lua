-- wrk script for the envelope ingest benchmark (tests/e2e/benches/ingest.rs): every request
-- carries a new event id (run nonce, thread number, per-thread counter), so every request is a
-- real insert, never an acknowledged duplicate. `done` prints one machine-readable line.
local threads = {}
local counter = 0
local nonce = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  nonce = tonumber(args[1] or "0") or 0
  counter = 0
end

function request()
  counter = counter + 1
  local id = string.format("%08x%08x%016x", nonce, tid, counter)
  local payload = '{"event_id":"' .. id .. '","platform":"javascript","level":"error",' ..
    '"exception":{"values":[{"type":"TypeError","value":"x is undefined (' .. counter .. ')",' ..
    '"stacktrace":{"frames":[{"function":"main","filename":"http://k/app.js","lineno":1,"colno":1,"in_app":true},' ..
    '{"function":"render","filename":"http://k/app.js","lineno":9,"colno":3,"in_app":true}]}}]},' ..
    '"breadcrumbs":{"values":[{"timestamp":1700000000,"category":"ui.click","message":"button#buy"}]}}'
  local body = '{"event_id":"' .. id .. '"}\n{"type":"event","length":' .. #payload .. '}\n' .. payload .. '\n'
  return wrk.format("POST", nil, { ["Content-Type"] = "text/plain;charset=UTF-8" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "VIGIL requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
