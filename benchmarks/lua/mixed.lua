-- 75% GET / 25% PUT over a preloaded keyspace (user:000000 .. user:N-1, all
-- present). Usage: wrk ... -s mixed.lua URL -- [keyspace]
-- The requests are formatted once in init(); request() only picks one, so
-- wrk's per-request cost stays small (it still calls Lua per request).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local GET_SHARE = 0.75
local gets, puts, count = {}, {}, 0
local threads = 0

function setup(thread)
   -- Each wrk thread gets its own random sequence, reproducible run to run.
   threads = threads + 1
   thread:set("seed", threads)
end

function init(args)
   count = tonumber(args[1]) or 10000
   math.randomseed(seed or 1)
   local headers = {["Content-Type"] = "application/json"}
   local body = '{"name":"Alice","age":30}'
   for i = 1, count do
      local path = string.format("/cache/user:%06d", i - 1)
      gets[i] = wrk.format("GET", path)
      puts[i] = wrk.format("PUT", path, headers, body)
   end
end

function request()
   if math.random() < GET_SHARE then
      return gets[math.random(count)]
   end
   return puts[math.random(count)]
end
