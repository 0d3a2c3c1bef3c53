-- GET /auth/verify with a bearer token drawn at random from BENCH_TOKENS (one per line).
-- Requests are built once at start so the load generator spends its CPU on sending them.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local prepared
function scenario_init(args)
  prepared = {}
  for _, t in ipairs(read_lines(os.getenv("BENCH_TOKENS"))) do
    table.insert(prepared, wrk.format("GET", "/auth/verify", { ["Authorization"] = "Bearer " .. t }))
  end
  math.randomseed(thread_id or os.time())
end
function scenario_request()
  return prepared[math.random(#prepared)]
end
