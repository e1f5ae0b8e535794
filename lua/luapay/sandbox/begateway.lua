--- The beGateway DWH fake, mounted at /begateway/ (so a client's dwh_url is
-- {sb.url}/begateway). Serves POST api/v2/transactions/export over the
-- generated data set (luapay.sandbox.dataset): HTTP Basic with the PSP id
-- and secret, JSON in and out, the seed's response shape, cursor paging by
-- (date, uid), every filter of the seed. Settings from config.begateway:
-- psp_id ("1"), secret ("begateway-dwh-secret"), scale (1: 2,500 live
-- transactions + 50 test ones over 7 days; 10: ten times that over 70).
--
-- Semantics where the seed is silent (the client follows the same):
--  * date_from and date_to bound the period, both inclusive; a date without
--    a fraction covers its whole second (date_to 23:59:59 takes 23:59:59.5).
--  * Records are ordered by (date of date_type, uid). uid_from names the
--    first record of the page, at date_from, in both orders (the seed:
--    date_from "must equal next_date" of the previous answer). In descending
--    order with uid_from the request no longer holds the period's start,
--    so the fake pages on downwards past it: the client stops there.
--  * test = false (the default) selects live transactions, true test ones.
--  * options.sort_order (the seed's table) or sort_direction (its example).
-- Control endpoints: luapay.sandbox.control (_control/reset|fail|stats).
--
-- Gateway notifications, as beGateway sends them to a shop:
--   POST notify   body {url, i, set}: sends transaction i of the data set to
--                 url as {"transaction": {...}} (the main group: type, status,
--                 amount, test as the export shows them), with beGateway's
--                 Content-Signature (RSA SHA-256 over the body, the fake's key
--                 luapay.sandbox.test_keys.provider_private) and the Basic
--                 credentials of the transaction's shop (its shop_id and
--                 config.begateway.shop_key, "begateway-shop-key"). set = {k = v}
--                 overrides fields (null removes one). Answers {http_status,
--                 body} of the shop's reply, or {error}.
--   POST inbox/N  a stand-in for the shop's endpoint: keeps the body and the
--                 Authorization and Content-Signature headers, answers "OK";
--                 GET inbox/N gives the list kept.
local cjson = require "cjson.safe"
local core = require "luapay.core"
local dataset = require "luapay.sandbox.dataset"
local control = require "luapay.sandbox.control"
local test_keys = require "luapay.sandbox.test_keys"
local journal = require "luapay.sandbox.journal"
local events = require "luapay.sandbox.events"

local F = {}
F.DEFAULTS = { psp_id = "1", secret = "begateway-dwh-secret", scale = 1, shop_key = "begateway-shop-key" }

local TYPES, CURRENCY, METHODS, DATE_TYPES, GROUPS = {}, {}, {}, {}, {}
for _, t in ipairs({ "authorization", "payment", "tokenization", "payout", "capture", "void", "refund", "credit",
    "chargeback" }) do TYPES[t] = true end
for _, m in ipairs({ "credit_card", "alternative" }) do METHODS[m] = true end
for _, d in ipairs({ "created_at", "paid_at", "updated_at" }) do DATE_TYPES[d] = true end
for _, g in ipairs(dataset.BG_GROUPS) do GROUPS[g] = true end
setmetatable(CURRENCY, { __index = function(_, c) return core.currency(c) ~= nil end })

local function settings(config)
    local c = config.begateway or {}
    return {
        psp_id = tostring(c.psp_id or F.DEFAULTS.psp_id), secret = c.secret or F.DEFAULTS.secret,
        scale = c.scale or F.DEFAULTS.scale, shop_key = c.shop_key or F.DEFAULTS.shop_key,
    }
end

-- First position p with (date, uid) of list[p] >= (ms, uid) (uid nil: the
-- smallest); #list + 1 when none.
local function lower_bound(list, dt, ms, uid)
    local lo, hi = 1, #list + 1
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        local c = list[mid]
        local before = c[dt] < ms or (c[dt] == ms and uid ~= nil and c.uid < uid)
        if before then lo = mid + 1 else hi = mid end
    end
    return lo
end

-- Last position p with (date, uid) <= (ms, uid) (uid nil: the largest); 0 when none.
local function upper_bound(list, dt, ms, uid)
    local lo, hi = 0, #list
    while lo < hi do
        local mid = math.floor((lo + hi + 1) / 2)
        local c = list[mid]
        local after = c[dt] > ms or (c[dt] == ms and uid ~= nil and c.uid > uid)
        if after then hi = mid - 1 else lo = mid end
    end
    return lo
end

local function refuse(message)
    control.json(422, { message = message, code = "invalid_parameters" })
end

-- "a,b,c" -> set, every element checked; nil + message when one is bad.
local function list_filter(v, name, check)
    if v == nil or v == cjson.null then return nil end
    if type(v) == "number" then v = ("%.0f"):format(v) end
    if type(v) ~= "string" or v == "" then return nil, name .. " must be a comma-separated string" end
    local set = {}
    for part in (v .. ","):gmatch("([^,]*),") do
        if not check(part) then return nil, name .. " has an invalid value" end
        set[part] = true
    end
    return set
end

local function is_id(s) return s:match("^%d+$") ~= nil end

local function export(conf, req)
    local filter = req.filter
    if type(filter) ~= "table" then return refuse("filter is required") end
    local dt = filter.date_type
    if dt == nil or dt == cjson.null then dt = "created_at" end
    if not DATE_TYPES[dt] then return refuse("filter.date_type is invalid") end
    local from = dataset.parse_iso(filter.date_from)
    if not from then return refuse("filter.date_from is invalid") end
    local to_exact, to_whole = dataset.parse_iso(filter.date_to)
    if not to_exact then return refuse("filter.date_to is invalid") end
    local to = to_whole and to_exact + 999 or to_exact
    if from > to then return refuse("filter.date_from is after filter.date_to") end
    if to - from > 90 * 86400000 + 999 then return refuse("filter.date_from must be within 90 days before filter.date_to") end
    local uid_from = filter.uid_from
    if uid_from == cjson.null then uid_from = nil end
    if uid_from ~= nil and (type(uid_from) ~= "string" or uid_from == "") then return refuse("filter.uid_from is invalid") end

    local options = type(req.options) == "table" and req.options or {}
    local limit = options.limit
    if limit == nil or limit == cjson.null then limit = 100 end
    if type(limit) ~= "number" or limit ~= math.floor(limit) or limit < 1 or limit > 1000 then
        return refuse("options.limit must be between 1 and 1000")
    end
    local sort = options.sort_order
    if sort == nil or sort == cjson.null then sort = options.sort_direction end
    if sort == nil or sort == cjson.null then sort = "asc" end
    if sort ~= "asc" and sort ~= "desc" then return refuse("options.sort_order must be asc or desc") end

    local err
    local want = {}
    want.type, err = list_filter(filter.type, "filter.type", function(s) return TYPES[s] end)
    if err then return refuse(err) end
    want.currency, err = list_filter(filter.currency, "filter.currency", function(s) return #s == 3 and CURRENCY[s] end)
    if err then return refuse(err) end
    for _, name in ipairs({ "merchant_id", "shop_id", "gateway_id" }) do
        want[name], err = list_filter(filter[name], "filter." .. name, is_id)
        if err then return refuse(err) end
    end
    local test = filter.test
    if test == nil or test == cjson.null or test == "false" then test = false elseif test == "true" then test = true end
    if type(test) ~= "boolean" then return refuse("filter.test must be a boolean") end
    local method = filter.method_type
    if method == cjson.null then method = nil end
    if method ~= nil and not METHODS[method] then return refuse("filter.method_type is invalid") end

    local groups = {}
    local rp = req.response_parameters
    if rp == nil or rp == cjson.null then rp = "main" end
    if type(rp) ~= "string" then return refuse("response_parameters must be a comma-separated string") end
    for g in (rp .. ","):gmatch("([^,]*),") do
        if not GROUPS[g] then return refuse("response_parameters has an unknown group") end
        groups[g] = true
    end

    local function match(c)
        return c.test == test
            and (not want.type or want.type[c.type])
            and (not want.currency or want.currency[c.currency])
            and (not want.merchant_id or want.merchant_id[tostring(c.merchant_id)])
            and (not want.shop_id or want.shop_id[tostring(c.shop_id)])
            and (not want.gateway_id or want.gateway_id[tostring(c.gateway_id)])
            and (not method or c.method_type == method)
    end

    local ds = dataset.shared(conf.scale)
    local list = ds:sorted("begateway", dt, "uid")
    local picked, nxt = {}, nil
    if sort == "asc" then
        local p = lower_bound(list, dt, from, uid_from)
        while p <= #list and list[p][dt] <= to do
            local c = list[p]
            if match(c) then
                if #picked == limit then nxt = c break end
                picked[#picked + 1] = c
            end
            p = p + 1
        end
    else
        local p = uid_from and upper_bound(list, dt, from, uid_from) or upper_bound(list, dt, to)
        local floor = uid_from and -math.huge or from
        while p >= 1 and list[p][dt] >= floor do
            local c = list[p]
            if match(c) then
                if #picked == limit then nxt = c break end
                picked[#picked + 1] = c
            end
            p = p - 1
        end
    end

    local txs = setmetatable({}, core.array_mt)
    for k, c in ipairs(picked) do txs[k] = ds:begateway(c.i, groups, c) end
    local first, last = picked[1], picked[#picked]
    local null = core.null
    control.json(200, {
        data = {
            transactions = txs,
            pagination = {
                date_from = first and dataset.iso(first[dt]) or null,
                date_to = last and dataset.iso(last[dt]) or null,
                date_type = dt,
                has_next_page = nxt ~= nil,
                uid_from = first and first.uid or null,
                uid_to = last and last.uid or null,
                next_date = nxt and dataset.iso(nxt[dt]) or null,
                next_uid = nxt and nxt.uid or null,
            },
        },
    })
end

---------------------------------------------------------------------------
-- Notifications
---------------------------------------------------------------------------

-- A transaction in the journal's words: its kind and status.
local OP_KIND = { refund = "refund", credit = "payout", payout = "payout" }
local OP_STATUS = { successful = "succeeded", failed = "failed", error = "failed", pending = "pending",
                    incomplete = "pending", expired = "canceled" }

local function journal_tx(tx)
    journal.operation{ provider = "begateway", kind = OP_KIND[tx.type] or "payment", id = tx.uid,
                       parent = tx.parent_uid, amount = tx.amount, currency = tx.currency,
                       status = OP_STATUS[tx.status] or tx.status }
end

-- Sends {"transaction": tx} to url (nil: only to the forward target) as
-- beGateway does, signed, with the Basic credentials of shop_id, through
-- the sandbox's journal. Returns the shop's answer or nil, err.
local signing_key
local function send(conf, url, tx, shop_id)
    local body = assert(core.json_encode{ transaction = tx })
    signing_key = signing_key or assert(core.pkey(test_keys.provider_private))
    journal_tx(tx)
    -- kept, so that a trigger can act on it (its next transaction)
    local kept = {}
    for k, v in pairs(tx) do kept[k] = v end
    kept.url, kept.shop_id = url, shop_id
    ngx.shared.luapay_sandbox:set("begateway:tx:" .. tx.uid, assert(core.json_encode(kept)))
    return journal.deliver{
        provider = "begateway", id = tx.uid, event = ("%s %s"):format(tx.type, tx.status), url = url, body = body,
        timeout_ms = 5000,
        headers = {
            ["Content-Type"] = "application/json",
            ["Authorization"] = "Basic " .. core.base64_encode(tostring(shop_id) .. ":" .. conf.shop_key),
            ["Content-Signature"] = core.base64_encode(signing_key:sign(body, "sha256")),
        },
    }
end

local function notify(conf)
    ngx.req.read_body()
    local req = cjson.decode(ngx.req.get_body_data() or "")
    local ds = dataset.shared(conf.scale)
    if type(req) ~= "table" or type(req.url) ~= "string" or type(req.i) ~= "number"
        or req.i < 1 or req.i > ds.bg_total or req.i ~= math.floor(req.i) then
        return control.json(400, { error = "body: {url, i (1.." .. ds.bg_total .. "), set}" })
    end
    local tx = ds:begateway(req.i, { main = true })
    for k, v in pairs(type(req.set) == "table" and req.set or {}) do
        if v == cjson.null then tx[k] = nil else tx[k] = v end
    end
    local res, err = send(conf, req.url, tx, ds:bg_core(req.i).shop_id)
    if not res then return control.json(200, { error = type(err) == "table" and err.message or tostring(err) }) end
    return control.json(200, { http_status = res.status, body = res.body })
end

---------------------------------------------------------------------------
-- luapay trigger (POST /_sandbox/trigger)
---------------------------------------------------------------------------

F.EVENTS = events.list {
    { "payment_successful", "payment", "payment succeeded", "transaction type payment, status successful", "approve" },
    { "payment_failed", "payment", "payment failed", "type payment, status failed: a declined card", "decline" },
    { "payment_expired", "payment", "payment canceled", "type payment, status expired: never paid in time" },
    { "authorization_successful", "payment", "authorization authorized", "type authorization, status successful" },
    { "capture_successful", "payment", "capture succeeded", "type capture, status successful" },
    { "void_successful", "payment", "void canceled", "type void, status successful" },
    { "chargeback_successful", "payment", "chargeback reversed", "type chargeback, status successful" },
    { "tokenization_successful", "payment", "account succeeded", "type tokenization, status successful: a stored card" },
    { "refund_successful", "refund", "refund refunded", "type refund, status successful" },
    { "refund_failed", "refund", "refund failed", "type refund, status failed", "fail_refund" },
    { "credit_successful", "payout", "payout succeeded", "type credit (money to the customer's card), status successful" },
    { "credit_failed", "payout", "payout failed", "type credit, status failed" },
}

local MESSAGES = { successful = "Successfully processed", failed = "Transaction declined", expired = "Transaction expired" }

--- F.trigger(event, req, config) -> id | nil, status, message: sends the
-- event's gateway notification now. The transaction is a new one (uid
-- fresh), of the kind the event names; about an operation given by id
-- (one it sent) it is that one's next transaction: a refund or
-- capture of that payment (parent_uid), or the same uid again.
function F.trigger(event, req, config)
    local conf = settings(config)
    local d = ngx.shared.luapay_sandbox
    local ttype, tstatus = event.name:match("^(%a+)_(%a+)$")
    local parent
    if req.id then
        parent = cjson.decode(d:get("begateway:tx:" .. req.id) or "null")
        if not parent then return nil, 404, "no beGateway transaction " .. req.id .. " (only those this fake sent are kept)" end
    end
    local ds = dataset.shared(conf.scale)
    local i = 1 + d:incr("begateway:trigger", 1, 0) % ds.bg_total
    local tx = ds:begateway(i, { main = true })
    local same = parent and (OP_KIND[parent.type] or "payment") == event.on and parent.type == ttype
    tx.uid = same and parent.uid or ("sandbox-" .. core.hex_encode(core.random_bytes(8)))
    tx.type, tx.status, tx.message = ttype, tstatus, MESSAGES[tstatus] or tstatus
    tx.amount = req.amount or parent and parent.amount or 10000
    tx.currency = req.currency or parent and parent.currency or "EUR"
    tx.tracking_id = parent and parent.tracking_id or ("order-" .. tx.uid:sub(10))
    tx.test = true
    tx.parent_uid = parent and not same and parent.uid or nil
    send(conf, req.url or (parent and parent.url), tx, parent and parent.shop_id or ds:bg_core(i).shop_id)
    return tx.uid
end

-- The shop's endpoint, for specs: what arrived, in order.
local function inbox(name)
    local key = "begateway:inbox:" .. name
    local d = ngx.shared.luapay_sandbox
    local list = cjson.decode(d:get(key) or "[]")
    if ngx.req.get_method() ~= "POST" then return control.json(200, setmetatable(list, core.array_mt)) end
    ngx.req.read_body()
    list[#list + 1] = {
        body = ngx.req.get_body_data() or "", authorization = ngx.var.http_authorization or cjson.null,
        content_signature = ngx.var.http_content_signature or cjson.null,
    }
    d:set(key, assert(core.json_encode(setmetatable(list, core.array_mt))))
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("OK")
end

function F.handle(path, config)
    if control.handle("begateway", path) then return end
    if path == "notify" and ngx.req.get_method() == "POST" then return notify(settings(config)) end
    local name = path:match("^inbox/([%w_%-%.]+)$")
    if name then return inbox(name) end
    if path ~= "api/v2/transactions/export" then
        return control.json(404, { message = "Not found" })
    end
    if ngx.req.get_method() ~= "POST" then return control.json(405, { message = "Method not allowed" }) end
    local conf = settings(config)
    ngx.req.read_body()
    local raw = ngx.req.get_body_data() or ""
    if control.before("begateway", raw) then return end
    if not control.basic_ok(conf.psp_id, conf.secret) then
        ngx.header["WWW-Authenticate"] = 'Basic realm="DWH"'
        return control.json(401, { message = "Unauthorized" })
    end
    local ctype = ngx.var.http_content_type or ""
    if not ctype:find("application/json", 1, true) then return control.json(415, { message = "Content-Type must be application/json" }) end
    local req = cjson.decode(raw)
    if type(req) ~= "table" then return control.json(400, { message = "Body is not JSON" }) end
    return export(conf, req)
end

return F
