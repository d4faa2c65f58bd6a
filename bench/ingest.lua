-- N-central's ingest load for wrk: `wrk -s bench/ingest.lua URL -- PREFIX LAG`.
--
-- Each wrk thread owns its tickets, and every ten of its requests are four CREATEs, four
-- UPDATEs, one RESOLVE and one REOPEN, with the bodies N-central sends (title,
-- multi-line details, four customTags) and Basic auth. Requests of one thread run on
-- many connections at once, so a request never depends on one sent just before it: the
-- UPDATEs of cycle k touch the tickets created LAG cycles earlier, the RESOLVE the first
-- ticket of cycle k - 2*LAG, the REOPEN that of cycle k - 3*LAG. `bench.ingest` creates
-- (and resolves) the tickets the first 3*LAG cycles refer to before wrk starts, so that
-- every request is lawful and a real ledger answers each with a 200.
-- PREFIX (digits) keeps the tickets of one run apart from those of earlier runs.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_result.lua")

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local prefix, lag, offset, id, headers
local sent = 0

local sites = {"Leeds", "York", "Hull", "Bath"}
local customers = {"Acme Ltd", "Globex", "Initech", "Umbrella plc"}

function init(args)
  prefix = args[1]
  lag = tonumber(args[2])
  offset = 12 * lag
  id = wrk.thread:get("id")
  headers = {["Content-Type"] = "application/json", ["Authorization"] = args[3]}
  -- wrk calls the first thread's request() once to check it, and sends nothing of it.
  if id == 0 then sent = -1 end
end

local function ticket(index)
  return prefix .. string.format("%02d%08d", id, index + offset)
end

local function body(action, index, n)
  local t = ticket(index)
  local site = sites[index % 4 + 1]
  return '{"action":"' .. action .. '","ncentralTicketId":"' .. t .. '",'
    .. '"title":"Disk space low on SRV-' .. t .. ' (C:)",'
    .. '"details":"Device: SRV-' .. t .. '\\nCustomer: ' .. customers[index % 4 + 1]
    .. '\\nService: Disk Space - C:\\nState: Failed (97% used, 3.1 GB free)'
    .. '\\nTriggered: request ' .. n .. ' of thread ' .. id .. '",'
    .. '"customTags":{"site":"' .. site .. '","customer":"' .. customers[index % 4 + 1]
    .. '","priority":"P2","queue":"Servers"}}'
end

-- Slot in the cycle of ten -> action and which ticket of which cycle it touches.
local plan = {
  {"CREATE", 0, 0}, {"UPDATE", 1, 0}, {"CREATE", 0, 1}, {"UPDATE", 1, 1},
  {"CREATE", 0, 2}, {"UPDATE", 1, 2}, {"RESOLVE", 2, 0}, {"CREATE", 0, 3},
  {"UPDATE", 1, 3}, {"REOPEN", 3, 0},
}

function request()
  local cycle = math.floor(sent / 10)
  local step = plan[sent % 10 + 1]
  local index = 4 * (cycle - step[2] * lag) + step[3]
  sent = sent + 1
  return wrk.format("PUT", "/ncentral/tickets", headers, body(step[1], index, sent))
end
