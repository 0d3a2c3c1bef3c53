-- POST /auth/signup with a new email for every request.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
count_statuses()
local n = 0
local run = os.getenv("BENCH_RUN_ID") or tostring(os.time())
function scenario_request()
  n = n + 1
  local email = string.format("signup-%s-%d-%d@example.com", run, thread_id or 0, n)
  return wrk.format("POST", "/auth/signup", { ["Content-Type"] = "application/json" },
    '{"email":"' .. email .. '","password":"correct horse battery"}')
end
