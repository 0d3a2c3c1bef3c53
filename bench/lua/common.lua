-- Shared by every scenario: per-thread status counts and a JSON summary line from done().
-- Scripts set `scenario_request` (and optionally `scenario_response`, `scenario_init`).

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then table.insert(lines, line) end
  end
  return lines
end

function init(args)
  statuses = {}
  if scenario_init then scenario_init(args) end
end

function request()
  return scenario_request()
end

-- Counting every status (and reading bodies) needs wrk's `response` hook, which makes wrk copy
-- every header and body into Lua for every response: scenarios that need it (login, signup,
-- refresh) call this; the others leave wrk's own count of statuses >= 400 to tell failures.
function count_statuses()
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if scenario_response then scenario_response(status, headers, body) end
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, n in pairs(s) do merged[tostring(code)] = (merged[tostring(code)] or 0) + n end
    end
  end
  local e = summary.errors
  if next(merged) == nil then
    merged["2xx-3xx"] = summary.requests - e.status
    if e.status > 0 then merged["4xx-5xx"] = e.status end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, string.format('"%s":%d', code, n)) end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
