--- A Trustly fake for the sandbox, mounted at /trustly/. It speaks the real
-- JSON-RPC 1.1 wire format: it checks the merchant's credentials and RSA-SHA1
-- signature on every request, signs every answer and notification with its
-- own key, keeps orders, accounts and balances in the shared dict, and
-- delivers signed notifications to the merchant's NotificationURL.
--
--   POST /trustly/api/1                 the API (Deposit, SelectAccount, Refund, Charge,
--                                       CancelCharge, AccountPayout, Balance)
--   GET  /trustly/checkout/<orderid>    the checkout page a Deposit's url points to
--   POST /trustly/simulate/<orderid>/<action>  the customer's side: approve, cancel; and
--                                       Trustly's: debit (a credited deposit fails later).
--                                       Query: order=pending,credit,... (the notifications in
--                                       this order; a method listed twice is delivered
--                                       twice, same uuid and notificationid), repeat=<method>
--                                       |none (which one to deliver twice), amount=10.00
--   GET  /trustly/orders/<orderid>      the order and every notification delivered for it,
--                                       with the merchant's answer and whether it verified
--   POST /trustly/fault?mode=M&count=N  the next N API calls misbehave: bad_signature,
--                                       foreign_uuid, drop (act, remember the UUID, close
--                                       without answering), drop_forget (the same, but the
--                                       UUID is forgotten), http_503 (answer 503, do nothing),
--                                       html_200, not_rpc_200, unsigned_502 (act, remember the
--                                       UUID, and answer what a proxy or a broken gateway might:
--                                       200 HTML, 200 JSON that is no JSON-RPC answer, 502 with
--                                       an unsigned JSON error);
--                                       or the next N Refunds: refund_fails (accepted with
--                                       result "1", then it fails: no payout confirmation,
--                                       a credit notification for the refund's amount on the
--                                       deposit's order, as Trustly does), refund_not_accepted
--                                       (a signed answer with result "0", nothing done)
--   POST /trustly/notify                send one notification now: body {url, method, data,
--                                       tamper}; answers what the merchant sent back
--
-- Notifications after an approval (pending, account, credit) go out in a
-- random order with one of them delivered twice, as Trustly may do. Each
-- merchant answer is checked: JSON-RPC result with the same uuid and method,
-- data.status, and a signature that verifies with the merchant's key.
--
-- config.trustly (all optional): username, password ("merchant_username",
-- "merchant_password"), private_key (the fake's PEM; default
-- luapay.sandbox.test_keys.provider_private), merchant_public_key (default
-- luapay.sandbox.test_keys.merchant_public), balances ({EUR = "10000.00", ...}),
-- payout_confirmation (default true: a payoutconfirmation after Refund and
-- AccountPayout). Where the real API gives no documented code, the fake
-- answers 615 ERROR_INVALID_AMOUNT for a refund above what is left of the
-- deposit and 623 ERROR_INVALID_PARAMETERS for an unknown order or account.
local cjson = require "cjson.safe"
local core = require "luapay.core"
local test_keys = require "luapay.sandbox.test_keys"
local trustly = require "luapay.trustly"
local journal = require "luapay.sandbox.journal"
local events = require "luapay.sandbox.events"

local M = {}

local P = "trustly:" -- shared dict key prefix
local null = core.null

local function dict() return ngx.shared.luapay_sandbox end

---------------------------------------------------------------------------
-- Settings and keys
---------------------------------------------------------------------------



local settings
local function conf(config)
    if settings then return settings end
    local c = (config or {}).trustly or {}
    local seed = core.random_bytes(4)
    math.randomseed(((seed:byte(1) * 256 + seed:byte(2)) * 256 + seed:byte(3)) * 256 + seed:byte(4))
    local priv = c.private_key or test_keys.provider_private
    local pub = c.merchant_public_key or test_keys.merchant_public
    settings = {
        username = c.username or "merchant_username",
        password = c.password or "merchant_password",
        key = assert(core.pkey(assert(priv, "config.trustly.private_key is missing"))),
        merchant_key = assert(core.pkey(assert(pub, "config.trustly.merchant_public_key is missing"))),
        balances = c.balances or { EUR = "10000.00", SEK = "100000.00" },
        payout_confirmation = c.payout_confirmation ~= false,
    }
    return settings
end

---------------------------------------------------------------------------
-- State
---------------------------------------------------------------------------

local function load(key)
    local text = dict():get(P .. key)
    return text and cjson.decode(text) or nil
end

local function store(key, value)
    assert(dict():set(P .. key, cjson.encode(value)))
end

local function next_id(name, start)
    return tostring(dict():incr(P .. "seq:" .. name, 1, start))
end

local function minor(amount, currency) return core.to_minor(amount, currency) end
local function decimal(m, currency) return core.to_decimal(m, currency) end

local function balances_init(s)
    if dict():add(P .. "balances_ready", true) then
        for cur, amount in pairs(s.balances) do
            dict():set(P .. "balance:" .. cur, assert(minor(amount, cur)))
        end
    end
end

local function balance_add(s, currency, delta)
    balances_init(s)
    dict():incr(P .. "balance:" .. currency, delta, 0)
    local list = load("currencies") or {}
    for _, c in ipairs(list) do
        if c == currency then return end
    end
    list[#list + 1] = currency
    store("currencies", list)
end

local function balance_list(s)
    balances_init(s)
    local set = {}
    for cur in pairs(s.balances) do set[cur] = true end
    for _, cur in ipairs(load("currencies") or {}) do set[cur] = true end
    local out = {}
    for cur in pairs(set) do
        out[#out + 1] = { currency = cur, balance = decimal(dict():get(P .. "balance:" .. cur) or 0, cur) }
    end
    table.sort(out, function(a, b) return a.currency < b.currency end)
    return setmetatable(out, core.array_mt)
end

local function timestamp()
    ngx.update_time()
    local t = ngx.now()
    return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)) .. (".%06d+00"):format(math.floor((t % 1) * 1e6))
end

-- An order's state in the journal's words.
local OP_STATUS = { created = "created", pending = "pending", credited = "succeeded", canceled = "canceled",
                    debited = "reversed", paid = "succeeded" }
local OP_KIND = { Deposit = "payment", Charge = "payment", AccountPayout = "payout" }

-- Tells the sandbox's journal about an order (a payment or a payout) as it is now.
local function journal_order(order)
    local kind = OP_KIND[order.method]
    if not kind then return end
    journal.operation{ provider = "trustly", kind = kind, id = order.orderid, currency = order.currency,
                       amount = order.amount and minor(order.amount, order.currency) or nil,
                       status = OP_STATUS[order.status] or order.status }
end

-- A refund of a deposit: kept (refund:<orderid>/refund/<n>) and journaled.
local function save_refund(refund)
    store("refund:" .. refund.id, refund)
    journal.operation{ provider = "trustly", kind = "refund", id = refund.id, parent = refund.orderid,
                       amount = minor(refund.amount, refund.currency), currency = refund.currency, status = refund.status }
end

local function new_refund(order, amount, status)
    return { id = order.orderid .. "/refund/" .. next_id("refund:" .. order.orderid, 0), orderid = order.orderid,
             messageid = order.messageid, enduserid = order.enduserid, amount = amount, currency = order.currency,
             notification_url = order.notification_url, status = status }
end

---------------------------------------------------------------------------
-- Notifications
---------------------------------------------------------------------------

local function record_delivery(orderid, entry)
    local list = load("deliveries:" .. orderid) or {}
    list[#list + 1] = entry
    store("deliveries:" .. orderid, list)
end

-- Checks the merchant's answer: a signed JSON-RPC result for the same
-- notification. Returns status ("OK"/"FAILED") or nil and why not.
local function check_answer(s, body, method, uuid)
    local doc = core.json_decode(body or "", { numbers = "lexeme" })
    local r = type(doc) == "table" and doc.result
    if type(r) ~= "table" then return nil, "not a JSON-RPC result" end
    if r.uuid ~= uuid then return nil, "another uuid" end
    if r.method ~= method then return nil, "another method" end
    local ok = trustly.verify(method, uuid, r.data, r.signature, s.merchant_key)
    if not ok then return nil, "signature does not verify" end
    local status = type(r.data) == "table" and r.data.status
    if status ~= "OK" and status ~= "FAILED" then return nil, "no status OK or FAILED" end
    return status
end

-- Sends one notification (cosockets: content phase or a timer) through
-- the sandbox's journal and records how the merchant answered.
local function send(s, url, method, uuid, data, body, orderid, opid)
    local res, err = journal.deliver{
        provider = "trustly", id = opid or orderid or data.orderid, event = method, url = url, body = body,
        headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    }
    local entry = { method = method, uuid = uuid, notificationid = data.notificationid }
    if not res then
        entry.error = type(err) == "table" and err.message or tostring(err)
    else
        entry.http_status = res.status
        entry.body = res.body
        local status, why = check_answer(s, res.body, method, uuid)
        entry.verified = status ~= nil
        entry.answer = status
        entry.error = why
    end
    if orderid then record_delivery(orderid, entry) end
    return entry
end

-- Deliveries still under way for an order (specs wait for 0).
local function inflight(orderid, delta)
    if delta then return dict():incr(P .. "inflight:" .. orderid, delta, 0) end
    return dict():get(P .. "inflight:" .. orderid) or 0
end

-- Delivers a list of {method, data} in order; an item marked repeat sends
-- the very same request again (same uuid, same notificationid).
local function deliver(premature, s, url, orderid, items)
    if premature then return end
    local sent = {}
    for _, item in ipairs(items) do
        local prev = item.repeat_of and sent[item.repeat_of]
        local uuid, body, data
        if prev then
            uuid, body, data = prev.uuid, prev.body, prev.data
        else
            data = item.data
            uuid = core.uuid4()
            body = trustly.notification(item.method, uuid, data, s.key)
            sent[item.method] = { uuid = uuid, body = body, data = data }
        end
        send(s, url, item.method, uuid, data, body, orderid)
    end
    inflight(orderid, -1)
end

local function notification_data(method, order, extra)
    local data = {
        messageid = order.messageid, orderid = order.orderid,
        notificationid = next_id("notification", 8000000000),
    }
    if method ~= "account" then
        data.enduserid = order.enduserid
        data.timestamp = timestamp()
        data.attributes = {}
    end
    if method == "pending" or method == "credit" or method == "debit" or method == "payoutconfirmation" then
        data.amount, data.currency = order.amount, order.currency
    end
    for k, v in pairs(extra or {}) do data[k] = v end
    return data
end

local function account_data(order)
    local accountid = order.accountid
    local mandate = order.mandate and "1" or "0"
    return {
        accountid = accountid, verified = "1",
        attributes = {
            clearinghouse = "SWEDEN", bank = "Sandbox Bank", descriptor = "**** *" .. accountid:sub(-4),
            lastdigits = accountid:sub(-4), name = order.name or "", address = "", zipcode = "", city = "",
            personid = "", directdebitmandate = mandate,
        },
    }
end

-- Queues notifications about an order (the fields they carry: orderid,
-- messageid, enduserid, amount, currency, accountid, notification_url):
-- methods in the order given (or a shuffle of them), one delivered twice
-- unless repeat = "none".
local function schedule(s, order, methods, opts)
    opts = opts or {}
    local list = {}
    for i, m in ipairs(methods) do list[i] = m end
    if not opts.fixed then
        for i = #list, 2, -1 do
            local j = math.random(i)
            list[i], list[j] = list[j], list[i]
        end
    end
    local items, made = {}, {}
    for _, m in ipairs(list) do
        if made[m] then -- listed twice: the same notification delivered again
            items[#items + 1] = { method = m, repeat_of = m }
        else
            local extra = m == "account" and account_data(order) or opts.extra
            items[#items + 1] = { method = m, data = notification_data(m, order, extra) }
            made[m] = true
        end
    end
    local again = opts["repeat"]
    if again == nil and #items > 0 and not opts.fixed then again = list[math.random(#list)] end
    if again and again ~= "none" then
        for i, item in ipairs(items) do
            if item.method == again then
                table.insert(items, math.random(i + 1, #items + 1), { method = again, repeat_of = again })
                break
            end
        end
    end
    inflight(order.orderid, 1)
    local ok, err = ngx.timer.at(0, deliver, s, order.notification_url, order.orderid, items)
    if not ok then
        inflight(order.orderid, -1)
        ngx.log(ngx.ERR, "trustly sandbox: cannot schedule notifications: ", err)
    end
    local names = {}
    for i, item in ipairs(items) do names[i] = item.method end
    return names
end

---------------------------------------------------------------------------
-- The API
---------------------------------------------------------------------------

local function s_(v) -- a string field, or a number's text
    if type(v) == "string" then return v end
    if type(v) == "table" and getmetatable(v) == core.number_mt then return v[1] end
    return nil
end

local FAILURE = {}
local function fail(code, message)
    return setmetatable({ code = code, message = message or trustly.ERRORS[code] }, FAILURE)
end

local function missing(t, names)
    if type(t) ~= "table" then return true end
    for _, n in ipairs(names) do
        if s_(t[n]) == nil or s_(t[n]) == "" then return n end
    end
    return false
end

local function check_amount(amount, currency, optional)
    if amount == nil and optional then return nil end
    if type(amount) ~= "string" or not amount:match("^%d+%.%d%d$") then return fail(615) end
    if not core.currency(s_(currency) or "") then return fail(622) end
    local m = minor(amount, currency)
    if not m or m <= 0 then return fail(615) end
    return nil
end

local function claim_message_id(messageid, orderid)
    return dict():add(P .. "messageid:" .. messageid, orderid)
end

local function base_url()
    return ngx.var.scheme .. "://" .. ngx.var.http_host
end

local function new_order(method, data, fields)
    local order = {
        orderid = next_id("order", 1000000000), method = method,
        messageid = s_(data.MessageID), enduserid = s_(data.EndUserID),
        notification_url = s_(data.NotificationURL), status = "created",
    }
    for k, v in pairs(fields or {}) do order[k] = v end
    return order
end

local API = {}

function API.Deposit(_, data)
    local attrs = data.Attributes
    if missing(data, { "NotificationURL", "EndUserID", "MessageID" })
        or missing(attrs, { "Currency", "Firstname", "Lastname", "Country", "Locale", "SuccessURL", "FailURL" }) then
        return fail(623)
    end
    if not core.currency(s_(attrs.Currency)) then return fail(622) end
    local bad = check_amount(attrs.Amount, attrs.Currency, true)
    if bad then return bad end
    -- 001 seed, "Pay by invoice": the invoice ID in attribute ExternalReference, a string
    local invoice = attrs.ExternalReference
    if invoice == null then invoice = nil end
    if invoice ~= nil and (type(invoice) ~= "string" or invoice == "") then return fail(623) end
    local order = new_order("Deposit", data, {
        amount = attrs.Amount, currency = attrs.Currency, locale = s_(attrs.Locale),
        name = s_(attrs.Firstname) .. " " .. s_(attrs.Lastname), refunded = "0.00", external_reference = invoice,
    })
    if not claim_message_id(order.messageid, order.orderid) then return fail(637) end
    store("order:" .. order.orderid, order)
    journal_order(order)
    return {
        orderid = order.orderid,
        url = ("%s/trustly/checkout/%s?SessionID=%s&OrderID=%s&Locale=%s"):format(base_url(), order.orderid,
            core.uuid4(), order.orderid, attrs.Locale),
    }
end

function API.SelectAccount(_, data)
    local attrs = data.Attributes
    if missing(data, { "NotificationURL", "EndUserID", "MessageID" })
        or missing(attrs, { "Firstname", "Lastname", "Country", "Locale", "SuccessURL", "FailURL" }) then
        return fail(623)
    end
    local mandate = attrs.RequestDirectDebitMandate == "1"
    if mandate and s_(attrs.Email) == nil then return fail(623) end
    local order = new_order("SelectAccount", data, {
        mandate = mandate, locale = s_(attrs.Locale), name = s_(attrs.Firstname) .. " " .. s_(attrs.Lastname),
    })
    if not claim_message_id(order.messageid, order.orderid) then return fail(637) end
    store("order:" .. order.orderid, order)
    return {
        orderid = order.orderid,
        url = ("%s/trustly/checkout/%s?SessionID=%s&OrderID=%s&Locale=%s"):format(base_url(), order.orderid,
            core.uuid4(), order.orderid, attrs.Locale),
    }
end

-- The fault the next call meets, if any: under "fault" for any method,
-- "refund_fault" (refund_fails, refund_not_accepted) for the next Refund.
local function take_fault(name)
    name = name or "fault"
    local fault = load(name)
    if not fault or fault.count <= 0 then return nil end
    fault.count = fault.count - 1
    store(name, fault)
    return fault.mode
end

function API.Refund(s, data)
    if missing(data, { "OrderID", "Amount", "Currency" }) then return fail(623) end
    local order = load("order:" .. s_(data.OrderID))
    if not order or order.method ~= "Deposit" or order.status == "created" or order.status == "canceled" then
        return fail(623)
    end
    if data.Currency ~= order.currency then return fail(622) end
    local bad = check_amount(data.Amount, data.Currency)
    if bad then return bad end
    local left = minor(order.amount, order.currency) - minor(order.refunded, order.currency)
    local want = minor(data.Amount, data.Currency)
    if want > left then return fail(615) end
    local fault = take_fault("refund_fault")
    if fault == "refund_not_accepted" then return { orderid = order.orderid, result = "0" } end
    local refund = { orderid = order.orderid, messageid = order.messageid, enduserid = order.enduserid,
                     amount = data.Amount, currency = data.Currency, notification_url = order.notification_url }
    if fault == "refund_fails" then
        -- accepted, then it fails: the money stays, and Trustly sends a
        -- credit for it on the deposit's order
        save_refund(new_refund(order, data.Amount, "failed"))
        schedule(s, refund, { "credit" }, { ["repeat"] = "none" })
        return { orderid = order.orderid, result = "1" }
    end
    save_refund(new_refund(order, data.Amount, s.payout_confirmation and "refunded" or "pending"))
    order.refunded = decimal(minor(order.refunded, order.currency) + want, order.currency)
    store("order:" .. order.orderid, order)
    balance_add(s, order.currency, -want)
    if s.payout_confirmation then schedule(s, refund, { "payoutconfirmation" }, { ["repeat"] = "none" }) end
    return { orderid = order.orderid, result = "1" }
end

local function today()
    return os.date("!%Y-%m-%d")
end

function API.Charge(s, data)
    local attrs = data.Attributes
    if missing(data, { "AccountID", "NotificationURL", "EndUserID", "MessageID", "Amount", "Currency" })
        or missing(attrs, { "ShopperStatement", "Email" }) then
        return fail(623)
    end
    local bad = check_amount(data.Amount, data.Currency)
    if bad then return bad end
    local account = load("account:" .. s_(data.AccountID))
    if not account then return { result = "0", rejected = "ERROR_ACCOUNT_NOT_FOUND", orderid = null } end
    if not account.mandate then return { result = "0", rejected = "ERROR_MANDATE_NOT_FOUND", orderid = null } end
    local payment_date = s_(attrs.PaymentDate) or today()
    local order = new_order("Charge", data, {
        amount = data.Amount, currency = data.Currency, accountid = s_(data.AccountID),
        payment_date = payment_date, status = "pending",
    })
    if not claim_message_id(order.messageid, order.orderid) then return fail(637) end
    if payment_date > today() then
        store("order:" .. order.orderid, order)
        journal_order(order)
        schedule(s, order, { "pending" }, { ["repeat"] = "none" })
    else
        order.status = "credited"
        store("order:" .. order.orderid, order)
        journal_order(order)
        balance_add(s, order.currency, minor(order.amount, order.currency))
        schedule(s, order, { "pending", "credit" }, { fixed = true, ["repeat"] = "none" })
    end
    return { orderid = order.orderid, result = "1", rejected = null }
end

function API.CancelCharge(s, data)
    if missing(data, { "OrderID" }) then return fail(623) end
    local order = load("order:" .. s_(data.OrderID))
    if not order or order.method ~= "Charge" then return fail(623) end
    if order.status ~= "pending" or order.payment_date <= today() then
        return { result = "0", rejected = "ERROR_CHARGE_ALREADY_PROCESSED" }
    end
    order.status = "canceled"
    store("order:" .. order.orderid, order)
    journal_order(order)
    schedule(s, order, { "cancel" }, { ["repeat"] = "none" })
    return { result = "1", rejected = null }
end

function API.AccountPayout(s, data)
    local attrs = data.Attributes
    if missing(data, { "NotificationURL", "AccountID", "EndUserID", "MessageID", "Amount", "Currency" })
        or missing(attrs, { "ShopperStatement" }) then
        return fail(623)
    end
    local bad = check_amount(data.Amount, data.Currency)
    if bad then return bad end
    if not load("account:" .. s_(data.AccountID)) then return fail(623) end
    local order = new_order("AccountPayout", data, {
        amount = data.Amount, currency = data.Currency, accountid = s_(data.AccountID), status = "paid",
    })
    if not claim_message_id(order.messageid, order.orderid) then return fail(637) end
    store("order:" .. order.orderid, order)
    journal_order(order)
    balance_add(s, order.currency, -minor(order.amount, order.currency))
    if s.payout_confirmation then schedule(s, order, { "payoutconfirmation" }, { ["repeat"] = "none" }) end
    return { orderid = order.orderid, result = "1" }
end

function API.Balance(s)
    return balance_list(s)
end

---------------------------------------------------------------------------
-- HTTP handlers
---------------------------------------------------------------------------

local function reply(status, body, ctype)
    ngx.status = status
    ngx.header["Content-Type"] = ctype or "application/json; charset=utf-8"
    ngx.print(body)
end

local function unsigned_error(code, message)
    return assert(core.json_encode({
        version = "1.1",
        error = { name = "JSONRPCError", code = code, message = message,
                  error = { signature = null, uuid = null, method = null, data = { code = code, message = message } } },
    }))
end

local function api(s)
    if ngx.req.get_method() ~= "POST" then return reply(405, unsigned_error(620, "ERROR_UNKNOWN")) end
    ngx.req.read_body()
    local raw = ngx.req.get_body_data() or ""
    local fault = take_fault()
    if fault == "http_503" then return reply(503, "busy", "text/plain") end

    local doc = core.json_decode(raw, { numbers = "lexeme" })
    local params = type(doc) == "table" and doc.params
    if type(doc) ~= "table" or type(doc.method) ~= "string" or type(params) ~= "table"
        or type(params.UUID) ~= "string" or type(params.Data) ~= "table" then
        return reply(200, unsigned_error(620, "ERROR_UNKNOWN"))
    end
    local method, uuid, data = doc.method, params.UUID, params.Data

    local remembered = dict():get(P .. "uuid:" .. uuid)
    if remembered then return reply(200, remembered) end -- the same request again: the same answer

    local result
    if s_(data.Username) ~= s.username or s_(data.Password) ~= s.password then
        result = fail(616)
    elseif not trustly.verify(method, uuid, data, params.Signature, s.merchant_key) then
        result = fail(636)
    elseif not API[method] then
        result = fail(620)
    else
        result = API[method](s, data)
    end

    local answer_uuid = fault == "foreign_uuid" and core.uuid4() or uuid
    local body
    if getmetatable(result) == FAILURE then
        body = trustly.error_answer(method, answer_uuid, result.code, result.message, s.key)
    else
        body = trustly.answer(method, answer_uuid, result, s.key)
    end
    if fault == "bad_signature" then
        body = body:gsub('"signature":"(.)', function(c) return '"signature":"' .. (c == "A" and "B" or "A") end, 1)
    end
    if fault ~= "drop_forget" then dict():set(P .. "uuid:" .. uuid, body) end
    if fault == "drop" or fault == "drop_forget" then return ngx.exit(444) end
    if fault == "html_200" then return reply(200, "<html><body>gateway hiccup</body></html>", "text/html") end
    if fault == "not_rpc_200" then return reply(200, '{"version":"1.1"}') end
    if fault == "unsigned_502" then return reply(502, '{"error":{"message":"upstream timed out","code":502}}') end
    return reply(200, body)
end

local function query(name)
    local v = ngx.var["arg_" .. name]
    return v and ngx.unescape_uri(v) or nil
end

local function split(list)
    local out = {}
    for item in (list or ""):gmatch("[^,]+") do out[#out + 1] = item end
    return out
end

local function checkout(orderid)
    local order = load("order:" .. orderid)
    if not order then return reply(404, "no such order", "text/plain") end
    reply(200, ("<!doctype html><title>Trustly sandbox</title><h1>Trustly sandbox checkout</h1>"
        .. "<p>Order %s (%s %s %s). POST /trustly/simulate/%s/approve or /cancel to play the customer.</p>")
        :format(orderid, order.method, order.amount or "", order.currency or "", orderid), "text/html")
end

local function new_account(order)
    local accountid = next_id("account", 4000000000)
    store("account:" .. accountid, { accountid = accountid, enduserid = order.enduserid, mandate = order.mandate == true })
    return accountid
end

local function simulate(s, orderid, action)
    local order = load("order:" .. orderid)
    if not order then return reply(404, cjson.encode({ error = "no such order" })) end
    local explicit = split(query("order"))
    local opts = { ["repeat"] = query("repeat"), fixed = #explicit > 0 }
    local methods
    if action == "approve" and order.status == "created" then
        if order.method == "Deposit" then
            order.amount = order.amount or query("amount") or "100.00"
            order.status = "credited"
            order.accountid = new_account(order)
            balance_add(s, order.currency, minor(order.amount, order.currency))
            methods = { "pending", "account", "credit" }
        elseif order.method == "SelectAccount" then
            order.status = "selected"
            order.accountid = new_account(order)
            methods = { "pending", "account" }
        end
    elseif action == "cancel" and order.status == "created" then
        order.status = "canceled"
        methods = { "cancel" }
    elseif action == "debit" and order.method == "Deposit" and order.status == "credited" then
        order.status = "debited"
        balance_add(s, order.currency, -minor(order.amount, order.currency))
        methods = { "debit" }
        opts["repeat"] = opts["repeat"] or "none"
    end
    if not methods then
        return reply(409, cjson.encode({ error = ("cannot %s a %s order in state %s"):format(action, order.method, order.status) }))
    end
    if #explicit > 0 then methods = explicit end
    store("order:" .. orderid, order)
    journal_order(order)
    local scheduled = schedule(s, order, methods, opts)
    return reply(200, cjson.encode({ orderid = orderid, status = order.status, notifications = scheduled }))
end

local function show_order(orderid)
    local order = load("order:" .. orderid)
    if not order then return reply(404, cjson.encode({ error = "no such order" })) end
    local deliveries = load("deliveries:" .. orderid) or {}
    order.deliveries = setmetatable(deliveries, cjson.empty_array_mt)
    order.done = inflight(orderid) == 0
    return reply(200, cjson.encode(order))
end

local function set_fault()
    local mode, count = query("mode"), tonumber(query("count") or "1")
    local known = { bad_signature = true, foreign_uuid = true, drop = true, drop_forget = true, http_503 = true,
                    html_200 = true, not_rpc_200 = true, unsigned_502 = true }
    local refund = { refund_fails = true, refund_not_accepted = true }
    if not known[mode] and not refund[mode] then return reply(400, cjson.encode({ error = "unknown fault mode" })) end
    store(refund[mode] and "refund_fault" or "fault", { mode = mode, count = count })
    return reply(200, cjson.encode({ mode = mode, count = count }))
end

-- Sends one notification now; tamper = true changes the data after signing.
local function notify_now(s)
    ngx.req.read_body()
    local req = cjson.decode(ngx.req.get_body_data() or "")
    if type(req) ~= "table" or type(req.url) ~= "string" or type(req.method) ~= "string" then
        return reply(400, cjson.encode({ error = "body: {url, method, data, tamper}" }))
    end
    local data = type(req.data) == "table" and req.data or {}
    local uuid = core.uuid4()
    local body = trustly.notification(req.method, uuid, data, s.key)
    if req.tamper then
        local doc = core.json_decode(body)
        doc.params.data.amount = "99999.00"
        body = assert(core.json_encode(doc))
    end
    local entry = send(s, req.url, req.method, uuid, data, body, nil)
    return reply(200, cjson.encode(entry))
end

---------------------------------------------------------------------------
-- luapay trigger (POST /_sandbox/trigger)
---------------------------------------------------------------------------

M.EVENTS = events.list {
    { "pending", "payment", "payment pending", "pending: the customer finished the checkout" },
    { "credit", "payment", "payment succeeded", "credit: the deposit is confirmed, the money is the merchant's", "approve" },
    { "debit", "payment", "payment reversed", "debit: a deposit fails although it was credited" },
    { "cancel", "payment", "payment canceled", "cancel: the order was canceled", "decline" },
    { "account", "payment", "account succeeded", "account: the verified bank account the deposit came from" },
    { "mandate", "payment", "account authorized", "account: an active direct-debit mandate on the order's account" },
    { "payoutconfirmation", "payout", "payout succeeded", "payoutconfirmation: an AccountPayout left Trustly" },
    { "refund_confirmed", "refund", "refund refunded",
      "payoutconfirmation on the deposit's order for the refund's amount: the refund left Trustly" },
    { "refund_failed", "refund", "refund failed",
      "credit on the deposit's order for the refund's amount: the refund failed, the money came back", "fail_refund" },
    { "kyc", "payment", "unsupported", "kyc: the customer's KYC data (Deposit with RequestKYC); luapay does not read it" },
}

-- The operation a trigger acts on: the one named, or a new one.
local function trigger_deposit(s, req, status)
    local currency = req.currency or "EUR"
    local n = next_id("trigger", 0)
    local order = {
        orderid = next_id("order", 1000000000), method = "Deposit", messageid = "sandbox-trigger-" .. n,
        enduserid = "sandbox-user-" .. n, notification_url = req.url, status = status or "created",
        amount = decimal(req.amount or 10000, currency), currency = currency, refunded = "0.00",
    }
    if order.status == "credited" then balance_add(s, currency, minor(order.amount, currency)) end
    store("order:" .. order.orderid, order)
    journal_order(order)
    return order
end

local function trigger_target(s, event, req)
    if event.on == "refund" then
        local refund = req.id and load("refund:" .. req.id)
        if refund then return load("order:" .. refund.orderid), refund end
        local order = req.id and load("order:" .. req.id) -- a deposit: a new refund of what is left of it
        if req.id and (not order or order.method ~= "Deposit" or order.status ~= "credited") then
            return nil, 404, "no Trustly refund, nor a credited deposit, " .. req.id
        end
        order = order or trigger_deposit(s, req, "credited")
        local left = minor(order.amount, order.currency) - minor(order.refunded or "0.00", order.currency)
        local amount = math.min(req.amount or left, left)
        if amount < 1 then return nil, 409, "deposit " .. order.orderid .. " is refunded already" end
        refund = new_refund(order, decimal(amount, order.currency), "pending")
        order.refunded = decimal(minor(order.refunded or "0.00", order.currency) + amount, order.currency)
        store("order:" .. order.orderid, order)
        save_refund(refund)
        return order, refund
    end
    local order = req.id and load("order:" .. req.id)
    if req.id and not order then return nil, 404, "no Trustly order " .. req.id end
    local want = event.on == "payout" and "AccountPayout" or "Deposit"
    if order and OP_KIND[order.method] ~= event.on then
        return nil, 409, ("order %s is a %s, not a %s"):format(order.orderid, order.method, event.on)
    end
    if order then return order end
    if want == "Deposit" then return trigger_deposit(s, req, event.name == "debit" and "credited" or nil) end
    local currency = req.currency or "EUR"
    order = { orderid = next_id("order", 1000000000), method = "AccountPayout", messageid = "sandbox-payout-" .. next_id("trigger", 0),
              enduserid = "sandbox-user", notification_url = req.url, status = "paid", currency = currency,
              amount = decimal(req.amount or 10000, currency), accountid = next_id("account", 4000000000) }
    store("order:" .. order.orderid, order)
    journal_order(order)
    return order
end

-- event name -> the state the order moves to, the notification sent, and
-- the states it may move from
local PAYMENT_MOVES = {
    pending = { "pending", "pending", { created = true } },
    credit = { "credited", "credit", { created = true, pending = true } },
    debit = { "debited", "debit", { credited = true } },
    cancel = { "canceled", "cancel", { created = true, pending = true } },
}

--- M.trigger(event, req, config) -> id | nil, status, message: sends the
-- event's notification now (luapay.sandbox.journal's /_sandbox/trigger).
function M.trigger(event, req, config)
    local s = conf(config)
    local order, refund, why = trigger_target(s, event, req)
    if not order then return nil, refund, why end
    local name, method, data = event.name, event.name, nil
    local move = PAYMENT_MOVES[name]
    if move then
        local was = order.status
        if not move[3][was] then return nil, 409, ("order %s is %s: no %s"):format(order.orderid, was, name) end
        if move[1] == "credited" and was ~= "credited" then balance_add(s, order.currency, minor(order.amount, order.currency)) end
        if move[1] == "debited" and was == "credited" then balance_add(s, order.currency, -minor(order.amount, order.currency)) end
        order.status = move[1]
        data = notification_data(method, order)
    elseif name == "account" or name == "mandate" then
        order.accountid = order.accountid or next_id("account", 4000000000)
        order.mandate = name == "mandate"
        store("account:" .. order.accountid, { accountid = order.accountid, enduserid = order.enduserid, mandate = order.mandate })
        method = "account"
        data = notification_data(method, order, account_data(order))
        -- a deposit's account, without a word about a mandate: verified
        if name == "account" then data.attributes.directdebitmandate = nil end
    elseif name == "payoutconfirmation" then
        data = notification_data(method, order)
    elseif name == "refund_confirmed" or name == "refund_failed" then
        method = name == "refund_failed" and "credit" or "payoutconfirmation"
        local deposit_ref = { orderid = order.orderid, messageid = order.messageid, enduserid = order.enduserid,
                              amount = refund.amount, currency = refund.currency }
        data = notification_data(method, deposit_ref)
        if name == "refund_failed" and refund.status ~= "failed" and order.refunded then
            -- the money comes back: what is left to refund grows again
            local back = math.min(minor(order.refunded, order.currency), minor(refund.amount, refund.currency))
            order.refunded = decimal(minor(order.refunded, order.currency) - back, order.currency)
        end
        refund.status = name == "refund_failed" and "failed" or "refunded"
        save_refund(refund)
    elseif name == "kyc" then
        data = notification_data(method, order)
    end
    store("order:" .. order.orderid, order)
    journal_order(order)
    local uuid = core.uuid4()
    send(s, req.url or order.notification_url, method, uuid, data, trustly.notification(method, uuid, data, s.key),
         order.orderid, refund and refund.id)
    return refund and refund.id or order.orderid
end

--- What a client needs to talk to this fake at base_url (the sandbox's
-- /trustly): the endpoint, the default credentials and the test keys as PEM
-- (the merchant's private key; the fake's public key, standing in for
-- Trustly's).
function M.describe(url)
    return {
        base_url = url .. "/api/1",
        credentials = {
            username = "merchant_username", password = "merchant_password",
            private_key = test_keys.merchant_private, trustly_public_key = test_keys.provider_public,
        },
    }
end

function M.handle(path, config)
    local s = conf(config)
    local first, rest = path:match("^([^/]*)/?(.*)$")
    if path == "api/1" then return api(s) end
    if first == "checkout" then return checkout(rest) end
    if first == "simulate" then
        local orderid, action = rest:match("^(%d+)/(%a+)$")
        if orderid then return simulate(s, orderid, action) end
    end
    if first == "orders" and rest:match("^%d+$") then return show_order(rest) end
    if path == "fault" then return set_fault() end
    if path == "notify" then return notify_now(s) end
    return reply(404, cjson.encode({ error = "no such sandbox endpoint: /trustly/" .. path }))
end

return M
