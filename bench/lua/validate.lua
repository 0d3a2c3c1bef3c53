-- POST /auth/validate {"token": ...} with tokens drawn at random from BENCH_TOKENS; requests
-- are built once at start.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local prepared
function scenario_init(args)
  prepared = {}
  for _, t in ipairs(read_lines(os.getenv("BENCH_TOKENS"))) do
    table.insert(prepared, wrk.format("POST", "/auth/validate", { ["Content-Type"] = "application/json" },
      '{"token":"' .. t .. '"}'))
  end
  math.randomseed(thread_id or os.time())
end
function scenario_request()
  return prepared[math.random(#prepared)]
end
