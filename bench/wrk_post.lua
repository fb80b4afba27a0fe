-- wrk script for bench/: POST the chat body with JSON + optional Bearer auth, and print
-- one machine-readable summary line ("WRKJSON {...}") that bench/run.py parses.
--   WRK_AUTH="Bearer sk-..." wrk -t2 -c64 -d10s -s bench/wrk_post.lua http://127.0.0.1:P/v1/chat/completions
-- Other requests (the path is the URL's):
--   WRK_BODY   the request body (default: the small gpt-4o chat below)
--   WRK_HEADERS extra headers, one "Name: value" per line, e.g.
--              WRK_HEADERS=$'x-api-key: sk-...\nanthropic-version: 2023-06-01'
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local extra = os.getenv("WRK_HEADERS")
if extra and extra ~= "" then
  for line in extra:gmatch("[^\r\n]+") do
    local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then
      wrk.headers[name] = value
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
