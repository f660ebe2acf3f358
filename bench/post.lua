-- wrk script: POST signed CallFire callbacks, each body a new callback.
-- args[1]: a file of "signature<TAB>body" lines; args[2]: the line to start at (0-based).
-- Requests are formatted once in init, so the generator spends its time sending.
-- done() prints one JSON line that bench/wrk.py reads.
local prepared = {}
local count = 0
local position = 1

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    count = count + 1
    prepared[count] = wrk.format("POST", wrk.path, {
      ["Content-Type"] = "application/json",
      ["X-CallFire-Signature"] = line:sub(1, tab - 1),
    }, line:sub(tab + 1))
  end
  position = (tonumber(args[2]) or 0) % count + 1
end

function request()
  local r = prepared[position]
  position = position % count + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
