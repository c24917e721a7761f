-- GET of the URL given on the command line with a bearer token from the
-- environment (CACHEGRID_BENCH_TOKEN): the ACL's cost (benchmarks/acl_cost.py).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CACHEGRID_BENCH_TOKEN")
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
