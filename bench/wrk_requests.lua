-- Replays pre-built requests from WRK_REQUESTS, one line each:
--   METHOD \t PATH \t name: value \x1f name: value ... \t BODY
-- Thread i of WRK_THREADS takes lines i, i+n, i+2n… so no two threads send the same
-- request; a thread that runs out starts again (its repeats show up as non-2xx).
local next_id = 1

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local function split(text, separator)
  local parts = {}
  for part in (text .. separator):gmatch("(.-)" .. separator) do
    parts[#parts + 1] = part
  end
  return parts
end

function init(args)
  local thread_count = tonumber(os.getenv("WRK_THREADS"))
  prepared = {}
  local line_number = 0
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    if line_number % thread_count == thread_id - 1 then
      local fields = split(line, "\t")
      local headers = {}
      if fields[3] ~= "" then
        for _, header in ipairs(split(fields[3], "\31")) do
          local name, value = header:match("^([^:]+): (.*)$")
          headers[name] = value
        end
      end
      local body = fields[4]
      if body == "" then body = nil end
      prepared[#prepared + 1] = wrk.format(fields[1], fields[2], headers, body)
    end
    line_number = line_number + 1
  end
  position = 0
  if #prepared == 0 then
    error("thread " .. thread_id .. " has no requests: give WRK_REQUESTS a line per thread")
  end
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end
