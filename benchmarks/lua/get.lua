-- GET of the URL given on the command line (GET hit, GET miss, the hello-world ceiling).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
