--- The `luapay trigger`, `luapay listen` and `luapay logs` commands: the
-- running background sandbox's journal (luapay.sandbox.journal), over its
-- JSON API at /_sandbox/.
local cli = require "luapay.cli"
local core = require "luapay.core"

local M = {}

local POLL = 0.2          -- seconds between two looks at the journal
local FORWARD_TTL = 15    -- a forward target lapses this long after `listen` stops renewing it
local RENEW = 5           -- seconds between two renewals

local function sandbox()
    local sb, err = cli.running_sandbox()
    if not sb then cli.config_error(err) end
    return sb
end

-- One request to the sandbox's API: the decoded answer and its status, or
-- a failure of the command (exit 1) when the sandbox does not answer.
local function api(http, sb, method, path, value)
    local res, err = http:request{ method = method, url = sb.url .. "/_sandbox/" .. path, decode = false,
        body = value and assert(core.json_encode(value)) or nil,
        headers = value and { ["Content-Type"] = "application/json" } or nil }
    if not res then error({ failed = "the sandbox does not answer: " .. cli.describe(err) }, 0) end
    local doc = core.json_decode(res.body)
    if type(doc) ~= "table" then error({ failed = "the sandbox answered HTTP " .. res.status .. " without JSON" }, 0) end
    return doc, res.status
end

local function client()
    return require("luapay.http").new{ retries = 0, timeout_ms = 30000, deadline_ms = 30000 }
end

-- Runs f(http); a failure of api() ends the command with exit 1.
local function with_api(f)
    local http = client()
    local ok, result = pcall(f, http)
    http:close()
    if ok then return result end
    if type(result) == "table" and result.failed then
        cli.fail(result.failed)
        return cli.EXIT.FAILED
    end
    error(result, 0)
end

local function parse(name, argv, min_args, max_args)
    local command = cli.commands[name]
    local pos, opts = cli.parse(argv, command.options)
    if opts.help then return nil, opts end
    if #pos < min_args then cli.usage_error(command.usage) end
    if #pos > max_args then cli.usage_error("too many arguments; " .. command.usage) end
    return pos, opts
end

local function clock(at)
    return os.date("%H:%M:%S", math.floor(tonumber(at) or 0))
end

---------------------------------------------------------------------------
-- luapay trigger
---------------------------------------------------------------------------

local function print_list(opts)
    local events = require "luapay.sandbox.events"
    local all, order = events.all()
    if opts.json or not cli.isatty(1) then
        return cli.print_json({ providers = all, order = order, actions = events.ACTIONS })
    end
    local lines = {}
    for _, name in ipairs(order) do
        lines[#lines + 1] = (name:gsub("_", "-"))
        for _, e in ipairs(all[name]) do
            lines[#lines + 1] = ("  %-24s %-8s %s%s"):format(e.name, e.on, e.doc,
                e.action and (" [" .. e.action .. "]") or "")
        end
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "actions (the sandbox page's buttons): " .. table.concat(events.ACTIONS, ", ")
    cli.out(table.concat(lines, "\n"), "\n")
    return cli.EXIT.OK
end

local function answer_text(answer, err)
    if answer and answer ~= core.null then return ("%d"):format(answer.status) end
    return "error: " .. tostring(err)
end

local function print_triggered(doc, opts)
    if opts.json or not cli.isatty(1) then return cli.print_json(doc) end
    local lines = { ("%s %s on %s"):format(doc.provider:gsub("_", "-"), doc.event, doc.id) }
    for _, n in ipairs(doc.notifications) do
        if n.url ~= core.null then
            lines[#lines + 1] = ("  --> %s %s  %s"):format(n.method, n.url, answer_text(n.answer, n.error))
        else
            lines[#lines + 1] = "  (no notification URL: give one with --url)"
        end
        if n.forward ~= core.null then
            lines[#lines + 1] = ("  --> forwarded to %s  %s"):format(n.forward.url,
                answer_text(n.forward.answer, n.forward.error))
        end
    end
    cli.out(table.concat(lines, "\n"), "\n")
end

--- luapay trigger PROVIDER EVENT [--id ID] [--url URL] [--amount N] [--currency C] [--json]
--- luapay trigger --list [--json]
function M.trigger(argv)
    local pos, opts = parse("trigger", argv, 0, 2)
    if not pos then
        cli.out(cli.commands.trigger.help, "\n")
        return cli.EXIT.OK
    end
    if opts.list then
        if #pos > 0 then cli.usage_error("--list takes no provider or event; " .. cli.commands.trigger.usage) end
        return print_list(opts)
    end
    if #pos < 2 then cli.usage_error(cli.commands.trigger.usage) end
    local events = require "luapay.sandbox.events"
    local provider, word = pos[1]:gsub("%-", "_"), pos[2]:gsub("%-", "_")
    local event, why = events.find(provider, word)
    if not event then cli.usage_error((why:gsub("provider '([^']*)' %((.*)%)$", function(p, list)
        return ("provider '%s' (%s)"):format(p, (list:gsub("_", "-")))
    end))) end
    local amount = opts.amount
    if amount ~= nil then
        amount = amount:match("^%d+$") and tonumber(amount)
        if not amount or amount < 1 then cli.usage_error("--amount takes a positive integer, in minor units (2500 is 25.00)") end
    end
    if opts.currency and not core.currency(opts.currency) then
        cli.usage_error("--currency takes an ISO 4217 code (EUR, SEK, ...)")
    end
    if opts.url and not opts.url:match("^https?://%S+$") then cli.usage_error("--url takes an http:// or https:// URL") end
    local sb = sandbox()
    return with_api(function(http)
        local doc, status = api(http, sb, "POST", "trigger", { provider = provider, event = event.name, id = opts.id,
            url = opts.url, amount = amount, currency = opts.currency })
        if status ~= 200 then
            cli.fail(doc.error or ("the sandbox answered HTTP " .. status))
            return status == 400 and cli.EXIT.USAGE or cli.EXIT.FAILED
        end
        print_triggered(doc, opts)
        return cli.EXIT.OK
    end)
end

---------------------------------------------------------------------------
-- luapay listen
---------------------------------------------------------------------------

local function print_notification(n, opts)
    if opts.json then
        cli.print_json(n)
        return io.stdout:flush()
    end
    local line = ("%s  %s %s [%s]"):format(clock(n.at), n.provider:gsub("_", "-"), n.event,
        n.id ~= core.null and n.id or "-")
    if n.forward ~= core.null then
        line = line .. ("  --> %s %s"):format(answer_text(n.forward.answer, n.forward.error), n.forward.url)
    end
    if n.url ~= core.null then line = line .. ("  (sent to %s: %s)"):format(n.url, answer_text(n.answer, n.error)) end
    cli.out(line, "\n")
    io.stdout:flush()
end

--- luapay listen --forward-to URL [--json]: sets the sandbox's forward
-- target and prints each notification as it is delivered, until Ctrl-C
-- (exit 130; the forward target is cleared).
function M.listen(argv)
    local pos, opts = parse("listen", argv, 0, 0)
    if not pos then
        cli.out(cli.commands.listen.help, "\n")
        return cli.EXIT.OK
    end
    local target = opts["forward-to"]
    if not target then cli.usage_error("--forward-to URL is required; " .. cli.commands.listen.usage) end
    if not target:match("^https?://%S+$") then cli.usage_error("--forward-to takes an http:// or https:// URL") end
    local sb = sandbox()
    return with_api(function(http)
        local cursor = api(http, sb, "GET", "journal?since=last").cursor
        api(http, sb, "POST", "forward", { url = target, ttl = FORWARD_TTL })
        cli.err(("Ready! Forwarding the sandbox's notifications to %s (Ctrl-C to stop)\n"):format(target))
        -- Ctrl-C raises "interrupted!" in the loop (cli.main leaves the
        -- interpreter's handling to this command): the target is cleared.
        local ok, err = pcall(function()
            local renewed = core.monotime()
            while true do
                local doc = api(http, sb, "GET", "journal?type=notification&since=" .. cursor)
                for _, n in ipairs(doc.entries) do print_notification(n, opts) end
                cursor = doc.cursor
                if core.monotime() - renewed > RENEW then
                    api(http, sb, "POST", "forward", { url = target, ttl = FORWARD_TTL })
                    renewed = core.monotime()
                end
                core.sleep(POLL)
            end
        end)
        if not tostring(err):find("interrupted!$") then error(err, 0) end
        local cleared = ok or pcall(api, http, sb, "POST", "forward", {})
        if not cleared then cli.fail("could not clear the forward target; it lapses in " .. FORWARD_TTL .. " s") end
        return 130
    end)
end

---------------------------------------------------------------------------
-- luapay logs
---------------------------------------------------------------------------

-- The error log's lines from offset on: {at, level, message} each, and the
-- new offset. nginx writes local time.
local function error_lines(sb, offset)
    local f = io.open(sb.prefix .. "/logs/error.log", "rb")
    if not f then return {}, offset end
    f:seek("set", offset)
    local text = f:read("*a") or ""
    f:close()
    local complete = text:match("^(.*\n)") or ""
    local out = {}
    for line in complete:gmatch("([^\n]*)\n") do
        local y, mo, d, h, mi, s, level, message = line:match("^(%d+)/(%d+)/(%d+) (%d+):(%d+):(%d+) %[(%a+)%] (.*)$")
        -- nginx retries a bind that found its port taken: not an error of the run
        local bind_retry = line:find("bind() to ", 1, true) and line:find("Address already in use", 1, true)
        if y and not bind_retry then
            out[#out + 1] = { type = "error", level = level, message = message,
                at = os.time{ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
                              min = tonumber(mi), sec = tonumber(s) } }
        end
    end
    return out, offset + #complete
end

local function print_log(e, opts)
    if opts.json then
        cli.print_json(e)
    elseif e.type == "error" then
        cli.out(("%s  [%s] %s\n"):format(clock(e.at), e.level, e.message))
    else
        local err = e.error ~= core.null and e.error and ("  error: " .. e.error) or ""
        cli.out(("%s  %s %s  %d  %d ms%s\n"):format(clock(e.at), e.method, e.path, e.status, e.ms, err))
    end
    io.stdout:flush()
end

--- luapay logs [--follow] [--json]: the requests the sandbox's fakes
-- served and its error log, oldest first; with --follow, then each as it
-- comes, until Ctrl-C.
function M.logs(argv)
    local pos, opts = parse("logs", argv, 0, 0)
    if not pos then
        cli.out(cli.commands.logs.help, "\n")
        return cli.EXIT.OK
    end
    local sb = sandbox()
    return with_api(function(http)
        local cursor, offset = 0, 0
        local function batch()
            local list = {}
            repeat
                local doc = api(http, sb, "GET", "journal?type=request&since=" .. cursor)
                for _, e in ipairs(doc.entries) do list[#list + 1] = e end
                local more = #doc.entries >= 500 -- a page of the journal's API is full
                cursor = doc.cursor
            until not more
            local errs
            errs, offset = error_lines(sb, offset)
            for _, e in ipairs(errs) do list[#list + 1] = e end
            -- by time; a request before an error of the same second
            for i, e in ipairs(list) do e.n = i end
            table.sort(list, function(a, b)
                if math.floor(a.at) ~= math.floor(b.at) then return a.at < b.at end
                return a.n < b.n
            end)
            for _, e in ipairs(list) do
                e.n = nil
                print_log(e, opts)
            end
        end
        batch()
        while opts.follow do
            core.sleep(POLL)
            batch()
        end
        return cli.EXIT.OK
    end)
end

return M
