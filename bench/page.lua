-- One page, asked for again and again with the operator's credentials, for wrk:
-- `wrk -s bench/page.lua URL -- AUTHORIZATION` (URL with its query string; AUTHORIZATION
-- the header's whole value, e.g. `Basic b3A6c2VjcmV0`). Prints the `WRK_RESULT` line.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")

function init(args)
  wrk.headers["Authorization"] = args[1]
end
