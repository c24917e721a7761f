-- GET of the URL given on the command line with the Accept-Encoding given
-- after "--" (none: no header), for compression_bench.py.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")

function init(args)
   if args[1] and args[1] ~= "" then
      wrk.headers["Accept-Encoding"] = args[1]
   end
end
