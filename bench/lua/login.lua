-- POST BENCH_PATH (default /auth/login) {"email", "password"}, cycling through the distinct
-- users of BENCH_USERS (one email per line), all with password BENCH_PASSWORD.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
count_statuses()
local users, i
local path = os.getenv("BENCH_PATH") or "/auth/login"
local password = os.getenv("BENCH_PASSWORD")
function scenario_init(args)
  users = read_lines(os.getenv("BENCH_USERS"))
  i = (thread_id or 1) * 7919
end
function scenario_request()
  i = i + 1
  local email = users[(i % #users) + 1]
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" },
    '{"email":"' .. email .. '","password":"' .. password .. '"}')
end
