-- PUT of the JSON in the file given after "--" to the URL given on the
-- command line (one key, replaced on every request), for compression_bench.py.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.body = file:read("*a")
   file:close()
   wrk.method = "PUT"
   wrk.headers["Content-Type"] = "application/json"
end
