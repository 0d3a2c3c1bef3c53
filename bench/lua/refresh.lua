-- Each connection rotates its own refresh-token chain: thread k takes the refresh tokens of
-- lines k, k+T, k+2T... of BENCH_REFRESH (T = BENCH_THREADS); every response's successor
-- goes back into the thread's pool of ready chains. Each request is its fixed head (built
-- once) and its body: wrk.format, which rebuilds the head from a table on every call, cost
-- wrk ~15% more CPU per refresh, on the two cores the service runs on.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
count_statuses()
local ready
local head
function scenario_init(args)
  local all = read_lines(os.getenv("BENCH_REFRESH"))
  local threads_n = tonumber(os.getenv("BENCH_THREADS"))
  ready = {}
  for idx, token in ipairs(all) do
    if (idx - 1) % threads_n == (thread_id - 1) then table.insert(ready, token) end
  end
  head = "POST /auth/refresh HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nContent-Type: application/json\r\nContent-Length: "
end
function scenario_request()
  local token = table.remove(ready)
  if token == nil then
    -- A chain was lost (non-200 answer): the request is still sent, and counted as an error.
    token = "lost"
  end
  local body = '{"refresh_token":"' .. token .. '"}'
  return head .. #body .. "\r\n\r\n" .. body
end
function scenario_response(status, headers, body)
  local next_token = body:match('"refresh_token":"([^"]+)"')
  if next_token then table.insert(ready, next_token) end
end
