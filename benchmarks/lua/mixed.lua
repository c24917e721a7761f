-- GETs and PUTs (75% / 25% unless told) over a preloaded keyspace
-- (user:000000 .. user:N-1, all present).
-- Usage: wrk ... -s mixed.lua URL -- [keyspace [get share]], e.g. -- 100000 0.8
-- The requests are formatted once in init(); request() only picks one, so
-- wrk's per-request cost stays small (it still calls Lua per request).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

local get_share = 0.75
local gets, puts, count = {}, {}, 0
local threads = 0

function setup(thread)
   -- Each wrk thread gets its own random sequence, reproducible run to run.
   threads = threads + 1
   thread:set("seed", threads)
end

function init(args)
   count = tonumber(args[1]) or 10000
   get_share = tonumber(args[2]) or get_share
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
   if math.random() < get_share then
      return gets[math.random(count)]
   end
   return puts[math.random(count)]
end
