-- POST /cache/batch/set of 100 items (user:000000 .. user:000099, replaced on
-- every request). Usage: wrk ... -s batch_set.lua URL -- [count]
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

function init(args)
   local count = tonumber(args[1]) or 100
   local items = {}
   for i = 0, count - 1 do
      items[#items + 1] = string.format('"user:%06d":{"name":"Alice","age":30}', i)
   end
   wrk.method = "POST"
   wrk.body = '{"items":{' .. table.concat(items, ",") .. '}}'
   wrk.headers["Content-Type"] = "application/json"
end
