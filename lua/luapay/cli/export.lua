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

--- export.resume(text) -> the cursor --resume gives (nil without one).
function export.resume(text)
    if text == nil then return nil end
    local cursor = core.json_decode(text)
    if type(cursor) ~= "table" then
        cli.usage_error("--resume takes the cursor an incomplete export printed (a JSON object)")
    end
    return cursor
end

local shell_quote = cli.shell_quote

-- The message of an export a page failure stopped: why, how much came
-- before, and the cursor that continues exactly after it (err.resume, from
-- the pager). A failure before anything was sent (a bad period) is err.
local function incomplete(err, count, where)
    if type(err) ~= "table" or err.resume == nil then return err end
    return ("export incomplete after %d transactions%s (page %s failed: %s); for the rest run the same command"
        .. " with --resume %s"):format(count, where, tostring(err.page or "?"), cli.describe(err),
        shell_quote(core.json_encode(err.resume)))
end

-- The CSV file a resumed export continues: FILE.partial as the failed run
-- left it, opened for appending, and the rows already in it. Anything else
-- is a usage error, before a request is sent: a resumed run that started a
-- new file would end as a FILE holding only the rest.
local function continue_partial(partial, fields)
    local f = io.open(partial, "rb")
    local header = f and f:read("*l")
    local rows = -1
    if header then
        rows = 0
        for _ in f:lines() do rows = rows + 1 end
    end
    if f then f:close() end
    if header ~= table.concat(fields, ",") .. "\r" then
        cli.usage_error(("--resume with --csv continues %s, which is not there or not this export's"):format(partial))
    end
    return assert(io.open(partial, "ab")), rows
end

--- export.stream(iterator, opts, fields) -> result | false | nil, err.
-- Streams the iterator to stdout as JSON lines (false: printed), or with
-- opts.csv into that file: written as FILE.partial and renamed only once
-- the whole period is in it, so a file of that name is always complete. A
-- page that fails ends the stream with an error that says so and how to
-- resume; the resumed run (opts.resume) appends to FILE.partial.
function export.stream(iterator, opts, fields)
    local count = 0
    local function progress()
        count = count + 1
        if count % PROGRESS_EVERY == 0 then cli.err(("luapay: %d transactions so far\n"):format(count)) end
    end
    if opts.csv then
        local partial = opts.csv .. ".partial"
        local out, before = partial, 0
        if opts.resume then
            local f
            f, before = continue_partial(partial, fields)
            local header = true -- begateway.csv writes it first; FILE.partial has it
            out = {
                write = function(_, text)
                    if header then
                        header = false
                        return true
                    end
                    return f:write(text)
                end,
                close = function() f:close() end,
            }
        end
        local counted = function()
            local tx, err = iterator()
            if tx then progress() end
            return tx, err
        end
        local rows, err = begateway.csv(counted, fields, out)
        if type(out) == "table" then out:close() end
        if not rows then return nil, incomplete(err, before + count, ", kept in " .. partial) end
        local ok, rerr = os.rename(partial, opts.csv)
        if not ok then return nil, ("cannot rename %s to %s: %s"):format(partial, opts.csv, tostring(rerr)) end
        return { written = before + rows, file = opts.csv }
    end
    -- Called directly, never by a generic for: a for loop ends silently on
    -- the nil a detached pager returns when its very first page fails.
    while true do
        local tx, err = iterator()
        if tx == nil then
            if err then return nil, incomplete(err, count, " printed") end
            return false
        end
        cli.out(core.json_encode(tx), "\n")
        progress()
    end
end

return export
