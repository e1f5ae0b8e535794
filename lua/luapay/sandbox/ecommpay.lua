--- luapay.sandbox.ecommpay: a fake ecommpay Gate for the Trustly method,
-- mounted by luapay.sandbox at "/ecommpay/" (runs inside nginx).
--
--   sandbox.start{ routes = { ["/ecommpay/"] = "luapay.sandbox.ecommpay" },
--                  config = { ecommpay = { project_id = 1625, secret = "...",
--                                          balance = 100000000, callback_url = nil,
--                                          clarification = false } } }
--   gate = ecommpay.new{ project_id = 1625, secret = "...", base_url = sb.url .. "/ecommpay" }
--
-- Same endpoints and wire format as ecommpay's Gate: POST JSON to
-- /v2/payment/online-banking/trustly/{sale, sale/saved, recurring,
-- account_verification, refund, payout} and /v2/payment/status, signed in
-- general.signature (checked on every request). The synchronous answer is
-- 200 {status, request_id, project_id, payment_id}; an invalid request gets
-- 400 {status = "error", code, message, errors = [{code, message, field}]}.
-- Each payment keeps its state in the shared dict; a payment_id is accepted
-- once per project. The outcome arrives as signed callbacks (general.signature)
-- POSTed to general.merchant_callback_url (or config callback_url) from a
-- timer: for a purchase and an account verification first the callback with
-- redirect_data (the customer must go to the bank), then the final one.
--
-- Submission of additional payment information (config clarification =
-- true: the merchant's web service supports it): a purchase may leave out
-- the customer's first_name, last_name, email, country and language. The
-- payment then awaits clarification: a callback (payment.status "awaiting
-- clarification") lists the missing ones in clarification_fields, as a
-- JSON schema per object ({customer = {type = "object", properties =
-- {first_name = {type = "string"}, ...}, required = [...]}}); POST
-- /v2/payment/clarification with general and those fields, signed, goes
-- on to the redirect callback. Without it they are required (400).
--
-- The purchase rules of the Trustly method: currencies, 1.00 EUR at least,
-- no purchase for a customer of a payout-only country (CY FR GR HR LU MT
-- PT) or of a country not listed, the recurring type C, R or U.
--
-- The Payment Page: GET /ecommpay/payment?<signed params>, see
-- luapay.sandbox.ecommpay_page.
--
-- The customer and the bank, simulated:
--   POST redirect_data.url with decision=approve|decline (and the body
--     fields of redirect_data): the customer's choice at Trustly; answers
--     302 to return_url.success or .decline, and sends the final callback
--   POST /ecommpay/sandbox/bank_reject/{project_id}/{payment_id}[?amount=N]:
--     the bank rejects a successful payout; ecommpay reverses it (reversal
--     callback), or N minor units of it (payment status "partially reversed")
--   GET  /ecommpay/sandbox/requests: how many Gate requests the fake received
--   POST /ecommpay/sandbox/lose_answer?how=drop|<HTTP status>[&times=N][&sign=1]
--     the next N Gate requests (default 1) are carried out as usual, then
--     their answer is lost on the way back: "drop" closes the connection
--     without an answer; a status answers with it and this request's body
--     instead (signed at the root with sign=1, as ecommpay signs a status
--     answer), or a proxy's HTML page when the body is empty
--   GET  /ecommpay/sandbox/payment/{project_id}/{payment_id}: the state
--   POST /ecommpay/sandbox/inbox/{name}: a stand-in for the merchant's
--     callback endpoint (keeps the raw body, answers 200 "OK"); GET gives
--     the bodies received so far as a JSON array of strings
--
-- The merchant balance per currency starts at config balance (minor units,
-- default 1,000,000.00); purchases add to it, refunds and payouts take from
-- it, and a payout above it is declined. Codes in error answers and
-- declines are this fake's own (ecommpay's code list was not available).
local core = require "luapay.core"
local control = require "luapay.sandbox.control"
local journal = require "luapay.sandbox.journal"
local events = require "luapay.sandbox.events"
local ecommpay = require "luapay.ecommpay"

local M = {}

M.PROJECT_ID = 1625
M.SECRET = "luapay-ecommpay-sandbox-secret"
M.BALANCE = 100000000
M.CURRENCIES = { EUR = true, BGN = true, CZK = true, DKK = true, GBP = true, HUF = true, NOK = true,
                 PLN = true, RON = true, SEK = true }

--- Result and error codes of the fake.
M.CODES = {
    success = { "0", "Success" },
    awaiting = { "0", "Awaiting customer redirect" },
    clarification = { "0", "Awaiting clarification" },
    decline = { "20000", "General decline" },
    customer_declined = { "20101", "Declined by the customer" },
    no_funds_merchant = { "20105", "Insufficient funds on merchant balance" },
    refund_exceeds = { "20106", "Refund amount exceeds the amount available for refund" },
    refund_currency = { "20107", "Refund currency differs from the payment currency" },
    recurring_unknown = { "20108", "Recurring not found or not allowed for this operation" },
    bank_rejected = { "20109", "Payout rejected by the recipient's bank" },
    invalid_json = { "1000", "Invalid JSON in the request body" },
    invalid_request = { "1001", "Invalid request" },
    project = { "1002", "Unknown project" },
    signature = { "1003", "Wrong signature" },
    duplicate = { "1004", "Payment with this payment_id already exists" },
    not_found = { "1005", "Payment not found" },
    not_allowed = { "1006", "Operation is not allowed for the payment in its status" },
    method = { "1007", "Payment method is not available for the project" },
    endpoint = { "1008", "Unknown endpoint" },
}

local function settings(config)
    local c = (config and config.ecommpay) or {}
    local projects = {}
    for id, secret in pairs(c.projects or {}) do projects[tostring(id)] = secret end
    if not next(projects) then projects[tostring(c.project_id or M.PROJECT_ID)] = c.secret or M.SECRET end
    return {
        projects = projects,
        balance = c.balance or M.BALANCE,
        clarification = c.clarification == true,
        callback_url = c.callback_url,
        base = "http://127.0.0.1:" .. config.ports.http .. "/ecommpay",
    }
end

local function dict()
    return ngx.shared.luapay_sandbox
end

local function now()
    return os.date("!%Y-%m-%dT%H:%M:%S+0000")
end

local function encode(value)
    return assert(core.json_encode(value))
end

local function array(t)
    return setmetatable(t or {}, core.array_mt)
end

-- Numbers from a request (number objects) as Lua numbers.
local function num(v)
    if getmetatable(v) == core.number_mt then return tonumber(v[1]) end
    if type(v) == "number" then return v end
    return nil
end

local function str(v)
    if type(v) == "string" then return v end
    if getmetatable(v) == core.number_mt then return v[1] end
    return nil
end

local function get(t, path)
    for part in path:gmatch("[^.]+") do
        if type(t) ~= "table" then return nil end
        t = t[part]
    end
    if t == core.null then return nil end
    return t
end

-- A planned lost answer (sandbox/lose_answer) takes the place of a Gate
-- answer, once the request was carried out. True when it answered.
local function lost_answer()
    local d = ngx.shared.luapay_sandbox
    local secret = ngx.ctx.ecommpay_secret
    if not secret or (d:get("ecommpay:lose:times") or 0) < 1 then return false end
    d:incr("ecommpay:lose:times", -1)
    local how, body = d:get("ecommpay:lose:how"), d:get("ecommpay:lose:body") or ""
    if how == "drop" or body == "" then
        control.lose(how)
        return true
    end
    if d:get("ecommpay:lose:sign") then
        local doc = assert(core.json_decode(body, { numbers = "lexeme" }))
        doc.signature = nil
        doc.signature = core.hmac("sha512", secret, assert(core.ecommpay_canonical(doc)), "base64")
        body = encode(doc)
    end
    local status = tonumber(how) or 500
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(body)
    ngx.exit(status)
    return true
end

local function reply(status, value)
    if lost_answer() then return end
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(encode(value))
    return ngx.exit(status)
end

local function seq(name)
    return dict():incr("ecommpay:seq:" .. name, 1, 0)
end

local function request_id()
    return core.hex_encode(core.random_bytes(10)) .. "-" .. ("%08d"):format(seq("request"))
end

-- Operation IDs beyond 2^53, as JSON integers: a client must keep them exact.
local function operation_id()
    return core.json_number("41" .. ("%016d"):format(seq("operation")))
end

local function fail(http_status, which, general, field_errors)
    local code = M.CODES[which]
    return reply(http_status, {
        status = "error", code = code[1], message = code[2], request_id = request_id(),
        project_id = general and num(general.project_id) or nil,
        payment_id = general and str(general.payment_id) or nil,
        errors = field_errors and array(field_errors) or nil,
    })
end

---------------------------------------------------------------------------
-- State
---------------------------------------------------------------------------

local function payment_key(project, payment_id)
    return "ecommpay:payment:" .. project .. ":" .. payment_id
end

local function load(project, payment_id)
    local s = dict():get(payment_key(project, payment_id))
    return s and core.json_decode(s) or nil
end

-- Tells the sandbox's journal about a payment or payout as it is now (an
-- account verification moves no money: not an operation).
local function journal_payment(state)
    if state.payment_type == "verify" then return end
    journal.operation{ provider = "ecommpay", kind = state.payment_type == "payout" and "payout" or "payment",
                       id = state.payment_id, amount = state.amount, currency = state.currency,
                       status = ecommpay.STATUS[state.status] or state.status }
end

local function save(state)
    dict():set(payment_key(state.project_id, state.payment_id), encode(state))
    journal_payment(state)
end

-- Creates the payment; false if the payment_id is taken in the project.
local function create(state)
    local ok = dict():add(payment_key(state.project_id, state.payment_id), encode(state))
    if ok then journal_payment(state) end
    return ok
end

-- A refund operation of a payment, in the journal: "<payment_id>/refund/<n>".
local function journal_refund(state, op)
    local n = 0
    for _, o in ipairs(state.operations) do
        if o.type == "refund" then n = n + 1 end
        if o == op then break end
    end
    local id = state.payment_id .. "/refund/" .. n
    journal.operation{ provider = "ecommpay", kind = "refund", id = id, parent = state.payment_id, amount = op.amount,
                       currency = op.currency,
                       status = op.status == "success" and "refunded" or op.status == "decline" and "failed" or "pending" }
    return id
end

local function balance_key(project, currency)
    return "ecommpay:balance:" .. project .. ":" .. currency
end

local function balance(c, project, currency)
    local key = balance_key(project, currency)
    dict():add(key, c.balance)
    return dict():get(key)
end

local function adjust_balance(c, project, currency, delta)
    balance(c, project, currency)
    dict():incr(balance_key(project, currency), delta)
end

local function save_recurring(rec)
    dict():set("ecommpay:recurring:" .. rec.project_id .. ":" .. rec.id, encode(rec))
end

local function load_recurring(project, id)
    local s = dict():get("ecommpay:recurring:" .. project .. ":" .. tostring(id))
    return s and core.json_decode(s) or nil
end

---------------------------------------------------------------------------
-- Callbacks
---------------------------------------------------------------------------

local function mask(number)
    if type(number) ~= "string" or #number < 8 then return number end
    return number:sub(1, 4) .. ("*"):rep(#number - 8) .. number:sub(-4)
end

-- The callback body for the payment's state and one operation.
local function callback_body(state, op, extra)
    local body = {
        general = { project_id = state.project_id, payment_id = state.payment_id },
        payment = {
            id = state.payment_id, type = state.payment_type, status = state.status, date = now(),
            method = "Trustly",
            sum = { amount = state.amount - (state.refunded or 0) - (state.reversed or 0), currency = state.currency },
            description = state.description or "",
        },
        customer = { id = state.customer_id or "" },
        operation = {
            id = core.json_number(op.id), type = op.type, status = op.status, date = now(),
            created_date = op.created, request_id = op.request_id,
            sum_initial = { amount = op.amount, currency = op.currency },
            sum_converted = { amount = op.amount, currency = op.currency },
            code = op.code, message = op.message,
            provider = { id = 1234, payment_id = op.provider_payment_id or "", date = now(), auth_code = "" },
        },
    }
    if state.account_number then body.account = { number = mask(state.account_number) } end
    if op.status == "decline" then
        body.errors = array { { code = op.code, message = op.message, field = core.null, description = op.message } }
    end
    for k, v in pairs(extra or {}) do body[k] = v end
    return body
end

local function sign(body, secret)
    local at = body.general or body -- a Payment Page callback has no general: signed at the root
    at.signature = nil
    at.signature = core.hmac("sha512", secret, assert(core.ecommpay_canonical(body)), "base64")
    return body
end

-- What became of each callback (no yield between get and set: a worker
-- runs one handler or timer at a time between I/O calls).
local function record_delivery(state, what)
    local key = "ecommpay:deliveries:" .. state.project_id .. ":" .. state.payment_id
    local list = core.json_decode(dict():get(key) or "[]")
    list[#list + 1] = what
    dict():set(key, encode(array(list)))
end

-- POSTs the signed texts in order, through the sandbox's journal (which
-- also forwards them); cosockets: a content handler or a timer.
local function deliver(state, url, texts, what)
    for i, text in ipairs(texts) do
        local res, rerr = journal.deliver{ provider = "ecommpay", id = state.payment_id, event = what[i], url = url,
                                           body = text, headers = { ["Content-Type"] = "application/json" },
                                           timeout_ms = 5000 }
        record_delivery(state, res and ("HTTP " .. res.status) or ("failed: " .. tostring(type(rerr) == "table"
            and rerr.message or rerr)))
    end
end

-- The signed texts of callback bodies, and what each says ("sale success").
local function signed(c, state, bodies)
    local secret = c.projects[tostring(state.project_id)]
    local texts, what = {}, {}
    for i, body in ipairs(bodies) do
        texts[i] = encode(sign(body, secret))
        local op = body.operation or {}
        what[i] = ("%s %s"):format(op.type or body.payment.type, op.status or body.payment.status)
    end
    return texts, what
end

-- Sends the callbacks from a timer (cosocket transport).
local function send_callbacks(c, state, bodies)
    local url = state.callback_url or c.callback_url
    if not url and not journal.forward_target() then
        record_delivery(state, "no callback URL")
        return
    end
    local texts, what = signed(c, state, bodies)
    local ok, err = ngx.timer.at(0, function(premature)
        if not premature then deliver(state, url, texts, what) end
    end)
    if not ok then ngx.log(ngx.ERR, "ecommpay sandbox: cannot schedule a callback: ", err) end
end

local function new_operation(kind, state, status, which, amount)
    local code = M.CODES[which]
    local op = {
        id = operation_id()[1], type = kind, status = status, created = now(), request_id = request_id(),
        amount = amount or state.amount, currency = state.currency, code = code[1], message = code[2],
        provider_payment_id = tostring(seq("provider")),
    }
    state.operations = state.operations or {}
    state.operations[#state.operations + 1] = op
    return op
end

---------------------------------------------------------------------------
-- Requests
---------------------------------------------------------------------------

-- What a purchase may leave out when the web service supports clarification.
local ASKABLE = { "customer.first_name", "customer.last_name", "customer.email", "customer.country",
                  "customer.language" }
local PAYOUT_ONLY = { CY = true, FR = true, GR = true, HR = true, LU = true, MT = true, PT = true }
local PURCHASE_COUNTRIES = {}
for c in ("AT BE BG CZ DE DK EE ES FI HU IE IT LT LV NL NO PL RO SE SI SK"):gmatch("%u%u") do
    PURCHASE_COUNTRIES[c] = true
end

local REQUIRED = {
    sale = { "payment.amount", "payment.currency", "customer.id", "customer.ip_address",
             "return_url.success", "return_url.decline" },
    sale_saved = { "payment.amount", "payment.currency", "customer.id", "customer.ip_address",
                   "return_url.success", "return_url.decline", "recurring_id" },
    recurring = { "payment.amount", "payment.currency", "customer.id", "customer.ip_address", "recurring_id" },
    account_verification = { "payment.amount", "payment.currency", "customer.id", "customer.ip_address",
                             "return_url.success", "return_url.decline", "recurring_register", "recurring.type" },
    refund = { "payment.description", "customer.ip_address" },
    payout = { "payment.amount", "payment.currency", "customer.id", "customer.ip_address", "customer.first_name",
               "customer.last_name", "account.number", "account.clearinghouse", "account.bank_code" },
    status = {},
}

-- Reads a request, checks its JSON, project and signature; returns the body
-- and the project's secret, or answers the error itself.
local function read_request(c)
    if ngx.req.get_method() ~= "POST" then return fail(405, "endpoint") end
    ngx.req.read_body()
    local raw = ngx.req.get_body_data() or ""
    local body = core.json_decode(raw, { numbers = "lexeme" })
    if type(body) ~= "table" or type(body.general) ~= "table" then return fail(400, "invalid_json") end
    local general = body.general
    local project = str(general.project_id)
    local secret = project and c.projects[project]
    if not secret then return fail(400, "project", general) end
    local sig = general.signature
    local expected = core.hmac("sha512", secret, assert(core.ecommpay_canonical(body, { callback = true })), "base64")
    if type(sig) ~= "string" or not core.equal(expected, sig) then return fail(400, "signature", general) end
    ngx.ctx.ecommpay_secret = secret -- from here on the request is carried out: its answer may be lost
    return body, secret
end

local function check_fields(op, body, c)
    local errs = {}
    local function missing(path, message)
        errs[#errs + 1] = { code = "1001", message = message or "Field is required", field = path }
    end
    if not str(get(body, "general.payment_id")) then missing("general.payment_id") end
    for _, path in ipairs(REQUIRED[op]) do
        if get(body, path) == nil then missing(path) end
    end
    if op == "sale" and not c.clarification then
        for _, path in ipairs(ASKABLE) do
            if get(body, path) == nil then missing(path) end
        end
    end
    local country = get(body, "customer.country")
    if op ~= "payout" and op ~= "refund" and type(country) == "string" and not PURCHASE_COUNTRIES[country] then
        missing("customer.country", PAYOUT_ONLY[country] and "Only payouts are supported in the country"
            or "Country is not supported by the method")
    end
    local rtype = get(body, "recurring.type")
    if (op == "sale" or op == "account_verification") and rtype ~= nil and not ({ C = 1, R = 1, U = 1 })[rtype] then
        missing("recurring.type", "Recurring type must be C, R or U")
    end
    if op == "sale" and get(body, "payment.currency") == "EUR" and (num(get(body, "payment.amount")) or 100) < 100 then
        missing("payment.amount", "Amount is below the method's minimum")
    end
    local currency = get(body, "payment.currency")
    if currency ~= nil and not M.CURRENCIES[currency] then missing("payment.currency", "Currency is not supported by the method") end
    local amount = get(body, "payment.amount")
    if amount ~= nil and (not num(amount) or num(amount) < 0 or num(amount) % 1 ~= 0) then
        missing("payment.amount", "Amount must be an integer in minor units")
    end
    if op == "account_verification" and num(amount) ~= 0 then missing("payment.amount", "Amount must be 0") end
    return errs
end

local function accepted(state)
    return reply(200, { status = "success", request_id = state.operations[#state.operations].request_id,
                        project_id = state.project_id, payment_id = state.payment_id })
end

local function new_payment(c, body, payment_type)
    local general = body.general
    return {
        project_id = tonumber(str(general.project_id)), payment_id = str(general.payment_id),
        payment_type = payment_type, status = "processing",
        amount = num(get(body, "payment.amount")) or 0, currency = get(body, "payment.currency"),
        description = get(body, "payment.description"), customer_id = str(get(body, "customer.id")),
        callback_url = get(body, "general.merchant_callback_url") or c.callback_url,
        return_success = get(body, "return_url.success"), return_decline = get(body, "return_url.decline"),
        token = core.hex_encode(core.random_bytes(12)), refunded = 0,
    }
end

local function redirect_data(c, state)
    return {
        url = ("%s/customer/%d/%s"):format(c.base, state.project_id, ngx.escape_uri(state.payment_id)),
        method = "POST",
        body = { token = state.token, payment_id = state.payment_id },
    }
end

local handlers = {}

-- The clarification_fields of a callback: a JSON schema per object.
local function clarification_fields(paths)
    local out = {}
    for _, path in ipairs(paths) do
        local object, name = path:match("^([^.]+)%.(.+)$")
        local o = out[object] or { type = "object", properties = {}, required = array() }
        o.properties[name] = { type = "string" }
        o.required[#o.required + 1] = name
        out[object] = o
    end
    return out
end

-- A purchase or an account verification: the customer goes to Trustly,
-- unless ecommpay asks for the customer's details first.
local function with_redirect(kind, payment_type)
    return function(c, body)
        local state = new_payment(c, body, payment_type)
        state.recurring_register = get(body, "recurring_register") == true
        state.recurring = get(body, "recurring")
        local asked = {}
        if kind == "sale" then
            for _, path in ipairs(ASKABLE) do
                if get(body, path) == nil then asked[#asked + 1] = path end
            end
        end
        if #asked > 0 then
            local op = new_operation(kind, state, "awaiting clarification", "clarification")
            state.status, state.asked = "awaiting clarification", asked
            if not create(state) then return fail(400, "duplicate", body.general) end
            send_callbacks(c, state, { callback_body(state, op, { clarification_fields = clarification_fields(asked) }) })
            return accepted(state)
        end
        local op = new_operation(kind, state, "awaiting redirect result", "awaiting")
        state.status = "awaiting redirect result"
        if not create(state) then return fail(400, "duplicate", body.general) end
        send_callbacks(c, state, { callback_body(state, op, { redirect_data = redirect_data(c, state) }) })
        return accepted(state)
    end
end

-- The submission of additional payment information: every field asked for,
-- then the purchase goes on to the bank.
local function clarify(c, body)
    local general = body.general
    local state = load(tonumber(str(general.project_id)), str(general.payment_id) or "")
    if not state then return fail(404, "not_found", general) end
    if state.status ~= "awaiting clarification" then return fail(400, "not_allowed", general) end
    local errs = {}
    for _, path in ipairs(state.asked) do
        if get(body, path) == nil then errs[#errs + 1] = { code = "1001", message = "Field is required", field = path } end
    end
    local country = get(body, "customer.country")
    if type(country) == "string" and not PURCHASE_COUNTRIES[country] then
        errs[#errs + 1] = { code = "1001", message = "Country is not supported by the method", field = "customer.country" }
    end
    if #errs > 0 then return fail(400, "invalid_request", general, errs) end
    local op = state.operations[#state.operations]
    op.status, op.request_id, op.code, op.message = "awaiting redirect result", request_id(), M.CODES.awaiting[1],
        M.CODES.awaiting[2]
    state.status, state.asked = "awaiting redirect result", nil
    save(state)
    send_callbacks(c, state, { callback_body(state, op, { redirect_data = redirect_data(c, state) }) })
    return accepted(state)
end

handlers.sale = with_redirect("sale", "purchase")
handlers.account_verification = with_redirect("account verification", "verify")

-- A purchase with a stored credential: no customer interaction.
local function with_recurring(kind, payment_type, types)
    return function(c, body)
        local state = new_payment(c, body, payment_type)
        local rec = load_recurring(state.project_id, str(body.recurring_id) or "")
        local ok = rec and types[rec.type] and rec.customer_id == state.customer_id and rec.currency == state.currency
        local op
        if ok then
            op = new_operation(kind, state, "success", "success")
            state.status = "success"
        else
            op = new_operation(kind, state, "decline", "recurring_unknown")
            state.status = "decline"
        end
        if not create(state) then return fail(400, "duplicate", body.general) end
        if ok then adjust_balance(c, state.project_id, state.currency, state.amount) end
        send_callbacks(c, state, { callback_body(state, op) })
        return accepted(state)
    end
end

handlers.sale_saved = with_recurring("sale", "purchase", { C = true })
handlers.recurring = with_recurring("recurring", "recurring", { R = true, U = true })

handlers.refund = function(c, body)
    local general = body.general
    local state = load(tonumber(str(general.project_id)), str(general.payment_id))
    if not state then return fail(400, "not_found", general) end
    if not (state.payment_type == "purchase" or state.payment_type == "recurring")
        or not (state.status == "success" or state.status == "partially refunded") then
        return fail(400, "not_allowed", general)
    end
    -- Every refund request is a new refund: the documentation gives refunds
    -- no key of their own (general.payment_id names the refunded payment).
    local available = state.amount - state.refunded
    local amount = num(get(body, "payment.amount")) or available
    local currency = get(body, "payment.currency") or state.currency
    local op
    if currency ~= state.currency then
        op = new_operation("refund", state, "decline", "refund_currency", amount)
    elseif amount > available or amount < 1 then
        op = new_operation("refund", state, "decline", "refund_exceeds", amount)
    else
        op = new_operation("refund", state, "success", "success", amount)
        state.refunded = state.refunded + amount
        state.status = state.refunded == state.amount and "refunded" or "partially refunded"
        adjust_balance(c, state.project_id, state.currency, -amount)
    end
    state.callback_url = get(general, "merchant_callback_url") or state.callback_url
    journal_refund(state, op)
    save(state)
    send_callbacks(c, state, { callback_body(state, op) })
    return accepted(state)
end

handlers.payout = function(c, body)
    local state = new_payment(c, body, "payout")
    state.account_number = get(body, "account.number")
    local op
    if state.amount > balance(c, state.project_id, state.currency) then
        op = new_operation("payout", state, "decline", "no_funds_merchant")
        state.status = "decline"
    else
        op = new_operation("payout", state, "success", "success")
        state.status = "success"
    end
    if not create(state) then return fail(400, "duplicate", body.general) end
    if state.status == "success" then adjust_balance(c, state.project_id, state.currency, -state.amount) end
    send_callbacks(c, state, { callback_body(state, op) })
    return accepted(state)
end

local function status_document(c, state)
    local last = state.operations[#state.operations]
    local body = callback_body(state, last)
    local ops = {}
    for i, op in ipairs(state.operations) do
        ops[i] = { id = core.json_number(op.id), type = op.type, status = op.status, date = op.created,
                   request_id = op.request_id, sum_initial = { amount = op.amount, currency = op.currency },
                   code = op.code, message = op.message }
    end
    body.operations = array(ops)
    body.project_id = state.project_id
    body.general = nil
    body.signature = core.hmac("sha512", c.projects[tostring(state.project_id)],
        assert(core.ecommpay_canonical(body)), "base64")
    return body
end

local function gate_request(c, op)
    local body = read_request(c)
    if not body then return end
    local errs = check_fields(op, body, c)
    if #errs > 0 then return fail(400, "invalid_request", body.general, errs) end
    return handlers[op](c, body)
end

local OPERATIONS = { ["sale"] = "sale", ["sale/saved"] = "sale_saved", ["recurring"] = "recurring",
                     ["account_verification"] = "account_verification", ["refund"] = "refund", ["payout"] = "payout" }

---------------------------------------------------------------------------
-- The customer and the bank
---------------------------------------------------------------------------

local function customer_decision(c, project, payment_id)
    ngx.req.read_body()
    local args = ngx.req.get_post_args() or {}
    local state = load(tonumber(project), payment_id)
    if not state or args.token ~= state.token then return fail(404, "not_found") end
    if state.status ~= "awaiting redirect result" then return fail(400, "not_allowed") end
    local approve = args.decision == "approve"
    local kind = state.payment_type == "verify" and "account verification" or "sale"
    local op = approve and new_operation(kind, state, "success", "success")
        or new_operation(kind, state, "decline", "customer_declined")
    state.status = approve and "success" or "decline"
    local bodies = { callback_body(state, op) }
    if approve then
        if state.payment_type == "purchase" then adjust_balance(c, state.project_id, state.currency, state.amount) end
        if state.recurring_register then -- the COF registration, announced by a repeated callback
            local rtype = type(state.recurring) == "table" and state.recurring.type or "C"
            local rec = { project_id = state.project_id, id = seq("recurring") + 1000, type = rtype,
                          customer_id = state.customer_id, currency = state.currency }
            save_recurring(rec)
            local recurring = { id = rec.id, type = rec.type, currency = rec.currency,
                                valid_thru = os.date("!%Y-%m-%dT00:00:00+0000", os.time() + 365 * 86400) }
            if state.payment_type == "verify" then
                bodies[1].recurring = recurring
            else
                bodies[2] = callback_body(state, op, { recurring = recurring })
            end
        end
    end
    save(state)
    send_callbacks(c, state, bodies)
    ngx.status = 302
    ngx.header["Location"] = (approve and state.return_success or state.return_decline) or (c.base .. "/done")
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(approve and "approved" or "declined")
    return ngx.exit(302)
end

local function bank_reject(c, project, payment_id)
    local state = load(tonumber(project), payment_id)
    if not state then return fail(404, "not_found") end
    if state.payment_type ~= "payout" or state.status ~= "success" then return fail(400, "not_allowed") end
    local amount = tonumber(ngx.var.arg_amount) or state.amount
    if amount < 1 or amount > state.amount or amount % 1 ~= 0 then return fail(400, "not_allowed") end
    local op = new_operation("reversal", state, "success", "bank_rejected", amount)
    state.status = amount < state.amount and "partially reversed" or "reversed"
    state.reversed = amount
    adjust_balance(c, state.project_id, state.currency, amount)
    save(state)
    send_callbacks(c, state, { callback_body(state, op) })
    return reply(200, { status = "success", payment_id = state.payment_id })
end

---------------------------------------------------------------------------
-- luapay trigger (POST /_sandbox/trigger)
---------------------------------------------------------------------------

M.EVENTS = events.list {
    { "payment_pending", "payment", "payment pending", "sale, awaiting redirect result: the customer goes to the bank" },
    { "payment_success", "payment", "payment succeeded", "sale success", "approve" },
    { "payment_decline", "payment", "payment failed", "sale decline: declined by the customer or the bank", "decline" },
    { "refund_success", "refund", "refund refunded", "refund success" },
    { "refund_decline", "refund", "refund failed", "refund decline: the refund failed, the payment is as it was",
      "fail_refund" },
    { "payout_success", "payout", "payout succeeded", "payout success" },
    { "payout_decline", "payout", "payout failed", "payout decline: insufficient funds on the merchant balance" },
    { "payout_reversal", "payout", "reversal reversed", "reversal: the recipient's bank rejected the payout",
      "reverse_payout" },
}

local function first_project(c)
    local ids = {}
    for id in pairs(c.projects) do ids[#ids + 1] = id end
    table.sort(ids)
    return tonumber(ids[1])
end

-- A new payment or payout for a trigger given no id.
local function trigger_payment(c, req, payment_type, status)
    local project = first_project(c)
    local state = {
        project_id = project, payment_id = "sandbox-" .. seq("trigger"), payment_type = payment_type,
        status = status, amount = req.amount or 10000, currency = req.currency or "EUR", description = "luapay trigger",
        customer_id = "sandbox-customer", callback_url = req.url, token = core.hex_encode(core.random_bytes(12)),
        refunded = 0, operations = {},
    }
    if payment_type == "payout" then state.account_number = "SE4550000000058398257466" end
    assert(create(state))
    if status == "success" and payment_type == "purchase" then
        adjust_balance(c, project, state.currency, state.amount)
    elseif status == "success" then
        adjust_balance(c, project, state.currency, -state.amount)
    end
    return state
end

-- The payment (or payout) a trigger names: "<payment_id>" or, for a
-- refund, "<payment_id>/refund/<n>" (the n-th refund operation).
local function trigger_find(c, id)
    local payment_id, n = id:match("^(.*)/refund/(%d+)$")
    local state = load(first_project(c), payment_id or id)
    if not state then
        for project in pairs(c.projects) do
            state = state or load(tonumber(project), payment_id or id)
        end
    end
    if not state or not n then return state end
    local k = 0
    for _, op in ipairs(state.operations) do
        if op.type == "refund" then
            k = k + 1
            if k == tonumber(n) then return state, op end
        end
    end
    return nil
end

local SALE = { payment_pending = { "awaiting redirect result", "awaiting" }, payment_success = { "success", "success" },
               payment_decline = { "decline", "customer_declined" } }
local PAYOUT = { payout_success = { "success", "success" }, payout_decline = { "decline", "no_funds_merchant" } }

--- M.trigger(event, req, config) -> id | nil, status, message: sends the
-- event's callback now (luapay.sandbox.journal's /_sandbox/trigger).
function M.trigger(event, req, config)
    local c = settings(config)
    local state, refund_op
    if req.id then
        state, refund_op = trigger_find(c, req.id)
        if not state then return nil, 404, "no ecommpay payment " .. req.id end
        local kind = state.payment_type == "payout" and "payout" or "payment"
        if event.on ~= "refund" and kind ~= event.on or event.on == "refund" and kind ~= "payment" then
            return nil, 409, ("%s is a %s, not a %s"):format(req.id, kind, event.on)
        end
    end
    local name, op, extra, refund_id = event.name, nil, nil, nil
    if SALE[name] then
        local to = SALE[name]
        state = state or trigger_payment(c, req, "purchase", "awaiting redirect result")
        if state.status ~= "awaiting redirect result" and state.status ~= "awaiting clarification" then
            return nil, 409, ("payment %s is %s already"):format(state.payment_id, state.status)
        end
        op = new_operation("sale", state, to[1], to[2])
        state.status = to[1]
        if to[1] == "success" then adjust_balance(c, state.project_id, state.currency, state.amount) end
        if to[1] == "awaiting redirect result" then extra = { redirect_data = redirect_data(c, state) } end
    elseif event.on == "refund" then
        state = state or trigger_payment(c, req, "purchase", "success")
        local success = name == "refund_success"
        if refund_op and refund_op.status == "success" and not success then
            -- that refund fails after all: the money comes back
            state.refunded = state.refunded - refund_op.amount
            adjust_balance(c, state.project_id, state.currency, refund_op.amount)
        end
        if refund_op then
            refund_op.status, refund_op.code, refund_op.message = success and "success" or "decline",
                M.CODES[success and "success" or "decline"][1], M.CODES[success and "success" or "decline"][2]
            op = refund_op
        else
            local amount = math.min(req.amount or state.amount, state.amount - state.refunded)
            if success and amount < 1 then return nil, 409, "payment " .. state.payment_id .. " is refunded already" end
            op = new_operation("refund", state, success and "success" or "decline", success and "success" or "decline",
                math.max(amount, 1))
            if success then
                state.refunded = state.refunded + amount
                adjust_balance(c, state.project_id, state.currency, -amount)
            end
        end
        state.status = state.refunded == 0 and "success" or state.refunded == state.amount and "refunded"
            or "partially refunded"
        refund_id = journal_refund(state, op)
    elseif PAYOUT[name] then
        local to = PAYOUT[name]
        state = state or trigger_payment(c, req, "payout", to[1])
        if state.status ~= to[1] then
            return nil, 409, ("payout %s is %s"):format(state.payment_id, state.status)
        end
        op = state.operations[#state.operations] or new_operation("payout", state, to[1], to[2])
    elseif name == "payout_reversal" then
        state = state or trigger_payment(c, req, "payout", "success")
        if state.status ~= "success" then return nil, 409, ("payout %s is %s"):format(state.payment_id, state.status) end
        op = new_operation("reversal", state, "success", "bank_rejected", state.amount)
        state.status, state.reversed = "reversed", state.amount
        adjust_balance(c, state.project_id, state.currency, state.amount)
    end
    state.callback_url = req.url or state.callback_url
    save(state)
    local texts, what = signed(c, state, { callback_body(state, op, extra) })
    deliver(state, state.callback_url or c.callback_url, texts, what)
    return refund_id or state.payment_id
end

---------------------------------------------------------------------------
-- Routing
---------------------------------------------------------------------------

function M.handle(path, config)
    local c = settings(config)
    if path == "payment" then return require("luapay.sandbox.ecommpay_page").handle(c) end
    if path:find("^v2/") then dict():incr("ecommpay:requests", 1, 0) end
    local method, op = path:match("^v2/payment/online%-banking/([%w_%-]+)/(.+)$")
    if method then
        if not OPERATIONS[op] then return fail(404, "endpoint") end
        if method ~= "trustly" then
            local body = read_request(c)
            if not body then return end
            return fail(400, "method", body.general)
        end
        return gate_request(c, OPERATIONS[op])
    end
    if path == "v2/payment/clarification" then
        local body = read_request(c)
        if not body then return end
        return clarify(c, body)
    end
    if path == "v2/payment/status" then
        local body = read_request(c)
        if not body then return end
        local errs = check_fields("status", body, c)
        if #errs > 0 then return fail(400, "invalid_request", body.general, errs) end
        local state = load(tonumber(str(body.general.project_id)), str(body.general.payment_id))
        if not state then return fail(404, "not_found", body.general) end
        return reply(200, status_document(c, state))
    end
    local project, payment_id = path:match("^customer/(%d+)/(.+)$")
    if project then return customer_decision(c, project, ngx.unescape_uri(payment_id)) end
    project, payment_id = path:match("^sandbox/bank_reject/(%d+)/(.+)$")
    if project then return bank_reject(c, project, ngx.unescape_uri(payment_id)) end
    local inbox = path:match("^sandbox/inbox/([%w_%-%.]+)$")
    if inbox then
        local key = "ecommpay:inbox:" .. inbox
        local list = core.json_decode(dict():get(key) or "[]")
        if ngx.req.get_method() == "POST" then
            ngx.req.read_body()
            list[#list + 1] = ngx.req.get_body_data() or ""
            dict():set(key, encode(array(list)))
            ngx.header["Content-Type"] = "text/plain"
            ngx.print("OK")
            return
        end
        return reply(200, array(list))
    end
    if path == "sandbox/lose_answer" then
        ngx.req.read_body()
        local d = dict()
        d:set("ecommpay:lose:times", tonumber(ngx.var.arg_times) or 1)
        d:set("ecommpay:lose:how", ngx.var.arg_how or "drop")
        d:set("ecommpay:lose:body", ngx.req.get_body_data() or "")
        d:set("ecommpay:lose:sign", ngx.var.arg_sign == "1")
        return reply(200, { ok = true })
    end
    if path == "sandbox/requests" then
        return reply(200, { requests = dict():get("ecommpay:requests") or 0 })
    end
    project, payment_id = path:match("^sandbox/payment/(%d+)/(.+)$")
    if project then
        local state = load(tonumber(project), ngx.unescape_uri(payment_id))
        if not state then return fail(404, "not_found") end
        state.token = nil
        local deliveries = dict():get("ecommpay:deliveries:" .. project .. ":" .. ngx.unescape_uri(payment_id))
        state.deliveries = core.json_decode(deliveries or "[]")
        return reply(200, state)
    end
    return fail(404, "endpoint")
end

-- For the Payment Page fake (luapay.sandbox.ecommpay_page): the same state and callbacks.
M.internal = { load = load, create = create, new_operation = new_operation, adjust_balance = adjust_balance,
               callback_body = callback_body, send_callbacks = send_callbacks,
               purchase_countries = PURCHASE_COUNTRIES, payout_only = PAYOUT_ONLY }

return M
