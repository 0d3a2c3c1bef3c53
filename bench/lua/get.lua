-- GET of BENCH_PATH (health, jwks); the request is built once.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local prepared
function scenario_init(args)
  prepared = wrk.format("GET", os.getenv("BENCH_PATH"))
end
function scenario_request()
  return prepared
end
