-- PUT of a small JSON value to the URL given on the command line (one key,
-- replaced on every request: a static request costs wrk nothing per request).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

wrk.method = "PUT"
wrk.body = '{"name":"Alice","age":30}'
wrk.headers["Content-Type"] = "application/json"
