--- luapay.sandbox.journal: what the sandbox's fakes did, for `luapay
-- listen`, `luapay logs`, `luapay trigger` and the sandbox's page. Runs
-- inside nginx; mounted at /_sandbox/ by luapay.sandbox.providers.routes.
-- The fakes write to it: the operations they create or change
-- (journal.operation), every notification they send (journal.deliver: the
-- one way out for all of them, which also forwards), and the router every
-- request it served (journal.request).
--
-- The journal is a bounded log (the last journal.MAX entries) in the
-- sandbox's shared dict, written with safe_set: were the dict full, the
-- journal would lose entries, never evict the fakes' own state. Each entry is a JSON object with seq (1, 2, ...:
-- its place), type, at (Unix time, seconds with a fraction) and:
--
--   type "operation"     a payment, refund or payout, each time a fake creates or changes it:
--     provider, kind ("payment" | "refund" | "payout"), id (the fake's id for it; a
--     refund's is "<payment id>/refund/<n>"), parent (a refund's payment id, or null),
--     amount (integer, minor units, or null), currency (or null), status ("created",
--     "pending", "authorized", "succeeded", "failed", "canceled", "refunded",
--     "partially_refunded", "reversed", "partially_reversed")
--   type "notification"  one notification sent:
--     provider, id (the operation it is about, or null), event (what it says: the
--     provider's word, e.g. "credit", "sale success", "ResultCode 0 CRDT"),
--     method ("POST" | "GET"), url (where it went; null: no URL was known, only forwarded),
--     body (as sent, signed: what client:notification takes as raw_body; for a GET, the
--     query string), headers ({name = value} as sent),
--     answer ({status, body} of the merchant's answer, or null), error (why there is no
--     answer, or null),
--     forward ({url, answer, error} when it was also sent to the forward target, or null)
--   type "request"       a request a fake served:
--     method, path, status, ms (milliseconds), error (the handler's Lua error, or null)
--
-- GET /_sandbox/ is the sandbox's page (luapay.sandbox.page: HTML showing
-- all of the below, built on this API only).
--
-- The JSON API (every answer application/json; a bad request is 400 {error}):
--   GET  /_sandbox/journal[?since=SEQ][&type=T[,T]]
--        {cursor, entries}: the entries after since (default 0: all kept), oldest first,
--        at most 500; follow by passing cursor back as since (it is the last seq
--        returned, or since itself when nothing is new). since=last: no entries, the
--        cursor of the newest (to follow from now on). type filters, e.g.
--        type=notification or type=operation,notification.
--   GET  /_sandbox/operations   {operations}: every operation's latest entry, oldest first
--   GET  /_sandbox/forward      {url}: the forward target (null: none)
--   POST /_sandbox/forward      body {url} sets it (http:// or https://), {url: null} or {}
--        clears it; {url, ttl} lets it lapse after ttl seconds unless set again (`luapay
--        listen` renews it). Answers {url}.
--   GET  /_sandbox/events       {providers: {name: [event]}, order: [name], actions: [name]},
--        event = {name, on, means, doc, action} (luapay.sandbox.events)
--   POST /_sandbox/trigger      body {provider, event, id?, url?, amount?, currency?}: the fake
--        sends a signed notification of that event (or action: approve, decline,
--        fail_refund, reverse_payout) about operation id (given none, it creates one, of
--        amount and currency). url: where to send it (default: the operation's own
--        notification URL; none: only to the forward target). Answers {provider, event, id,
--        notifications: [entry]}; 400 {error} for an unknown provider or event (the message
--        names the choices), 404 {error} for an unknown id, 409 {error} when the operation
--        cannot take the event.
local core = require "luapay.core"

local journal = {}

journal.MAX = 2000 -- entries kept
local MAX_OPERATIONS = 1000
local PAGE = 500
local BODY_CAP = 4096 -- of an answer's body kept

local function dict() return ngx.shared.luapay_sandbox end

-- nginx's clock as of this turn of its event loop: exact enough for a
-- journal, where ngx.update_time() would end the LuaJIT trace of every
-- request the sandbox serves (spec/84 counts such aborts; this file shares
-- its base name with cli/journal.lua).
local function now()
    return ngx.now()
end

local function encode(v) return assert(core.json_encode(v)) end
local function decode(s) return s and core.json_decode(s) or nil end
local null = core.null

local function or_null(v)
    if v == nil then return null end
    return v
end

--- journal.append(entry) -> seq: adds an entry (type and its fields),
-- dropping the oldest beyond MAX.
function journal.append(entry)
    local d = dict()
    local seq = d:incr("journal:seq", 1, 0)
    entry.seq, entry.at = seq, entry.at or now()
    d:safe_set("journal:e:" .. seq, encode(entry))
    if seq > journal.MAX then d:delete("journal:e:" .. (seq - journal.MAX)) end
    return seq
end

--- journal.operation{provider, kind, id, parent, amount, currency, status}:
-- a fake created or changed an operation.
function journal.operation(op)
    local entry = {
        type = "operation", provider = op.provider, kind = op.kind, id = tostring(op.id),
        parent = op.parent and tostring(op.parent) or null, amount = or_null(op.amount),
        currency = or_null(op.currency), status = op.status,
    }
    journal.append(entry)
    local d = dict()
    local key = "journal:op:" .. entry.provider .. ":" .. entry.id
    if d:get(key) == nil then
        local n = d:incr("journal:opseq", 1, 0)
        d:safe_set("journal:opi:" .. n, key)
        if n > MAX_OPERATIONS then
            local old = d:get("journal:opi:" .. (n - MAX_OPERATIONS))
            if old then d:delete(old) end
            d:delete("journal:opi:" .. (n - MAX_OPERATIONS))
        end
    end
    d:safe_set(key, encode(entry))
end

--- journal.forward_target() -> the URL notifications are also sent to, or nil.
function journal.forward_target()
    return dict():get("journal:forward")
end

local function cap(s)
    if type(s) ~= "string" then return null end
    if #s > BODY_CAP then return s:sub(1, BODY_CAP) end
    return s
end

local function send(method, url, body, query, headers, timeout_ms)
    local target = url
    if query then target = url .. (url:find("?", 1, true) and "&" or "?") .. query end
    local client = require("luapay.http").new{ retries = 0, timeout_ms = timeout_ms, deadline_ms = timeout_ms }
    return client:request{ method = method, url = target, body = method ~= "GET" and body or nil,
                           headers = headers, decode = false }
end

--- journal.deliver(n) -> res | nil, err: sends one notification, records
-- it with the answer, and sends it, the same bytes, to the forward target
-- if one is set. Cosockets: call it from a content handler or a timer.
-- n: {provider, id, event, url (the merchant's; nil: none), method
-- ("POST", or "GET" with the signed query string as body, sent after
-- url's "?"), body, headers, timeout_ms (default 10000)}.
-- res, err: the merchant's answer (luapay.http), as the fake judges it;
-- with no url, nil and "no notification URL".
function journal.deliver(n)
    local method, headers = n.method or "POST", n.headers or {}
    local query = method == "GET" and n.body or nil
    local timeout = n.timeout_ms or 10000
    local entry = {
        type = "notification", provider = n.provider, id = n.id and tostring(n.id) or null, event = n.event,
        method = method, url = or_null(n.url), body = n.body, headers = headers,
        answer = null, error = null, forward = null,
    }
    local res, err
    if n.url then
        res, err = send(method, n.url, n.body, query, headers, timeout)
        if res then
            entry.answer = { status = res.status, body = cap(res.body) }
        else
            entry.error = err.message or tostring(err)
        end
    else
        err = "no notification URL"
        entry.error = err
    end
    local forward = journal.forward_target()
    if forward then
        local fres, ferr = send(method, forward, n.body, query, headers, timeout)
        entry.forward = { url = forward, answer = fres and { status = fres.status, body = cap(fres.body) } or null,
                          error = ferr and (ferr.message or tostring(ferr)) or null }
    end
    journal.append(entry)
    if ngx.ctx.journal_sent then table.insert(ngx.ctx.journal_sent, entry) end
    return res, err
end

--- journal.request(): the router's log phase records the request just
-- served (not those of /_sandbox/ itself: following the journal would
-- fill it).
function journal.request()
    local uri = ngx.var.uri or ""
    if uri:sub(1, 10) == "/_sandbox/" then return end
    local started = ngx.req.start_time()
    journal.append{
        type = "request", method = ngx.req.get_method(), path = uri, status = ngx.status,
        ms = math.floor((now() - started) * 1000 + 0.5), error = or_null(ngx.ctx.sandbox_error),
    }
end

---------------------------------------------------------------------------
-- The JSON API
---------------------------------------------------------------------------

local function reply(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(encode(value))
end

local function arg(name)
    local v = ngx.var["arg_" .. name]
    return v and ngx.unescape_uri(v)
end

local function array(t) return setmetatable(t, core.array_mt) end

local function read_journal()
    if arg("since") == "last" then return reply(200, { cursor = dict():get("journal:seq") or 0, entries = array {} }) end
    local since = tonumber(arg("since") or "0")
    if not since or since < 0 or since ~= math.floor(since) then return reply(400, { error = "since: a seq (0, 1, ...)" }) end
    local types
    if arg("type") then
        types = {}
        for t in arg("type"):gmatch("[^,]+") do types[t] = true end
    end
    local d = dict()
    local last = d:get("journal:seq") or 0
    local from = math.max(since, last - journal.MAX) + 1
    local entries, cursor = array {}, math.max(since, 0)
    for seq = from, last do
        local text = d:get("journal:e:" .. seq)
        cursor = seq
        if text then
            local entry = decode(text)
            if not types or types[entry.type] then entries[#entries + 1] = entry end
            if #entries >= PAGE then break end
        end
    end
    if since > last then cursor = last end -- a journal started again (sandbox restarted)
    return reply(200, { cursor = cursor, entries = entries })
end

local function read_operations()
    local d = dict()
    local n = d:get("journal:opseq") or 0
    local out = array {}
    for i = math.max(1, n - MAX_OPERATIONS + 1), n do
        local key = d:get("journal:opi:" .. i)
        local text = key and d:get(key)
        if text then out[#out + 1] = decode(text) end
    end
    return reply(200, { operations = out })
end

local function body_json()
    ngx.req.read_body()
    local text = ngx.req.get_body_data() or ""
    if text == "" then return {} end
    local value = core.json_decode(text)
    if type(value) ~= "table" then return nil end
    return value
end

local function forward()
    local d = dict()
    if ngx.req.get_method() == "POST" then
        local req = body_json()
        if not req then return reply(400, { error = "body: {url, ttl} as JSON" }) end
        local url = req.url
        if url == nil or url == null then
            d:delete("journal:forward")
        elseif type(url) ~= "string" or not url:match("^https?://[^%s]+$") then
            return reply(400, { error = "url: an http:// or https:// URL" })
        else
            local ttl = tonumber(req.ttl ~= null and req.ttl or nil) or 0
            d:set("journal:forward", url, ttl > 0 and ttl or 0)
        end
    end
    return reply(200, { url = or_null(d:get("journal:forward")) })
end

local function list_events()
    local all, order = require("luapay.sandbox.events").all()
    local out = {}
    for name, list in pairs(all) do out[name] = array(list) end
    return reply(200, { providers = out, order = array(order), actions = array(require("luapay.sandbox.events").ACTIONS) })
end

local function trigger(config)
    if ngx.req.get_method() ~= "POST" then return reply(405, { error = "POST {provider, event, id?, url?}" }) end
    local req = body_json()
    if not req then return reply(400, { error = "body: {provider, event, id?, url?, amount?, currency?} as JSON" }) end
    for k, v in pairs(req) do
        if v == null then req[k] = nil end
    end
    local event, why = require("luapay.sandbox.events").find(req.provider, req.event)
    if not event then return reply(400, { error = why }) end
    if req.id ~= nil then req.id = tostring(req.id) end
    if req.url ~= nil and (type(req.url) ~= "string" or not req.url:match("^https?://[^%s]+$")) then
        return reply(400, { error = "url: an http:// or https:// URL" })
    end
    if req.amount ~= nil and (type(req.amount) ~= "number" or req.amount < 1 or req.amount ~= math.floor(req.amount)) then
        return reply(400, { error = "amount: a positive integer, in minor units" })
    end
    local sent = array {}
    ngx.ctx.journal_sent = sent -- journal.deliver adds what this request sends
    local id, status, message = require("luapay.sandbox." .. req.provider).trigger(event, req, config)
    if not id then return reply(status or 409, { error = message }) end
    return reply(200, { provider = req.provider, event = event.name, id = tostring(id), notifications = sent })
end

--- The /_sandbox/ route's handler.
-- Only the machine itself may drive the sandbox. A Host that is not a
-- loopback name is a DNS-rebinding page reading the journal; a POST that is
-- not JSON is another site's form (a browser sends JSON cross-site only after
-- a preflight, which gets no CORS answer here) pressing the buttons.
local LOOPBACK_HOSTS = { ["127.0.0.1"] = true, ["localhost"] = true, ["[::1]"] = true }

local function from_this_machine()
    local host = (ngx.var.http_host or ""):lower():gsub(":%d+$", "")
    if not LOOPBACK_HOSTS[host] then
        return false, 403, "the sandbox answers only to a loopback Host (127.0.0.1, localhost, [::1])"
    end
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        local ct = (ngx.var.http_content_type or ""):lower()
        if not ct:match("^application/json%s*$") and not ct:match("^application/json%s*;") then
            return false, 415, "Content-Type: application/json"
        end
    end
    return true
end

function journal.handle(path, config)
    local ok, status, why = from_this_machine()
    if not ok then return reply(status, { error = why }) end
    if path == "" then return require("luapay.sandbox.page").handle() end
    if path == "journal" then return read_journal() end
    if path == "operations" then return read_operations() end
    if path == "forward" then return forward() end
    if path == "events" then return list_events() end
    if path == "trigger" then return trigger(config) end
    return reply(404, { error = "no sandbox endpoint /_sandbox/" .. path })
end

return journal
