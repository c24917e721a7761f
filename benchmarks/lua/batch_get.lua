-- POST /cache/batch/get of 100 keys, all present (user:000000 .. user:000099,
-- preloaded by http_bench.py). Usage: wrk ... -s batch_get.lua URL -- [count]
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

function init(args)
   local count = tonumber(args[1]) or 100
   local keys = {}
   for i = 0, count - 1 do
      keys[#keys + 1] = string.format('"user:%06d"', i)
   end
   wrk.method = "POST"
   wrk.body = '{"keys":[' .. table.concat(keys, ",") .. ']}'
   wrk.headers["Content-Type"] = "application/json"
end
