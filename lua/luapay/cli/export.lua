--- Shared by the `luapay export` adapters: period parsing, streaming to
-- JSON lines or CSV, and the progress line on standard error.
local begateway = require "luapay.begateway"
local cli = require "luapay.cli"
local core = require "luapay.core"

local export = {}

local PROGRESS_EVERY = 1000

--- "YYYY-MM-DD" or "YYYY-MM-DDThh:mm:ss" -> "YYYY-MM-DDThh:mm:ss"; a bare
-- date means the start of the day for --from and its end for --to.
function export.datetime(text, name, end_of_day)
    if type(text) ~= "string" then cli.usage_error("--" .. name .. " is required (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss)") end
    if text:match("^%d%d%d%d%-%d%d%-%d%d$") then text = text .. (end_of_day and "T23:59:59" or "T00:00:00") end
    if not core.check("datetime", text) then cli.usage_error("--" .. name .. " must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ss") end
    return text
end

--- Unix milliseconds of a UTC "YYYY-MM-DDThh:mm:ss" (days-from-civil).
function export.unix_ms(datetime)
    local y, m, d, hh, mm, ss = datetime:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)")
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    return ((days * 24 + tonumber(hh)) * 60 + tonumber(mm)) * 60000 + tonumber(ss) * 1000
end

--- Streams an iterator to stdout as JSON lines or to a CSV file.
function export.stream(iterator, csv_path, fields)
    local count = 0
    local function progress()
        count = count + 1
        if count % PROGRESS_EVERY == 0 then io.stderr:write(("luapay: %d transactions so far\n"):format(count)) end
    end
    if csv_path then
        local counted = function()
            local tx, err = iterator()
            if tx then progress() end
            return tx, err
        end
        local rows, err = begateway.csv(counted, fields, csv_path)
        if not rows then return nil, err end
        return { written = rows, file = csv_path }
    end
    for tx, err in iterator do
        if not tx then return nil, err end
        io.stdout:write(core.json_encode(tx), "\n")
        progress()
    end
    return nil -- results already printed
end

return export
