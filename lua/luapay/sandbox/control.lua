--- luapay.sandbox.control: what the reporting fakes share inside nginx:
-- JSON answers, HTTP Basic checks, request counting and the failure plan a
-- spec arms through the fake's control endpoints.
--
--   GET {prefix}/_control/reset                      counters and plans cleared
--   GET {prefix}/_control/fail?after=N&status=S&times=T
--        let N requests through, then fail T of them (default 1) with S:
--        an HTTP status (500, 503, 401, ...), "drop" (close the connection
--        without answering) or "garbage" (200 with a body that is not JSON)
--   GET {prefix}/_control/stats                      {requests, failed, last}
--        last: the last request's body (POST) or query string (GET)
local core = require "luapay.core"

local control = {}

local function dict() return ngx.shared.luapay_sandbox end

function control.json(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print((assert(core.json_encode(value))))
end

local function arg(name)
    local v = ngx.var["arg_" .. name]
    return v and ngx.unescape_uri(v)
end
control.arg = arg

--- Are the request's Basic credentials user:password? (constant time)
function control.basic_ok(user, password)
    local h = ngx.var.http_authorization
    local b64 = h and h:match("^Basic%s+(%S+)$")
    local given = b64 and ngx.decode_base64(b64)
    return given ~= nil and core.equal(given, user .. ":" .. password)
end

--- control.lose(how): the answer lost on its way back, after the request
-- was carried out: "drop" closes the connection without a word, an HTTP
-- status answers with it and a proxy's HTML page.
function control.lose(how)
    if how == "drop" then return ngx.exit(444) end
    local status = tonumber(how) or 500
    ngx.status = status
    ngx.header["Content-Type"] = "text/html"
    ngx.print(("<html><head><title>%d</title></head><body><center><h1>%d</h1></center></body></html>"):format(status, status))
    return ngx.exit(status)
end

--- Counts the request, records it, and applies an armed failure plan.
-- Returns true when the request was answered here (a planned failure).
function control.before(name, last)
    local d = dict()
    d:incr(name .. ":requests", 1, 0)
    d:set(name .. ":last", last or "")
    local times = d:get(name .. ":fail_times") or 0
    if times <= 0 then return false end
    local after = d:get(name .. ":fail_after") or 0
    if after > 0 then
        d:incr(name .. ":fail_after", -1)
        return false
    end
    d:incr(name .. ":fail_times", -1)
    d:incr(name .. ":failed", 1, 0)
    local status = d:get(name .. ":fail_status") or "500"
    if status == "drop" then return true, control.lose("drop") end
    if status == "garbage" then
        ngx.status = 200
        ngx.header["Content-Type"] = "application/json"
        ngx.print("<html>upstream hiccup</html>")
        return true
    end
    control.json(tonumber(status) or 500, { message = "Sandbox failure on request", code = "sandbox_failure" })
    return true
end

--- Answers {prefix}/_control/...; true when path was a control path.
function control.handle(name, path)
    local what = path:match("^_control/(%w+)$")
    if not what then return false end
    local d = dict()
    if what == "reset" then
        for _, k in ipairs({ "requests", "last", "failed", "fail_times", "fail_after", "fail_status" }) do
            d:delete(name .. ":" .. k)
        end
        control.json(200, { ok = true })
    elseif what == "fail" then
        d:set(name .. ":fail_after", tonumber(arg("after")) or 0)
        d:set(name .. ":fail_times", tonumber(arg("times")) or 1)
        d:set(name .. ":fail_status", arg("status") or "500")
        control.json(200, { ok = true })
    elseif what == "stats" then
        control.json(200, {
            requests = d:get(name .. ":requests") or 0, failed = d:get(name .. ":failed") or 0,
            last = d:get(name .. ":last") or core.null,
        })
    else
        control.json(404, { message = "unknown control " .. what })
    end
    return true
end

return control
