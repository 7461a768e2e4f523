-- wrk script of the outside-load stage (bench/outside_load.py), for two loads:
--   reads: GET requests taking the paths in turn;
--   events: POST /v1/events, each request a new petition visit shaped as bench/events.py's
--   EventSource makes them (villages in turn, destination and headcount from a serial, a
--   petitioner reference on every fourth).
-- Both take the keys in turn and count the answers other than 2xx, printed at the end as
-- "Not 2xx responses: N" (wrk's own count leaves out 1xx and 3xx).
-- Arguments: a file of lines "key K" and either "path P" (reads) or "village V",
-- "destination D" and "occurred_at T" (events); for events, the first 20 hex digits (with
-- their dashes) of every event id of this run, whose last 12 are the thread's number and the
-- thread's serial, so that no id is sent twice.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
end

local headers, paths, villages, destinations = {}, {}, {}, {}
local occurred_at, ids
local serial = 0
not_2xx = 0 -- global: done() reads it from each thread

function init(args)
  for line in io.lines(args[1]) do
    local kind, value = line:match("^(%S+) (.+)$")
    if kind == "key" then
      headers[#headers + 1] = { ["Authorization"] = "Bearer " .. value }
    elseif kind == "path" then
      paths[#paths + 1] = value
    elseif kind == "village" then
      villages[#villages + 1] = value
    elseif kind == "destination" then
      destinations[#destinations + 1] = value
    elseif kind == "occurred_at" then
      occurred_at = value
    end
  end
  ids = args[2]
  if ids then
    for _, chosen in ipairs(headers) do
      chosen["Content-Type"] = "application/json"
    end
  end
end

local function event()
  local petitioner = ""
  if serial % 4 == 0 then
    petitioner = string.format(',"petitioner_ref":"petitioner-%d"', serial % 997)
  end
  return string.format(
    '{"event_id":"%s%02x%010x","type":"petition_visit","unit_code":"%s",'
      .. '"occurred_at":"%s","destination_level":"%s","headcount":%d%s}',
    ids, thread_number, serial,
    villages[serial % #villages + 1],
    occurred_at,
    destinations[serial % #destinations + 1],
    1 + serial % 7,
    petitioner
  )
end

function request()
  local chosen = headers[serial % #headers + 1]
  local formatted
  if ids then
    formatted = wrk.format("POST", nil, chosen, event())
  else
    formatted = wrk.format("GET", paths[serial % #paths + 1], chosen)
  end
  serial = serial + 1
  return formatted
end

function response(status, _, _)
  if status < 200 or status > 299 then
    not_2xx = not_2xx + 1
  end
end

function done(_, _, _)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("not_2xx")
  end
  io.write(string.format("Not 2xx responses: %d\n", total))
end
