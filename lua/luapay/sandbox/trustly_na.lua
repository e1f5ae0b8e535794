--- The Trustly North America fake, mounted at /trustly_na/ (a client's
-- base_url is {sb.url}/trustly_na). Serves GET payments over the generated
-- data set (luapay.sandbox.dataset): HTTP Basic accessId:accessKey, the
-- seed's query arguments (array ones repeated), every filter, the seed's
-- payment objects, paging by startIndex and count (default 25, at most
-- 100). Settings from config.trustly_na: access_id ("luapay-access-id"),
-- access_key ("luapay-access-key"), scale (1: 2,500 payments over 7 days).
--
-- Where the docs are silent: createdAt/updatedAt filters are Unix
-- milliseconds like the payments' own fields, bounds inclusive; sortOrder
-- defaults to desc as documented; ties are ordered by paymentId; an
-- argument the API does not list is refused (400), so a client bug shows.
-- Control endpoints: luapay.sandbox.control (_control/reset|fail|stats).
--
-- Event notifications (`luapay trigger trustly-na EVENT`, F.EVENTS): POSTed
-- form-encoded to the merchant's notificationUrl with Authorization: Basic
-- base64(accessId:signature), the signature a base64 HMAC-SHA1 keyed with
-- the access key over the URL-decoded body; the fields of the documented
-- example (merchantId, merchantReference, paymentType, transactionType,
-- eventId, eventType, objectId, objectType, message, timeZone, createdAt,
-- accessId, status, statusMessage) and amount and currency.
local core = require "luapay.core"
local dataset = require "luapay.sandbox.dataset"
local control = require "luapay.sandbox.control"
local journal = require "luapay.sandbox.journal"
local events = require "luapay.sandbox.events"

local F = {}
F.DEFAULTS = { access_id = "luapay-access-id", access_key = "luapay-access-key", scale = 1 }

local function settings(config)
    local c = config.trustly_na or {}
    return {
        access_id = c.access_id or F.DEFAULTS.access_id, access_key = c.access_key or F.DEFAULTS.access_key,
        scale = c.scale or F.DEFAULTS.scale,
    }
end

local function bad(message)
    control.json(400, { errors = { { domain = "Payment", code = 400, location = "query", message = message,
        occurredAt = math.floor(ngx.now() * 1000) } } })
end

-- authorization.status: the seed's Transaction Status Values, 0 New .. 14 OnHold
local ARRAYS = { paymentType = { 1, 6 }, ["authorization.status"] = { 0, 14 }, ["verification.status"] = { 1, 4 } }
local STRINGS = {
    merchantReference = "merchantReference", paymentId = "paymentId", ["merchant.merchantId"] = "merchantId",
    description = "description", ["paymentProvider.paymentProviderId"] = "paymentProviderId",
    ["customer.customerId"] = "customerId", fingerprint = "fingerprint",
}
local STAMPS = { "createdAt.start", "createdAt.end", "updatedAt.start", "updatedAt.end" }
local AMOUNTS = { "amount.min", "amount.max", "paid.min", "paid.max", "refunded.min", "refunded.max" }
local KNOWN = { orderBy = true, sortOrder = true, startIndex = true, count = true }
for k in pairs(ARRAYS) do KNOWN[k] = true end
for k in pairs(STRINGS) do KNOWN[k] = true end
for _, k in ipairs(STAMPS) do KNOWN[k] = true end
for _, k in ipairs(AMOUNTS) do KNOWN[k] = true end

local function cents(s)
    local w, f = s:match("^(%d+)%.(%d%d)$")
    return w and tonumber(w) * 100 + tonumber(f)
end

local function payments(conf)
    local args = ngx.req.get_uri_args(200)
    for k in pairs(args) do
        if not KNOWN[k] then return bad("unknown argument " .. k) end
    end
    local want = {}
    for name, range in pairs(ARRAYS) do
        local v = args[name]
        if v ~= nil then
            local set = {}
            for _, x in ipairs(type(v) == "table" and v or { v }) do
                local n = tonumber(x)
                if not n or not tostring(x):match("^%d+$") or n < range[1] or n > range[2] then return bad("invalid " .. name) end
                set[n] = true
            end
            want[name] = set
        end
    end
    for name in pairs(STRINGS) do
        local v = args[name]
        if type(v) == "table" then return bad("repeated " .. name) end
        want[name] = v
    end
    for _, name in ipairs(STAMPS) do
        local v = args[name]
        if v ~= nil then
            if type(v) ~= "string" or not v:match("^%d+$") then return bad("invalid " .. name) end
            want[name] = tonumber(v)
        end
    end
    for _, name in ipairs(AMOUNTS) do
        local v = args[name]
        if v ~= nil then
            want[name] = type(v) == "string" and cents(v)
            if not want[name] then return bad("invalid " .. name) end
        end
    end
    local by = args.orderBy or "createdAt"
    if by ~= "createdAt" and by ~= "updatedAt" then return bad("invalid orderBy") end
    local sort = args.sortOrder or "desc"
    if sort ~= "asc" and sort ~= "desc" then return bad("invalid sortOrder") end
    local start = tonumber(args.startIndex or "0")
    if type(args.startIndex or "0") ~= "string" or not start or start < 0 or start ~= math.floor(start) then
        return bad("invalid startIndex")
    end
    local count = tonumber(args.count or "25")
    if type(args.count or "25") ~= "string" or not count or count < 1 or count > 100 or count ~= math.floor(count) then
        return bad("invalid count")
    end

    local function range(v, lo, hi)
        return (lo == nil or v >= lo) and (hi == nil or v <= hi)
    end
    local function match(c)
        return (not want.paymentType or want.paymentType[c.paymentType])
            and (not want["authorization.status"] or want["authorization.status"][c.auth])
            and (not want["verification.status"] or want["verification.status"][c.verification])
            and (not want.merchantReference or want.merchantReference == c.merchantReference)
            and (not want.paymentId or want.paymentId == c.paymentId)
            and (not want["merchant.merchantId"] or want["merchant.merchantId"] == "1002463580")
            and (not want.description or want.description == "Order " .. c.merchantReference)
            and (not want["paymentProvider.paymentProviderId"] or want["paymentProvider.paymentProviderId"] == c.paymentProviderId)
            and (not want["customer.customerId"] or want["customer.customerId"] == c.customerId)
            and (not want.fingerprint or want.fingerprint == c.fingerprint)
            and range(c.createdAt, want["createdAt.start"], want["createdAt.end"])
            and range(c.updatedAt, want["updatedAt.start"], want["updatedAt.end"])
            and range(c.amount, want["amount.min"], want["amount.max"])
            and range(c.paid, want["paid.min"], want["paid.max"])
            and range(c.refunded, want["refunded.min"], want["refunded.max"])
    end

    local ds = dataset.shared(conf.scale)
    local list = ds:sorted("trustly_na", by, "paymentId")
    local n = #list
    local out = setmetatable({}, core.array_mt)
    local seen = 0
    local first = 1
    if next(want) == nil then -- no filter: startIndex is a position
        first, seen = start + 1, start
    end
    for k = first, n do
        local c = list[sort == "asc" and k or n + 1 - k]
        if match(c) then
            if seen >= start then
                out[#out + 1] = ds:trustly_na(c.i, c)
                if #out == count then break end
            end
            seen = seen + 1
        end
    end
    control.json(200, { payments = out, startIndex = start, itemsPerPage = count })
end

---------------------------------------------------------------------------
-- luapay trigger (POST /_sandbox/trigger)
---------------------------------------------------------------------------

F.EVENTS = events.list {
    { "authorize", "payment", "authorization authorized", "transactionType 1 Authorize, status 2 Authorized" },
    { "pay_completed", "payment", "payment succeeded", "transactionType 2 Pay, status 4 Completed", "approve" },
    { "pay_failed", "payment", "payment failed", "transactionType 2 Pay, status 5 Failed" },
    { "pay_denied", "payment", "payment failed", "transactionType 2 Pay, status 8 Denied", "decline" },
    { "pay_canceled", "payment", "payment canceled", "transactionType 2 Pay, status 7 Canceled" },
    { "capture_completed", "payment", "capture succeeded", "transactionType 3 Capture, status 4 Completed" },
    { "reclaim", "payment", "reversal reversed", "transactionType 7 Reclaim, status 4 Completed: a returned debit" },
    { "refund_completed", "refund", "refund refunded", "transactionType 4 Refund, status 4 Completed" },
    { "refund_failed", "refund", "refund failed", "transactionType 4 Refund, status 5 Failed", "fail_refund" },
    { "deposit_completed", "payout", "payout succeeded",
      "transactionType 6 Deposit (money to the customer's account), status 4 Completed" },
    { "deposit_failed", "payout", "payout failed", "transactionType 6 Deposit, status 5 Failed" },
    { "reverse", "payout", "reversal reversed", "transactionType 5 Reverse, status 4 Completed: the money taken back",
      "reverse_payout" },
}

-- event -> transactionType, eventType, status
local TRIGGERS = {
    authorize = { 1, "Authorize", 2 }, pay_completed = { 2, "Pay", 4 }, pay_failed = { 2, "Pay", 5 },
    pay_denied = { 2, "Pay", 8 }, pay_canceled = { 2, "Pay", 7 }, capture_completed = { 3, "Capture", 4 },
    reclaim = { 7, "Reclaim", 4 }, refund_completed = { 4, "Refund", 4 }, refund_failed = { 4, "Refund", 5 },
    deposit_completed = { 6, "Deposit", 4 }, deposit_failed = { 6, "Deposit", 5 }, reverse = { 5, "Reverse", 4 },
}
local STATUS_NAMES = { [2] = "Authorized", [4] = "Completed", [5] = "Failed", [7] = "Canceled", [8] = "Denied" }
local OP_STATUS = { [2] = "authorized", [4] = "succeeded", [5] = "failed", [7] = "canceled", [8] = "failed" }

--- F.trigger(event, req, config) -> id | nil, status, message: sends the
-- event notification now. The payment (paymentId) is the one given by id
-- (one a trigger made), or a new one; the transaction is new each time.
function F.trigger(event, req, config)
    local conf = settings(config)
    local d = ngx.shared.luapay_sandbox
    local payment, refund_tx
    if req.id then
        local pid, rtx = req.id:match("^(.-)/refund/(%d+)$")
        refund_tx = event.on == "refund" and rtx or nil
        payment = core.json_decode(d:get("trustly_na:payment:" .. (pid or req.id)) or "null")
        if not payment then return nil, 404, "no Trustly NA payment " .. req.id .. " (only triggered ones are kept)" end
    else
        local n = d:incr("trustly_na:trigger", 1, 0)
        payment = { id = tostring(1003000000 + n), kind = event.on, amount = req.amount or 10000,
                    currency = req.currency or "USD", reference = "sandbox-" .. n, url = req.url }
    end
    payment.url = req.url or payment.url
    local t = TRIGGERS[event.name]
    local tx = refund_tx or tostring(1004000000 + d:incr("trustly_na:tx", 1, 0))
    local http = require "luapay.http"
    local fields = {
        { "merchantId", "1002463580" }, { "merchantReference", payment.reference },
        { "paymentType", event.on == "payout" and "4" or "2" }, { "transactionType", tostring(t[1]) },
        { "eventId", tostring(1005000000 + d:incr("trustly_na:event", 1, 0)) }, { "eventType", t[2] },
        { "objectId", tx }, { "objectType", "Transaction" }, { "message", "" }, { "timeZone", "Etc/UTC" },
        { "createdAt", ("%d"):format(math.floor(ngx.now() * 1000)) }, { "accessId", conf.access_id },
        { "paymentId", payment.id },
        { "amount", core.to_decimal(payment.amount, payment.currency) }, { "currency", payment.currency },
        { "status", tostring(t[3]) }, { "statusMessage", STATUS_NAMES[t[3]] },
    }
    local body, plain = {}, {}
    for i, f in ipairs(fields) do
        body[i] = http.escape(f[1]) .. "=" .. http.escape(f[2])
        plain[i] = f[1] .. "=" .. f[2]
    end
    body, plain = table.concat(body, "&"), table.concat(plain, "&")
    local signature = core.hmac("sha1", conf.access_key, plain, "base64")
    d:set("trustly_na:payment:" .. payment.id, assert(core.json_encode(payment)))
    local kind = t[2] == "Refund" and "refund" or event.on
    local id = kind == "refund" and (payment.id .. "/refund/" .. tx) or payment.id
    journal.operation{ provider = "trustly_na", kind = kind, id = id, parent = kind == "refund" and payment.id or nil,
                       amount = payment.amount, currency = payment.currency,
                       status = (t[2] == "Reverse" or t[2] == "Reclaim") and "reversed"
                           or kind == "refund" and t[3] == 4 and "refunded" or OP_STATUS[t[3]] }
    journal.deliver{
        provider = "trustly_na", id = id, event = ("%s %s"):format(t[2], STATUS_NAMES[t[3]]), url = payment.url,
        body = body, timeout_ms = 5000,
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded",
                    ["Authorization"] = "Basic " .. core.base64_encode(conf.access_id .. ":" .. signature) },
    }
    return id
end

function F.handle(path, config)
    if control.handle("trustly_na", path) then return end
    if path ~= "payments" then return control.json(404, { errors = { { code = 404, message = "Not found" } } }) end
    if ngx.req.get_method() ~= "GET" then return control.json(405, { errors = { { code = 405, message = "Method not allowed" } } }) end
    local conf = settings(config)
    if control.before("trustly_na", ngx.var.args or "") then return end
    if not control.basic_ok(conf.access_id, conf.access_key) then
        ngx.header["WWW-Authenticate"] = 'Basic realm="Trustly"'
        return control.json(401, { errors = { { domain = "Authentication", code = 401, message = "Unauthorized" } } })
    end
    return payments(conf)
end

return F
