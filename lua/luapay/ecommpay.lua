--- luapay.ecommpay: ecommpay's Gate API and Payment Page, for the Trustly
-- method (and any other method of the same online-banking endpoint group).
--
-- Pure functions (no I/O):
--   ecommpay.string_to_sign(params)            --> the canonical string
--   ecommpay.signature(params, secret)         --> base64 HMAC-SHA512 of it
--   ecommpay.verify_notification(raw_body, headers, {secret = ...}) --> event | nil, err
--   ecommpay.payment_page_url(params, secret [, base_url]) --> url
--
-- A client for Gate:
--   local gate = ecommpay.new{ project_id = 1625, secret = "...",
--                              callback_url = "https://shop.example/ecommpay" }
--   local res, err = gate:sale("trustly", { general = { payment_id = "order-42" },
--       payment = { amount = 1000, currency = "EUR" }, customer = {...}, return_url = {...} })
--   --> { status = "success", request_id = "...", project_id = 1625, payment_id = "order-42" }
--   (plus replayed = true and payment = the status event when the answer was
--   lost and the payment was found through status, see below)
--   local event, err = gate:notification(raw_body) -- the signed callback, verified
--   local answer = gate:notification_response(event, recorded) -- { status = 200, body = "OK", ... }
--
-- Requests keep ecommpay's own field names (general, payment, customer,
-- return_url, recurring, account, additional_data, ...). Amounts are integers
-- in minor units, as ecommpay wants them on the wire. Every request is
-- checked against the fields the Trustly documentation requires for that
-- operation before anything is sent; general.project_id is filled in and
-- general.signature computed by the client.
--
-- Lost answers. A purchase, COF payment, account verification or payout is
-- resent with its payment_id after a lost answer or a 502/503/504 (ecommpay
-- refuses a payment_id it has seen, so nothing is made twice). When the
-- resend is refused and an earlier attempt may have reached ecommpay (the
-- pipeline's delivered_before), the client asks status and returns the
-- payment it finds as the call's result, replayed = true, if the request
-- could have made it: the first operation's type is the call's, its amount
-- and currency are the request's, and so are the customer id and account
-- number where the status answer shows them (a masked number must agree in
-- what it shows). Otherwise the refusal is the call's error; if status
-- cannot be asked, the error says the outcome is unknown and how to find
-- out. Left ambiguous: a 5xx from a proxy that never reached ecommpay
-- counts as "may have reached it", so a payment_id the merchant used before
-- for a payment of the same type, amount, currency, customer and account
-- is taken for this call's payment. ecommpay asks for payment_ids unique
-- within the project: never reuse one. (operation.created_date would tell
-- an older payment, but neither its format nor ecommpay's clock is
-- documented, so it is not used; it is in res.payment.extra.body for a caller that
-- wants to check.) A refund is never resent once it may have arrived.
local core = require "luapay.core"
local errors = require "luapay.errors"
local http = require "luapay.http"
local provider = require "luapay.provider"

local ecommpay = {}

ecommpay.API_URL = "https://api.ecommpay.com"
ecommpay.PAYMENT_PAGE_URL = "https://paymentpage.ecommpay.com"

--- The currencies of the Trustly method as ecommpay documents them
-- ("General information"). The 000 seed prints "EUR, BGN, CZK, DKK, EUR,
-- HUF, ...": EUR twice and no GBP. The second EUR stands where GBP falls in
-- the list's alphabetical order, ecommpay's Trustly page lists GBP there,
-- and the payout table has UNITED_KINGDOM: it is read as GBP, so luapay
-- does not refuse what ecommpay takes. BGN is kept although ISO 4217
-- withdrew it in January 2026 (Bulgaria adopted the euro), so it is
-- checked against this list, not the core's ISO table: the provider
-- decides what it still accepts, and amounts go to ecommpay in minor
-- units, so no exponent is needed to send them.
ecommpay.TRUSTLY_CURRENCIES = { "EUR", "BGN", "CZK", "DKK", "GBP", "HUF", "NOK", "PLN", "RON", "SEK" }

--- The countries of the Trustly method ("Countries and regions"), and
-- those of them marked "Only payouts are supported in these countries": a
-- purchase, COF payment or account verification for a customer of one of
-- these, or of a country not listed, is refused.
ecommpay.TRUSTLY_COUNTRIES = { "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK" }
ecommpay.TRUSTLY_PAYOUT_ONLY = { "CY", "FR", "GR", "HR", "LU", "MT", "PT" }

--- The smallest Trustly purchase, in minor units per currency: the
-- documentation's 1.00 EUR ("Amounts, EUR (or equivalent)": purchases only;
-- COF purchases, refunds and payouts have none). The equivalent in another
-- currency depends on the day's rate, so only EUR is known here; give the
-- client the others with the option min_purchase = {SEK = 1200, ...}.
ecommpay.TRUSTLY_MIN_PURCHASE = { EUR = 100 }

local number_mt, null = core.number_mt, core.null
local digits = provider.digits
local math_type = math.type
local url_encode, form_encode, page_url = core.url_encode, core.form_encode, core.ecommpay_page_url
local sign = core.ecommpay_sign

---------------------------------------------------------------------------
-- Signing
-- @section signing
---------------------------------------------------------------------------

local function argerror(fn, n, name, msg)
    error(("ecommpay.%s: bad argument #%d '%s' (%s)"):format(fn, n, name, msg), 3)
end

local function check_secret(fn, n, secret)
    if type(secret) ~= "string" or secret == "" then
        argerror(fn, n, "secret", "a non-empty string expected, got " .. (secret == "" and "an empty string" or type(secret)))
    end
end

--- The string ecommpay signs: the parameters flattened to path:value, sorted
-- in PHP's natural order, joined by ';' (see csrc/ecommpay.c). Pass the
-- parameters without their signature.
function ecommpay.string_to_sign(params)
    if type(params) ~= "table" then argerror("string_to_sign", 1, "params", "table expected, got " .. type(params)) end
    local s, err = core.ecommpay_canonical(params)
    if not s then error("ecommpay.string_to_sign: " .. err, 2) end
    return s
end

--- base64(HMAC-SHA512(secret, string_to_sign(params))).
function ecommpay.signature(params, secret)
    -- The arguments checked here only when the C call refuses them (false):
    -- under Lua 5.4 the checks cost more than the signing.
    local sig, err = sign(params, secret)
    if sig then return sig end
    if type(params) ~= "table" then argerror("signature", 1, "params", "table expected, got " .. type(params)) end
    check_secret("signature", 2, secret)
    error("ecommpay.signature: " .. err, 2)
end

---------------------------------------------------------------------------
-- Notifications (ecommpay's callbacks)
-- @section notifications
---------------------------------------------------------------------------

-- A Lua number from a number object (or a number): an integer when the text
-- is one (Lua 5.4 integers; under LuaJIT exact up to 2^53).
local function to_number(v)
    if getmetatable(v) == number_mt then v = tonumber(v[1]) end
    if type(v) ~= "number" then return nil end
    if math.tointeger then return math.tointeger(v) or v end
    return v
end

local function to_integer(v) return provider.integer(to_number(v)) end

-- exact: v is from a body core.ecommpay_callback placed, whose numbers are
-- integers written as their digits (their text, as a lexeme would keep it).
local function text(v, exact)
    local t = type(v)
    if t == "string" then return v end
    if v == nil or v == null then return nil end
    if t == "table" then return getmetatable(v) == number_mt and v[1] or nil end
    if exact and t == "number" then return digits(v) end
    return tostring(v)
end

-- t[a] (or t[a][b]) when the path leads through plain tables; JSON null is
-- nil. A number object is a table too, whose only key is 1: a name finds
-- nothing in it (no getmetatable needed, a callback's hot path).
local function field(t, a, b)
    if type(t) ~= "table" then return nil end
    t = t[a]
    if b ~= nil then
        if type(t) ~= "table" then return nil end
        t = t[b]
    end
    if t == null then return nil end
    return t
end

-- A copy with number objects as plain values (text for what a form carries).
local plain = provider.plain

-- plain(x, true) for a placed body (see text): numbers as their digits.
local function as_text(x)
    if type(x) == "number" then return digits(x) end
    if type(x) ~= "table" then return x end
    local t = {}
    for k, y in pairs(x) do t[k] = as_text(y) end
    return setmetatable(t, getmetatable(x) == core.array_mt and core.array_mt or nil)
end

--- payment.status (and operation.status) onto the common statuses.
ecommpay.STATUS = {
    ["success"] = "succeeded",
    ["decline"] = "failed",
    ["processing"] = "pending",
    ["awaiting 3ds result"] = "pending",
    ["awaiting redirect result"] = "pending",
    ["awaiting customer"] = "pending",
    ["awaiting clarification"] = "pending",
    ["awaiting customer action"] = "pending",
    ["awaiting capture"] = "authorized",
    ["refunded"] = "refunded",
    ["partially refunded"] = "partially_refunded",
    ["reversed"] = "reversed",
    ["partially reversed"] = "partially_reversed",
    ["cancelled"] = "canceled",
    ["canceled"] = "canceled",
    ["error"] = "failed",
    ["internal error"] = "failed",
    ["external error"] = "failed",
    ["expired"] = "failed",
}

--- operation.type (or, in a callback without an operation, payment.type)
-- onto provider.KINDS; a word not listed is "other". The word itself stays
-- in event.extra.operation_type and payment_type: a reversal of a payout
-- has payment_type "payout".
ecommpay.KIND = {
    ["sale"] = "payment",
    ["purchase"] = "payment",
    ["recurring"] = "payment",
    ["auth"] = "authorization",
    ["capture"] = "capture",
    ["cancel"] = "void",
    ["refund"] = "refund",
    ["payout"] = "payout",
    ["reversal"] = "reversal",
    ["chargeback"] = "chargeback",
    ["account verification"] = "account",
    ["account_verification"] = "account",
    ["verify"] = "account",
}

-- The parameters a clarification callback asks for, as dotted paths
-- ("customer.first_name"), sorted. clarification_fields nests them by
-- object; a node with `properties` (a JSON schema) lists them there, a
-- node with a scalar `type` is one parameter, an array holds names.
local function clarification_paths(node, prefix, out, exact)
    if type(node) ~= "table" or getmetatable(node) == number_mt then
        if prefix then out[#out + 1] = prefix end
        return out
    end
    if type(node.properties) == "table" then return clarification_paths(node.properties, prefix, out, exact) end
    if prefix and type(node.type) == "string" and node.type ~= "object" then
        out[#out + 1] = prefix
        return out
    end
    if #node > 0 then
        for _, name in ipairs(node) do
            local t = text(name, exact)
            if t then out[#out + 1] = prefix and (prefix .. "." .. t) or t end
        end
        return out
    end
    for k, v in pairs(node) do
        if type(k) == "string" then clarification_paths(v, prefix and (prefix .. "." .. k) or k, out, exact) end
    end
    return out
end

local FAILED_OPERATION = { ["decline"] = true, ["error"] = true, ["internal error"] = true,
                           ["external error"] = true, ["expired"] = true }

-- What the event reads of a body: extra's scalars (a new table) and the
-- event's merchant_ref, provider_ref, amount and currency. For a body it
-- placed, core.ecommpay_callback reads the same at once with
-- CALLBACK_PICKS (below; spec/28 compares them).
local function scalars(body, exact)
    local payment, operation = field(body, "payment") or {}, field(body, "operation")
    local sum = field(operation, "sum_initial") or field(payment, "sum") or {}
    return {
        project_id = to_integer(field(body, "project_id") or field(body, "general", "project_id")),
        payment_status = text(field(payment, "status"), exact),
        payment_type = text(field(payment, "type"), exact),
        payment_amount = to_integer(field(payment, "sum", "amount")),
        operation_type = text(field(operation, "type"), exact),
        operation_status = text(field(operation, "status"), exact),
        request_id = text(field(operation, "request_id"), exact),
        code = text(field(operation, "code"), exact),
        message = text(field(operation, "message"), exact),
        customer_id = text(field(body, "customer", "id"), exact),
    }, text(field(payment, "id"), exact) or text(field(body, "general", "payment_id"), exact),
        text(field(operation, "id"), exact), to_integer(field(sum, "amount")), text(field(sum, "currency"), exact)
end

-- scalars as data, for the pass that decodes a callback (the C core knows
-- no provider's field names): extra's scalars by name, then payment.id and
-- general.payment_id (merchant_ref: the first that reads), provider_ref,
-- the amount and the currency.
local SUM = { { "operation", "sum_initial" }, { "payment", "sum" } }
local CALLBACK_PICKS = core.json_pick_plan {
    { key = "project_id", from = { { "project_id" }, { "general", "project_id" } }, as = "integer" },
    { key = "payment_status", from = { { "payment", "status" } }, as = "text" },
    { key = "payment_type", from = { { "payment", "type" } }, as = "text" },
    { key = "payment_amount", from = { { "payment", "sum", "amount" } }, as = "integer" },
    { key = "operation_type", from = { { "operation", "type" } }, as = "text" },
    { key = "operation_status", from = { { "operation", "status" } }, as = "text" },
    { key = "request_id", from = { { "operation", "request_id" } }, as = "text" },
    { key = "code", from = { { "operation", "code" } }, as = "text" },
    { key = "message", from = { { "operation", "message" } }, as = "text" },
    { key = "customer_id", from = { { "customer", "id" } }, as = "text" },
    { from = { { "payment", "id" } }, as = "text" },
    { from = { { "general", "payment_id" } }, as = "text" },
    { from = { { "operation", "id" } }, as = "text" },
    { from = SUM, path = { "amount" }, as = "integer" },
    { from = SUM, path = { "currency" }, as = "text" },
}
ecommpay.CALLBACK_PICKS = CALLBACK_PICKS

-- The event; exact: body is core.ecommpay_callback's, fresh and placed (see
-- text), so it is extra.body as it is. extra and the four after it are
-- scalars(body, exact), when the caller has them.
local function callback_event(body, raw_body, exact, extra, merchant_ref, provider_ref, amount, currency)
    if not extra then extra, merchant_ref, provider_ref, amount, currency = scalars(body, exact) end
    local payment_status, operation_status = extra.payment_status, extra.operation_status
    local status = ecommpay.STATUS[payment_status or ""]
    -- A declined refund or payout leaves the payment as it was: the
    -- operation's failure is what this callback reports.
    if FAILED_OPERATION[operation_status or ""] then status = "failed" end
    if operation_status == "reversed" or payment_status == "reversed" then status = "reversed" end
    extra.body = exact and body or plain(body)
    -- Rarer parts, each a table or nothing (null is no table).
    local errs = body.errors
    if errs and type(errs) == "table" and #errs > 0 then
        extra.errors = exact and as_text(errs) or plain(errs, true)
    end
    local redirect = body.redirect_data
    if redirect and type(redirect) == "table" and text(redirect.url, exact) and text(redirect.url, exact) ~= "" then
        local rbody = redirect.body
        extra.redirect = {
            url = text(redirect.url, exact),
            method = text(redirect.method, exact) or "GET",
            body = type(rbody) == "table" and (exact and as_text(rbody) or plain(rbody, true)) or {},
        }
    end
    local recurring = body.recurring
    if recurring and type(recurring) == "table" and field(recurring, "id") ~= nil then
        extra.recurring = plain(recurring)
        extra.recurring.id = to_integer(recurring.id) or text(recurring.id, exact)
        -- 000 seed, "COF purchases registration": after the success callback
        -- of the purchase comes a repeated one with the recurring object.
        if extra.operation_type == "sale" and operation_status == "success" and payment_status == "success" then
            extra.repeated = true
        end
    end
    local wanted = body.clarification_fields
    if wanted and type(wanted) == "table" and getmetatable(wanted) ~= number_mt then
        local paths = clarification_paths(wanted, nil, {}, exact)
        table.sort(paths)
        if #paths > 0 then extra.clarification = paths end
    end
    return provider.make_event("ecommpay", ecommpay.KIND[extra.operation_type or extra.payment_type or ""] or "other",
        status or "pending", merchant_ref, provider_ref, amount, currency, raw_body or assert(core.json_encode(body)),
        extra)
end

--- ecommpay.event(body [, raw_body]) -> the common event (provider.event)
-- for a verified callback or status answer: body decoded (with numbers as
-- core.number_mt lexemes, or plain), raw_body the text it was decoded from
-- (default: body encoded again). ecommpay's own words are under extra:
-- project_id, payment_status, payment_type, payment_amount (what the
-- payment holds now), operation_type, operation_status, request_id, code,
-- message, customer_id, errors, redirect {url, method, body}, recurring,
-- repeated (true: the repeated success callback of a purchase that
-- announces its COF registration in recurring), clarification (the
-- parameters ecommpay asks for, see Client:clarify), and body (the decoded
-- body, numbers as Lua numbers).
function ecommpay.event(body, raw_body)
    if type(body) ~= "table" then
        error("ecommpay.event: bad argument #1 'body' (table expected, got " .. type(body) .. ")", 2)
    end
    if raw_body ~= nil and type(raw_body) ~= "string" then
        error("ecommpay.event: bad argument #2 'raw_body' (string or nil expected, got " .. type(raw_body) .. ")", 2)
    end
    return callback_event(body, raw_body, false)
end

local function signature_error(message)
    return nil, errors.new("signature", message)
end

local CALLBACK = { callback = true } -- every "signature" key left out

-- The check itself, once the arguments are known to be right.
-- As ecommpay's PHP SDK (Callback::getSignature): the root signature
-- unless it is absent or null, else general.signature; a signature that is
-- there but no string is refused, never passed over.
local function carried_signature(body)
    local sig = body.signature
    if sig == nil or sig == null then sig = field(body, "general", "signature") end
    if sig == nil or sig == "" then return nil, "callback carries no signature" end
    if type(sig) ~= "string" then return nil, "callback signature is not a string" end
    return sig
end

local function verify(raw_body, secret)
    if raw_body == nil or raw_body == "" then return signature_error("callback has no body") end
    -- One pass over the text decodes the body and signs it (see
    -- core.ecommpay_callback); a body out of that pass's reach is decoded
    -- again with its numbers' text and signed as a tree.
    local body, want, extra, payment_id, general_payment_id, provider_ref, amount, currency =
        core.ecommpay_callback(raw_body, secret, CALLBACK_PICKS)
    if not body then return signature_error("callback body is not JSON (" .. want .. ")") end
    if want then
        local sig, serr = carried_signature(body)
        if not sig then return signature_error(serr) end
        if not core.equal(want, sig) then return signature_error("callback signature does not match") end
        return callback_event(body, raw_body, true, extra, payment_id or general_payment_id, provider_ref, amount,
            currency)
    end
    body = core.json_decode(raw_body, { numbers = "lexeme" })
    if type(body) ~= "table" or getmetatable(body) ~= nil then
        return signature_error("callback body is not a JSON object")
    end
    local sig, serr = carried_signature(body)
    if not sig then return signature_error(serr) end
    local err
    want, err = core.ecommpay_signature(body, secret, CALLBACK)
    if not want then return signature_error("callback cannot be signed: " .. err) end
    if not core.equal(want, sig) then
        return signature_error("callback signature does not match")
    end
    return callback_event(body, raw_body, false)
end

local function check_raw_body(fn, raw_body)
    if raw_body ~= nil and type(raw_body) ~= "string" then
        argerror(fn, 1, "raw_body", "the raw body string expected (verify before decoding), got " .. type(raw_body))
    end
end

--- ecommpay.verify_notification(raw_body, headers, keys) -> event | nil, err
-- Verifies a callback on its raw body (ecommpay signs the body: headers
-- are not read, pass them or nil) with keys.secret, the project's secret
-- key, and returns the common event (see ecommpay.event); anything else is
-- an error of type "signature". As in ecommpay's PHP SDK, the signature
-- is the root `signature` (Payment Page), or `general.signature` (Gate)
-- when the root one is absent or null; one that is not a string is
-- refused. Every `signature` key is left out of the signed string, at any
-- depth, except one whose value is null (signed as empty, as the SDK
-- does). Numbers are taken from their text, so 2^63-1 or 1.0 sign exactly
-- as ecommpay signed them, under Lua 5.4 and LuaJIT alike.
function ecommpay.verify_notification(raw_body, headers, keys)
    check_raw_body("verify_notification", raw_body)
    if headers ~= nil and type(headers) ~= "table" then
        argerror("verify_notification", 2, "headers", "a table or nil expected, got " .. type(headers))
    end
    if type(keys) ~= "table" then argerror("verify_notification", 3, "keys", "{secret = ...} expected, got " .. type(keys)) end
    local secret = keys.secret
    if type(secret) ~= "string" or secret == "" then
        argerror("verify_notification", 3, "keys", "keys.secret: a non-empty string expected, got "
            .. (secret == "" and "an empty string" or type(secret)))
    end
    return verify(raw_body, secret)
end

--- ecommpay.verify_callback(raw_body, secret) -> event | nil, err: the
-- 0.1 name and form of ecommpay.verify_notification(raw_body, nil,
-- {secret = secret}). Deprecated: removed in 0.3.
function ecommpay.verify_callback(raw_body, secret)
    check_raw_body("verify_callback", raw_body)
    check_secret("verify_callback", 2, secret)
    return verify(raw_body, secret)
end

---------------------------------------------------------------------------
-- Payment Page
-- @section payment_page
---------------------------------------------------------------------------

-- PHP's urlencode (http_build_query, RFC 1738): space as '+'.
local function urlencode(s)
    if type(s) ~= "string" then error("ecommpay.urlencode: bad argument #1 's' (string expected, got " .. type(s) .. ")", 2) end
    return url_encode(s, true)
end
ecommpay.urlencode = urlencode

-- The order of the query: the PHP SDK's Payment sets project_id,
-- interface_type and payment_id first; then the payment and customer
-- basics as the documentation lists them; then the rest in byte order.
local PAGE_ORDER = { "project_id", "interface_type", "payment_id", "payment_amount", "payment_currency",
                     "customer_id", "payment_description", "language_code", "redirect", "redirect_success_url" }
local PAGE_RANK = {}
for i, k in ipairs(PAGE_ORDER) do PAGE_RANK[k] = i end

-- Payment Page parameters are flat strings: booleans 1/0, integers in
-- decimal, objects (payment_extra_param, booking_info, ...) as JSON.
local function page_value(name, v)
    local t = type(v)
    if t == "string" then return v end
    if t == "boolean" then return v and "1" or "0" end
    if t == "number" then
        if math_type and math_type(v) == "integer" then return tostring(v) end
        if v == math.floor(v) and math.abs(v) <= 2 ^ 53 then return ("%.0f"):format(v) end
        argerror("payment_page_url", 1, "params", name .. " is a float: send amounts as integers in minor units")
    end
    if getmetatable(v) == number_mt then return v[1] end
    if t == "table" then
        local json, err = core.json_encode(v)
        if not json then argerror("payment_page_url", 1, "params", name .. ": " .. err) end
        return json
    end
    argerror("payment_page_url", 1, "params", name .. " cannot be sent (" .. t .. ")")
end

--- The signed Payment Page URL: base .. "/payment?" .. query .. "&signature=" ..
-- signature, as ecommpay's PHP SDK builds it. nil and null values are left
-- out; a `signature` in params is replaced.
function ecommpay.payment_page_url(params, secret, base_url)
    if type(params) ~= "table" then argerror("payment_page_url", 1, "params", "table expected, got " .. type(params)) end
    check_secret("payment_page_url", 2, secret)
    if base_url ~= nil and type(base_url) ~= "string" then
        argerror("payment_page_url", 3, "base_url", "string expected, got " .. type(base_url))
    end
    -- Built in one C call (core.ecommpay_page_url); a value it leaves to
    -- Lua (a table as JSON) or one that cannot be sent comes here.
    local url = page_url(params, secret, PAGE_ORDER, base_url or ecommpay.PAYMENT_PAGE_URL)
    if url then return url end
    local values, rest = {}, {}
    for k, v in pairs(params) do
        if type(k) ~= "string" then argerror("payment_page_url", 1, "params", "keys must be strings") end
        if k ~= "signature" and v ~= null then
            values[k] = page_value(k, v)
            if not PAGE_RANK[k] then rest[#rest + 1] = k end
        end
    end
    table.sort(rest)
    -- name, value, name, value, ...: PAGE_ORDER's names first, then the rest in byte order
    local query = {}
    for _, k in ipairs(PAGE_ORDER) do
        local v = values[k]
        if v ~= nil then
            query[#query + 1] = k
            query[#query + 1] = v
        end
    end
    for _, k in ipairs(rest) do
        query[#query + 1] = k
        query[#query + 1] = values[k]
    end
    query[#query + 1] = "signature"
    query[#query + 1] = assert(core.ecommpay_signature(values, secret))
    local base = base_url or ecommpay.PAYMENT_PAGE_URL
    if base:byte(-1) == 47 then base = base:gsub("/+$", "") end -- trailing '/'
    return form_encode(query, true, base .. "/payment?")
end

---------------------------------------------------------------------------
-- Request schemas (compiled once, at load)
-- @section request_schemas
---------------------------------------------------------------------------

--- ecommpay's payout account table for the Trustly method ("Figure 32" of
-- its documentation): for each clearinghouse the pattern (POSIX ERE, kept
-- exactly as printed) of account.number and, where the table gives one, of
-- account.bank_code; where that cell is blank bank_code is a BIC/SWIFT
-- code. The printed table has 29 rows; every one is here, sorted by name.
-- The generic validator checks them as data (pattern_by, ACCOUNT_FORMATS).
-- @table CLEARINGHOUSES
ecommpay.CLEARINGHOUSES = {
    { name = "AUSTRIA", number = "^AT[0-9]{18}$" },
    { name = "BELGIUM", number = "^BE[0-9]{14}$" },
    { name = "BULGARIA", number = "^BG[0-9]{2}[A-Z]{4}[0-9]{4}[0-9]{2}[A-Z0-9]{8}$" },
    { name = "CROATIA", number = "^HR[0-9]{2}[0-9]{7}[0-9]{10}$" },
    { name = "CYPRUS", number = "^CY[0-9]{10}[0-9A-Z]{16}$" },
    { name = "CZECH_REPUBLIC", bank_code = "^[0-9]{4}$", number = "^[0-9]{16}$" },
    { name = "DENMARK", bank_code = "^[0-9]{4}$", number = "^[0-9]{4,10}$" },
    { name = "ESTONIA", bank_code = "^[0-9]{2}$", number = "^[0-9]{4,14}$" },
    { name = "FINLAND", number = "^FI[0-9]{16}$" },
    { name = "FRANCE", number = "^FR[0-9]{12}[0-9A-Z]{11}[0-9]{2}$" },
    { name = "GERMANY", number = "^DE[0-9]{20}$" },
    { name = "GREECE", number = "^GR[0-9]{25}$" },
    { name = "HUNGARY", bank_code = "^[0-9]{8}$", number = "^[0-9]{24}$" },
    { name = "IRELAND", number = "^IE[0-9]{2}[A-Z]{4}[0-9]{14}$" },
    { name = "ITALY", number = "^IT[0-9]{2}[A-Z][0-9]{10}[0-9A-Z]{12}$" },
    { name = "LATVIA", number = "^LV[0-9]{2}[A-Z]{4}[0-9A-Z]{13}$" },
    { name = "LITHUANIA", number = "^LT[0-9]{18}$" },
    { name = "LUXEMBOURG", number = "^LU[0-9]{18}$" },
    { name = "MALTA", number = "^MT[0-9]{2}[A-Z]{4}[0-9]{5}[0-9A-Z]{18}$" },
    { name = "NETHERLANDS", number = "^NL[0-9]{2}[A-Z]{4}[0-9]{10}$" },
    { name = "NORWAY", bank_code = "^[0-9]{4}$", number = "^[0-9]{7}$" },
    { name = "POLAND", number = "^PL[0-9]{26}$" },
    { name = "PORTUGAL", bank_code = "^[0-9]{8}$", number = "^[0-9]{13}$" },
    { name = "ROMANIA", number = "^RO[0-9]{2}[A-Z]{4}[0-9A-Z]{16}$" },
    { name = "SLOVAKIA", number = "^SK[0-9]{22}$" },
    { name = "SLOVENIA", number = "^SI56[0-9]{15}$" },
    { name = "SPAIN", number = "^ES[0-9]{22}$" },
    { name = "SWEDEN", bank_code = "^[0-9]{4,5}$", number = "^[0-9]{1,15}$" },
    { name = "UNITED_KINGDOM", bank_code = "^[0-9]{6}$", number = "^[0-9]{8}$" },
}

local CLEARINGHOUSES = {}
local NUMBER_FORMATS, BANK_CODE_FORMATS = {}, {}
for i, row in ipairs(ecommpay.CLEARINGHOUSES) do
    CLEARINGHOUSES[i] = row.name
    NUMBER_FORMATS[row.name] = row.number
    BANK_CODE_FORMATS[row.name] = row.bank_code or { format = "bic" }
end

--- The account fields' rules by clearinghouse, as core.schema's pattern_by
-- takes them: `{type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.number}`.
-- An unknown or missing clearinghouse skips them (that field reports itself).
-- @table ACCOUNT_FORMATS
ecommpay.ACCOUNT_FORMATS = {
    number = { field = "clearinghouse", patterns = NUMBER_FORMATS, label = "account number" },
    bank_code = { field = "clearinghouse", patterns = BANK_CODE_FORMATS, label = "bank code" },
}

-- The recurring object of a COF registration (000 seed, "COF purchase
-- registration by using account verification"; a sale that registers COF
-- purchases sends the same object): the type, and for regular payments (R)
-- the schedule. start_date is "date and time of the next COF purchase",
-- with no format given: a string, passed on as it is.
local function recurring_schema(required)
    local R = { field = "type", equals = "R" }
    return { type = "object", required = required or nil, fields = {
        type = { type = "enum", required = true, values = { "C", "R", "U" } },
        time = { type = "string", required_if = R, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$" },
        -- "2030" or 2030, "06" or 6: checked in extra_checks
        expiry_year = { type = "any", required_if = R },
        expiry_month = { type = "any", required_if = R },
        expiry_day = { type = "any", required_if = R },
        interval = { type = "integer", required_if = R, min = 1 },
        amount = { type = "amount", required_if = R, min = 1 },
        period = { type = "enum", required_if = R, values = { "D", "W", "M", "Q", "Y" } },
        scheduled_payment_id = { type = "string", required_if = R, min_len = 1, max_len = 255 },
        start_date = { type = "string", required_if = R, min_len = 1, max_len = 255 },
    } }
end

-- One schema per operation, for Trustly (every rule of its documentation)
-- and for other methods of the endpoint group (types only, and the fields
-- every Gate request needs). clarify: the web service supports the
-- submission of additional payment information, so a purchase may leave
-- out the customer's names, e-mail, country and language (000 seed,
-- "Purchases by using Gate"): ecommpay asks for what it needs.
local function build_schema(op, trustly, clarify)
    local function req(s)
        if trustly then s.required = true end
        return s
    end
    local function asked(s)
        if trustly and not clarify then s.required = true end
        return s
    end
    local currency = trustly and { type = "enum", values = ecommpay.TRUSTLY_CURRENCIES } or { type = "currency" }
    local function currency_field(required)
        local c = { required = required or nil }
        for k, v in pairs(currency) do c[k] = v end
        return c
    end
    local party = { "PERSON", "ORGANISATION" }
    local fields = {
        general = { type = "object", required = true, fields = {
            project_id = { type = "integer", required = true, min = 1 },
            payment_id = { type = "string", required = true, min_len = 1, max_len = 255 },
            merchant_callback_url = { type = "url", max_len = 2048 },
        } },
        payment = { type = "object", required = true, fields = {
            amount = { type = "amount", required = true, min = 1 },
            currency = currency_field(true),
            description = { type = "string", max_len = 255 },
        } },
        customer = { type = "object", required = trustly, fields = {
            id = req { type = "string", min_len = 1, max_len = 255 },
            ip_address = req { type = "ip" },
        } },
        return_url = { type = "object", fields = {
            success = { type = "url", max_len = 2048 },
            decline = { type = "url", max_len = 2048 },
            ["return"] = { type = "url", max_len = 2048 },
        } },
    }
    local customer = fields.customer.fields
    local function return_urls_required()
        fields.return_url.required = trustly
        fields.return_url.fields.success.required = trustly
        fields.return_url.fields.decline.required = trustly
    end
    local beneficiary = { type = "object", fields = {
        party_type = { type = "enum", required = true, values = party },
        first_name = { type = "string", max_len = 255, required_if = { field = "party_type", equals = "PERSON" } },
        last_name = { type = "string", required = true, min_len = 1, max_len = 255 },
        country = { type = "country", required = true },
    } }
    if op == "sale" or op == "clarification" then
        customer.first_name = asked { type = "string", min_len = 1, max_len = 255 }
        customer.last_name = asked { type = "string", min_len = 1, max_len = 255 }
        customer.email = asked { type = "email" }
        customer.country = asked { type = "country" }
        customer.language = asked { type = "language" }
        fields.additional_data = { type = "object", fields = { beneficiary = beneficiary } }
    end
    if op == "clarification" then
        -- general and what ecommpay asked for, nothing required beyond them
        customer.id, customer.ip_address = { type = "string", min_len = 1, max_len = 255 }, { type = "ip" }
        fields.customer.required = nil
        fields.payment, fields.return_url = nil, nil
        for _, f in pairs(customer) do f.required = nil end
    elseif op == "sale" then
        return_urls_required()
        fields.recurring_register = { type = "boolean" }
        fields.recurring = recurring_schema(false)
    elseif op == "sale_saved" or op == "recurring" then
        fields.recurring_id = { type = "integer", required = true, min = 1 }
        if op == "sale_saved" then return_urls_required() end
    elseif op == "account_verification" then
        fields.payment.fields.amount = { type = "amount", required = true, min = 0, max = 0 }
        return_urls_required()
        fields.recurring_register = { type = "boolean", required = true }
        fields.recurring = recurring_schema(true)
    elseif op == "refund" then
        -- A full refund sends neither amount nor currency; a partial one both.
        fields.payment.fields.amount = { type = "amount", min = 1 }
        fields.payment.fields.currency = currency_field(false)
        fields.payment.fields.description = { type = "string", required = true, min_len = 1, max_len = 255 }
        fields.payment.fields.merchant_refund_id = { type = "string", min_len = 1, max_len = 255 }
        fields.customer = { type = "object", required = true, fields = {
            ip_address = { type = "ip", required = true },
        } }
    elseif op == "payout" then
        customer.first_name = req { type = "string", min_len = 1, max_len = 255 }
        customer.last_name = req { type = "string", min_len = 1, max_len = 255 }
        fields.account = { type = "object", required = trustly, fields = {
            clearinghouse = req { type = "enum", values = CLEARINGHOUSES },
            number = req { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.number },
            bank_code = req { type = "string", pattern_by = ecommpay.ACCOUNT_FORMATS.bank_code },
        } }
        fields.additional_data = { type = "object", fields = {
            sender = { type = "object", fields = {
                party_type = { type = "enum", required = true, values = party },
                first_name = { type = "string", required = true, min_len = 1, max_len = 255 },
                last_name = { type = "string", max_len = 255, required_if = { field = "party_type", equals = "PERSON" } },
                address = { type = "string", required = true, min_len = 1, max_len = 255 },
                country = { type = "country", required = true },
            } },
        } }
    elseif op == "page" then
        local page = {
            project_id = { type = "integer", required = true, min = 1 },
            payment_id = { type = "string", required = true, min_len = 1, max_len = 255 },
            payment_amount = { type = "amount", required = true, min = 1 },
            payment_currency = currency_field(true),
            customer_id = { type = "string", required = true, min_len = 1, max_len = 255 },
            customer_first_name = { type = "string", max_len = 255 },
            customer_last_name = { type = "string", max_len = 255 },
            customer_email = { type = "email" },
            customer_country = { type = "country" },
            language_code = { type = "language" },
            force_payment_method = { type = "string", max_len = 255 },
            identify_doc_number = { type = "string", max_len = 255 },
            redirect_success_url = { type = "url", max_len = 2048 },
            redirect_fail_url = { type = "url", max_len = 2048 },
            merchant_success_url = { type = "url", max_len = 2048 },
            merchant_fail_url = { type = "url", max_len = 2048 },
            merchant_callback_url = { type = "url", max_len = 2048 },
            payment_extra_param = { type = "object", fields = { beneficiary = beneficiary } },
        }
        return core.schema { type = "object", fields = page }
    elseif op == "status" then
        return core.schema { type = "object", fields = { general = fields.general } }
    end
    return core.schema { type = "object", fields = fields }
end

local OPERATIONS = { "sale", "sale_saved", "recurring", "account_verification", "refund", "payout", "page", "status",
    "clarification" }
local SCHEMAS = { trustly = {}, other = {}, trustly_clarify = {}, other_clarify = {} }
for _, op in ipairs(OPERATIONS) do
    SCHEMAS.trustly[op] = build_schema(op, true)
    SCHEMAS.other[op] = build_schema(op, false)
    SCHEMAS.trustly_clarify[op] = build_schema(op, true, true)
    SCHEMAS.other_clarify[op] = build_schema(op, false, true)
end
local PURCHASE_COUNTRIES = {}
for _, c in ipairs(ecommpay.TRUSTLY_COUNTRIES) do PURCHASE_COUNTRIES[c] = true end
for _, c in ipairs(ecommpay.TRUSTLY_PAYOUT_ONLY) do PURCHASE_COUNTRIES[c] = nil end
-- The operations that take money from the customer (or register to).
local PURCHASE = { sale = true, sale_saved = true, recurring = true, account_verification = true, page = true,
    clarification = true }

local EXPIRY = { { "expiry_day", 1, 31 }, { "expiry_month", 1, 12 }, { "expiry_year", 2000, 9999 } }

local is_integer = provider.is_integer

-- Rules a schema cannot say: sibling values that must agree.
local violation = errors.violation

local function extra_checks(op, trustly, r, out, min_purchase)
    local payment = type(r.payment) == "table" and r.payment or {}
    local general = type(r.general) == "table" and r.general or {}
    local amount, currency = payment.amount, payment.currency
    if op == "page" then amount, currency = r.payment_amount, r.payment_currency end
    if trustly and (op == "sale" or op == "page") and type(currency) == "string" and is_integer(amount) then
        local min = min_purchase and min_purchase[currency] or ecommpay.TRUSTLY_MIN_PURCHASE[currency]
        if min and amount < min then
            out[#out + 1] = violation(op == "page" and "payment_amount" or "payment.amount", "range",
                ("a Trustly purchase is at least %s %s"):format(core.to_decimal(min, currency), currency))
        end
    end
    if trustly and PURCHASE[op] then
        local path, country = "customer.country", type(r.customer) == "table" and r.customer.country
        if op == "page" then path, country = "customer_country", r.customer_country end
        if type(country) == "string" and country:find("^%u%u$") and not PURCHASE_COUNTRIES[country] then
            local payout_only = false
            for _, c in ipairs(ecommpay.TRUSTLY_PAYOUT_ONLY) do payout_only = payout_only or c == country end
            out[#out + 1] = violation(path, "enum", payout_only and ("only Trustly payouts are supported in " .. country)
                or (country .. " is not one of the Trustly method's countries"))
        end
    end
    if op == "clarification" then
        local given = false
        for k in pairs(r) do given = given or k ~= "general" end
        if not given then
            out[#out + 1] = violation("general", "required", "comes with the parameters ecommpay asked for")
        end
    end
    if op == "account_verification" or (op == "sale" and r.recurring ~= nil) then
        if op == "account_verification" and r.recurring_register == false then
            out[#out + 1] = violation("recurring_register", "enum", "must be true to register COF purchases")
        end
        local rec = type(r.recurring) == "table" and r.recurring or {}
        for _, e in ipairs(EXPIRY) do
            local v = rec[e[1]]
            if v ~= nil and v ~= null then
                local n = type(v) == "string" and v:find("^%d%d?%d?%d?$") and tonumber(v) or (is_integer(v) and v)
                if not n then
                    out[#out + 1] = violation("recurring." .. e[1], "type", "must be an integer or a string of digits")
                elseif n < e[2] or n > e[3] then
                    out[#out + 1] = violation("recurring." .. e[1], "range", ("must be within %d..%d"):format(e[2], e[3]))
                end
            end
        end
        if type(rec.scheduled_payment_id) == "string" and rec.scheduled_payment_id == general.payment_id then
            out[#out + 1] = violation("recurring.scheduled_payment_id", "enum",
                "must differ from general.payment_id (the registering payment)")
        end
    end
    if op == "refund" then
        local has_amount = amount ~= nil and amount ~= null
        local has_currency = currency ~= nil and currency ~= null
        if has_amount and not has_currency then
            out[#out + 1] = violation("payment.currency", "required", "is required with payment.amount (a partial refund)")
        elseif has_currency and not has_amount then
            out[#out + 1] = violation("payment.amount", "required", "is required with payment.currency (a partial refund)")
        end
    end
end


-- Inserts the extra violations among the schema's, keeping path order.
local function merge(violations, extra)
    for _, v in ipairs(extra) do
        local at = #violations + 1
        for i, w in ipairs(violations) do
            if w.path > v.path or (w.path == v.path and w.code > v.code) then
                at = i
                break
            end
        end
        table.insert(violations, at, v)
    end
    return violations
end

--- ecommpay.validate(op, method, request [, opts]) -> true | nil, err
-- (validation, with `fields`). op: sale sale_saved recurring
-- account_verification refund payout page status clarification. Trustly's
-- rules apply when method is "trustly" (for "page": force_payment_method
-- "online-banking-trustly"). opts.clarification: the web service submits
-- additional payment information, so a sale may leave out the customer's
-- names, e-mail, country and language; opts.min_purchase: the smallest
-- purchase per currency (minor units) over ecommpay.TRUSTLY_MIN_PURCHASE.
function ecommpay.validate(op, method, request, opts)
    if opts ~= nil and type(opts) ~= "table" then
        error("ecommpay.validate: bad argument #4 'opts' (table or nil expected, got " .. type(opts) .. ")", 2)
    end
    opts = opts or {}
    local trustly = method == "trustly"
    local schema = SCHEMAS[(trustly and "trustly" or "other") .. (opts.clarification and "_clarify" or "")][op]
    if not schema then error("ecommpay.validate: bad argument #1 'op' (unknown operation '" .. tostring(op) .. "')", 2) end
    local ok, violations = schema:validate(request)
    local extra = {}
    if type(request) == "table" then extra_checks(op, trustly, request, extra, opts.min_purchase) end
    if ok and #extra == 0 then return true end
    violations = merge(violations or {}, extra)
    local what = op == "page" and "Payment Page" or ("the " .. op .. " request")
    return nil, errors.new("validation", ("ecommpay: %s is invalid (%d problem%s)"):format(
        what, #violations, #violations == 1 and "" or "s"), { fields = violations })
end

---------------------------------------------------------------------------
-- The Gate client
-- @section the_gate_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout.
ecommpay.SECRET_OPTIONS = { "secret" }

-- The client class (the local keeps its 0.1 name, Gate).
local Gate = errors.secret_fields({}, ecommpay.SECRET_OPTIONS)
ecommpay.Client = Gate
--- Deprecated until 0.3: the client class's 0.1 name, ecommpay.Client.
ecommpay.Gate = Gate

--- The options ecommpay.new accepts (its own, then
-- provider.TRANSPORT_OPTIONS); any other raises. `live` is deprecated
-- until 0.3: `live = true` is environment = "live".
ecommpay.OPTIONS = provider.options { "project_id", "secret", "base_url", "payment_page_base", "callback_url",
    "clarification", "min_purchase", "environment", "live" }

--- ecommpay.new{project_id, secret, environment = "test" | "live",
-- base_url, payment_page_base, callback_url, clarification, min_purchase,
-- and the transport options (provider.TRANSPORT_OPTIONS)} -> client, an
-- ecommpay.Client. ecommpay has one endpoint for test and live projects:
-- "live" requires https URLs and refuses verify = false. clarification =
-- true: this web service supports the submission of additional payment
-- information (000 seed, "Purchases by using Gate"), so a sale may leave
-- out the customer's names, e-mail, country and language; ecommpay then
-- asks for them in a callback (event.extra.clarification) and
-- client:clarify sends them. min_purchase = {SEK = 1200, ...}: the
-- smallest Trustly purchase in currencies other than EUR (the documented
-- "1.00 EUR or equivalent"). An unknown option raises.
function ecommpay.new(opts)
    provider.check_options("ecommpay.new", opts, ecommpay.OPTIONS)
    local environment = provider.environment("ecommpay.new", opts, { live = true })
    local project_id = opts.project_id
    if type(project_id) ~= "number" or project_id < 1 or project_id ~= math.floor(project_id) or project_id > 2 ^ 53 then
        provider.option_error("ecommpay.new", "project_id", "must be a positive integer (the project ID from ecommpay)")
    end
    if type(opts.secret) ~= "string" or opts.secret == "" then
        provider.option_error("ecommpay.new", "secret", "must be a non-empty string (the project's secret key)")
    end
    for _, name in ipairs { "base_url", "payment_page_base", "callback_url" } do
        local v = opts[name]
        if v ~= nil and (type(v) ~= "string" or not v:find("^https?://[^/]")) then
            provider.option_error("ecommpay.new", name, "must be an http(s) URL")
        end
    end
    if opts.clarification ~= nil and type(opts.clarification) ~= "boolean" then
        provider.option_error("ecommpay.new", "clarification", "must be a boolean (the web service submits additional payment information)")
    end
    local min_purchase = opts.min_purchase
    if min_purchase ~= nil then
        local ok = type(min_purchase) == "table"
        for k, v in pairs(ok and min_purchase or {}) do
            ok = ok and type(k) == "string" and k:find("^%u%u%u$") ~= nil and provider.is_integer(v) and v >= 0
        end
        if not ok then
            provider.option_error("ecommpay.new", "min_purchase", "must map currency codes to amounts in minor units ({SEK = 1200})")
        end
        min_purchase = setmetatable(provider.copy(min_purchase, "ecommpay.new"), { __index = ecommpay.TRUSTLY_MIN_PURCHASE })
    end
    local self = setmetatable({
        environment = environment,
        checks = { clarification = opts.clarification or nil, min_purchase = min_purchase },
        project_id = math.tointeger and math.tointeger(project_id) or project_id,
        base_url = (opts.base_url or ecommpay.API_URL):gsub("/+$", ""),
        payment_page_base = (opts.payment_page_base or ecommpay.PAYMENT_PAGE_URL):gsub("/+$", ""),
        callback_url = opts.callback_url,
    }, Gate)
    provider.check_urls("ecommpay.new", opts, environment,
        { { "base_url", self.base_url }, { "payment_page_base", self.payment_page_base, browser = true } })
    errors.keep_secrets(self, opts, ecommpay.SECRET_OPTIONS)
    self.http = provider.pipeline("ecommpay.new", opts, environment == "live")
    return provider.client(self, opts)
end

Gate.__tostring = errors.describe("luapay.ecommpay client", { "$environment", "project $project_id", "$base_url" })

-- A copy of a request to the client's method fn.
local function copy(v, fn) return provider.copy(v, "ecommpay.Client:" .. fn) end

local function check_method(fn, method)
    if type(method) ~= "string" or not method:find("^[%w_%-]+$") then
        error(("ecommpay.Client:%s: bad argument #1 'method' (a payment method name such as \"trustly\" expected, got %s)")
            :format(fn, type(method) == "string" and ("%q"):format(method) or type(method)), 3)
    end
end

-- The body to send: a copy with general.project_id (and the default
-- callback URL) filled in, without any signature of the caller's.
local function prepare(self, fn, req)
    if type(req) ~= "table" then
        error(("ecommpay.Client:%s: bad argument #2 'request' (table expected, got %s)"):format(fn, type(req)), 3)
    end
    local body = copy(req, fn)
    if body.general == nil then body.general = {} end
    if type(body.general) == "table" then
        local g = body.general
        g.signature = nil
        if g.project_id == nil then g.project_id = self.project_id end
        if g.merchant_callback_url == nil and self.callback_url then g.merchant_callback_url = self.callback_url end
    end
    return body
end

-- Every Gate call of the client, in one place: its path and whether a
-- resend is safe. A payment_id is "unique within the project": ecommpay
-- refuses a second request with one it has seen, so a purchase, a COF
-- payment, an account verification or a payout resent after a lost answer
-- cannot happen twice (the resend gets an error answer, and the call finds
-- its payment through status: see replay below). A refund names the payment
-- it refunds by that payment_id, so the ID is no key for the refund itself,
-- and the documentation gives refunds none (merchant_refund_id is only
-- echoed in callbacks): a resent refund could refund twice, so it is never
-- resent once it may have arrived. The status call only reads.
--
-- operation_types: the operation.type (ecommpay's documented values) of
-- the first operation of a payment the call makes, for replay below. No
-- type is documented for /sale/saved (a OneClick purchase): sale or
-- recurring.
local CALLS = {
    sale = { name = "sale", path = "/sale", idempotent = true, operation_types = { sale = true } },
    sale_saved = { name = "sale_saved", path = "/sale/saved", idempotent = true,
                   operation_types = { sale = true, recurring = true } },
    recurring = { name = "recurring", path = "/recurring", idempotent = true, operation_types = { recurring = true } },
    account_verification = { name = "account_verification", path = "/account_verification", idempotent = true,
                             operation_types = { ["account verification"] = true } },
    payout = { name = "payout", path = "/payout", idempotent = true, operation_types = { payout = true } },
    refund = { name = "refund", path = "/refund", idempotent = false },
    status = { name = "status", path = "/v2/payment/status", idempotent = true },
    -- Sending the same parameters again changes nothing; ecommpay refuses
    -- them once the payment no longer awaits clarification.
    clarification = { name = "clarification", path = "/v2/payment/clarification", idempotent = true },
}

-- ecommpay's error answer as a provider error: its code, message and the
-- per-field list.
local function provider_error(res, doc)
    local fields
    if type(doc.errors) == "table" then
        fields = {}
        for _, e in ipairs(doc.errors) do
            if type(e) == "table" then
                local path = text(e.field)
                fields[#fields + 1] = {
                    path = path or "", code = text(e.code), description = text(e.description),
                    message = (path and path ~= "" and (path .. ": ") or "") .. (text(e.message) or "invalid"),
                }
            end
        end
    end
    local message = text(doc.message) or ("ecommpay answered HTTP " .. res.status)
    return errors.new("provider", message, {
        http_status = res.status, code = text(doc.code), request_id = text(doc.request_id),
        payment_id = text(doc.payment_id), fields = fields, raw = res.body,
        retryable = res.status >= 500, attempts = res.attempts, elapsed = res.elapsed,
        delivered_before = res.delivered_before, sent = true,
    })
end

-- A 200 that is not what ecommpay documents for the call: an error, with
-- nothing of the answer taken as success data.
local function malformed(res, call, problem)
    return http.malformed(res, ("ecommpay answered the %s request with HTTP %d %s"):format(call.name, res.status, problem))
end

-- How to learn what became of an operation whose answer was lost.
-- (%q only where the id needs escapes: LuaJIT leaves the trace of every
-- call that formats with it.)
local function how_to_find_out(payment_id)
    local id = tostring(payment_id)
    local quoted = id:find('[%c"\\]') and ("%q"):format(id) or '"' .. id .. '"'
    return "ask gate:status(" .. quoted .. ") or wait for ecommpay's callback"
end

-- A sent operation with no clear answer (see http.mark_unknown).
local function outcome_unknown(err, call, find_out)
    return http.mark_unknown(err, call.idempotent, ("ecommpay may have taken the %s request"):format(call.name), find_out)
end

-- Signs and sends a body. Returns the decoded answer to a 200 (numbers
-- from their text when `exact`) and the response, for the caller to check
-- against what ecommpay documents; or nil, err. The pipeline marks its own
-- errors of an operation that is not idempotent (find_out); the rest is
-- marked here.
local function send(self, call, url, body, exact)
    body.general.signature = nil
    body.general.signature = assert(core.ecommpay_signature(body, self.secret))
    local is_operation = call ~= CALLS.status
    local find_out = is_operation and how_to_find_out(body.general.payment_id) or nil
    local res, err = self.http:request {
        method = "POST", url = url, json = body, idempotent = call.idempotent, decode = false, find_out = find_out,
    }
    if not res then
        if is_operation and call.idempotent and err.sent ~= false and (err.type == "network" or err.type == "timeout") then
            outcome_unknown(err, call, find_out)
        end
        return nil, err
    end
    local doc = type(res.body) == "string" and res.body ~= "" and core.json_decode(res.body, exact and { numbers = "lexeme" } or nil)
    local object = type(doc) == "table" and getmetatable(doc) == nil
    if res.status ~= 200 or (object and doc.status == "error") then
        local unanswered = res.status >= 500 and is_operation
        if object then
            err = provider_error(res, doc)
            if unanswered then outcome_unknown(err, call, find_out) end
        else
            err = http.status_error(res, "ecommpay")
            if unanswered and call.idempotent then outcome_unknown(err, call, find_out) end
        end
        return nil, err
    end
    if not object then
        err = malformed(res, call, "without a JSON object")
        if is_operation then outcome_unknown(err, call, find_out) end
        return nil, err
    end
    return doc, res
end

-- The synchronous answer ecommpay documents for a request it accepted:
-- {status = "success", request_id, project_id, payment_id}, for this
-- project and payment. -> result | nil, what is wrong
local function accepted(self, body, doc)
    if text(doc.status) ~= "success" then return nil, "without status \"success\"" end
    local request_id = text(doc.request_id)
    if not request_id or request_id == "" then return nil, "without a request_id" end
    if text(doc.payment_id) ~= body.general.payment_id then return nil, "for another payment_id" end
    if to_integer(doc.project_id) ~= self.project_id then return nil, "for another project_id" end
    return { status = "success", request_id = request_id, project_id = self.project_id, payment_id = text(doc.payment_id) }
end

-- A masked account number in a status answer ("SE35******1234") against
-- the request's: the characters it shows, before and after the mask, are
-- the request's.
local function same_account(shown, number)
    local head, tail = shown:match("^([^*]*)%*+([^*]*)$")
    if not head then return shown == number end
    return #number >= #head + #tail and number:sub(1, #head) == head and number:sub(#number - #tail + 1) == tail
end

-- Is the payment ecommpay holds under this payment_id one this request
-- could have made? Its first operation (the one the request would have
-- made) is of the call's type, for the request's amount and currency; the
-- customer id and the account number are the request's where both the
-- request and the answer carry them. -> that operation, or nil
local function made_by(call, body, event)
    local answer = event.extra.body
    local ops = field(answer, "operations")
    local first = type(ops) == "table" and ops[1] or field(answer, "operation")
    if type(first) ~= "table" or not call.operation_types[text(field(first, "type")) or ""] then return nil end
    local sum = field(first, "sum_initial") or field(answer, "payment", "sum")
    local payment = type(body.payment) == "table" and body.payment or {}
    if to_integer(field(sum, "amount")) ~= to_integer(payment.amount) or text(field(sum, "currency")) ~= payment.currency then
        return nil
    end
    local customer, want = text(field(answer, "customer", "id")), text(field(body, "customer", "id"))
    if customer and customer ~= "" and want and customer ~= want then return nil end
    local shown, number = text(field(answer, "account", "number")), text(field(body, "account", "number"))
    if shown and shown ~= "" and number and not same_account(shown, number) then return nil end
    return first
end

-- The pipeline resends an idempotent call after a lost answer; ecommpay
-- then refuses the payment_id it has just seen, although the first attempt
-- made the payment. So an error answer to a call whose earlier attempt may
-- have reached ecommpay (delivered_before; a 5xx from a proxy counts, it
-- cannot be told from ecommpay's) is checked with status: a payment this
-- request could have made (made_by) comes back as the call's result,
-- marked replayed (the payment's state in `payment`). When status fails,
-- nothing is known: the error says how to find out.
local function replay(self, call, body, err)
    if err.type ~= "provider" or not err.delivered_before or (err.http_status or 0) >= 500 then return nil end
    local payment_id = body.general.payment_id
    local event = self:status(payment_id)
    if not event then
        outcome_unknown(err, call, how_to_find_out(payment_id))
        return nil
    end
    local first = made_by(call, body, event)
    if not first then return nil end
    return {
        status = "success", request_id = text(field(first, "request_id")) or event.extra.request_id, project_id = self.project_id,
        payment_id = body.general.payment_id, replayed = true, payment = event,
    }
end

-- One Gate operation of the online-banking group.
local function operation(op)
    local call = CALLS[op]
    return function(self, method, req)
        check_method(op, method)
        local body = prepare(self, op, req)
        local ok, err = ecommpay.validate(op, method, body, self.checks)
        if not ok then return nil, err end
        if body.general.project_id ~= self.project_id then
            return nil, errors.new("validation", "ecommpay: general.project_id is not this client's project", {
                fields = { violation("general.project_id", "enum", "must be the client's project_id") } })
        end
        local doc, res_or_err = send(self, call, self.base_url .. "/v2/payment/online-banking/" .. method .. call.path, body)
        if not doc then
            local replayed = call.idempotent and replay(self, call, body, res_or_err)
            if replayed then return replayed end
            return nil, res_or_err
        end
        local result, problem = accepted(self, body, doc)
        if result then return result end
        return nil, outcome_unknown(malformed(res_or_err, call, problem), call,
            how_to_find_out(body.general.payment_id))
    end
end

--- gate:sale(method, request): a purchase (POST /v2/payment/online-banking/{method}/sale).
Gate.sale = operation("sale")
--- gate:sale_saved(method, request): a OneClick purchase with recurring_id.
Gate.sale_saved = operation("sale_saved")
--- gate:recurring(method, request): a regular payment or autopayment with recurring_id.
Gate.recurring = operation("recurring")
--- gate:account_verification(method, request): COF registration (amount 0).
Gate.account_verification = operation("account_verification")
--- gate:refund(method, request): a full refund, or a partial one with amount and currency.
Gate.refund = operation("refund")
--- gate:payout(method, request): a payout to account {number, clearinghouse, bank_code}.
Gate.payout = operation("payout")

--- gate:clarify(request) -> {status, request_id, project_id, payment_id}
-- | nil, err: the submission of additional payment information (POST
-- /v2/payment/clarification), the answer to a callback whose
-- event.extra.clarification lists what ecommpay asks for. request:
-- {general = {payment_id = ...}, customer = {first_name = ..., ...},
-- additional_data = {beneficiary = {...}}, ...}, in the objects of the
-- purchase request; general.project_id is filled in and general.signature
-- computed as for every Gate request. ecommpay waits for them for 30
-- minutes; the payment then goes on (the redirect callback) or is declined.
function Gate:clarify(request)
    local call = CALLS.clarification
    if type(request) ~= "table" then
        error("ecommpay.Client:clarify: bad argument #1 'request' (table expected, got " .. type(request) .. ")", 2)
    end
    local body = prepare(self, "clarify", request)
    local ok, err = ecommpay.validate("clarification", "trustly", body)
    if not ok then return nil, err end
    local doc, res_or_err = send(self, call, self.base_url .. call.path, body)
    if not doc then return nil, res_or_err end
    local result, problem = accepted(self, body, doc)
    if result then return result end
    return nil, outcome_unknown(malformed(res_or_err, call, problem), call, how_to_find_out(body.general.payment_id))
end

--- gate:status(payment_id) -> event | nil, err: the payment's state now
-- (POST /v2/payment/status), in the shape of a callback event. ecommpay
-- signs this answer as it signs callbacks: an unsigned answer, or one that
-- is not about this payment of this project, is a provider error; a wrong
-- signature a signature error.
function Gate:status(payment_id)
    local call = CALLS.status
    local body = { general = { project_id = self.project_id, payment_id = payment_id } }
    local ok, err = ecommpay.validate("status", nil, body)
    if not ok then return nil, err end
    local doc, res_or_err = send(self, call, self.base_url .. call.path, body, true)
    if not doc then return nil, res_or_err end
    local res = res_or_err
    local general = field(doc, "general")
    if type(doc.signature) ~= "string" and type(field(general, "signature")) ~= "string" then
        return nil, malformed(res, call, "without a signature")
    end
    local event, verr = verify(res.body, self.secret)
    if not event then return nil, verr end
    if text(field(doc, "payment", "id")) ~= payment_id or type(text(field(doc, "payment", "status"))) ~= "string" then
        return nil, malformed(res, call, "without the status of payment " .. ("%q"):format(payment_id))
    end
    if to_integer(field(doc, "project_id") or field(general, "project_id")) ~= self.project_id then
        return nil, malformed(res, call, "for another project_id")
    end
    event.extra.repeated = nil -- an answer, not a callback: it repeats nothing
    return event
end

--- gate:notification(raw_body [, headers]) -> event | nil, err: the
-- callback verified with the client's secret (ecommpay.verify_notification).
function Gate:notification(raw_body, headers)
    return ecommpay.verify_notification(raw_body, headers, { secret = self.secret })
end

--- gate:notification_response(event, received) -> {status, headers, body}:
-- what to answer ecommpay, which resends a callback until it gets a 200.
-- With an event and received true (recorded): 200 "OK", do not send it
-- again. With an event not recorded (received false): 500, send it again
-- later. Without an event from gate:notification (nil: a forged or broken
-- callback; an error; any other table): 400.
function Gate:notification_response(event, received)
    return provider.notification_response("ecommpay.Client:notification_response", "ecommpay", event, received)
end

--- gate:callback(raw_body) -> event | nil, err: the 0.1 name and form of
-- gate:notification (no second argument is read). Deprecated: removed in 0.3.
function Gate:callback(raw_body)
    return ecommpay.verify_notification(raw_body, nil, { secret = self.secret })
end

--- gate:callback_response(ok) -> {status, body, headers}: the 0.1 answer,
-- 200 "OK" when ok, else 400. Deprecated (removed in 0.3): use
-- gate:notification_response(event, received).
function Gate:callback_response(ok)
    return provider.answer(ok and 200 or 400, ok and "OK" or "ERROR")
end

--- gate:payment_page(params) -> url | nil, err: a signed Payment Page URL
-- for this project, checked first (project_id filled in; with
-- force_payment_method = "online-banking-trustly" Trustly's rules apply).
function Gate:payment_page(params)
    if type(params) ~= "table" then
        error("ecommpay.Client:payment_page: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local p = copy(params, "payment_page")
    if p.project_id == nil then p.project_id = self.project_id end
    if p.merchant_callback_url == nil and self.callback_url then p.merchant_callback_url = self.callback_url end
    local trustly = p.force_payment_method == "online-banking-trustly"
    local check = p
    if type(p.payment_extra_param) == "string" then -- already JSON: check what it says
        check = {}
        for k, v in pairs(p) do check[k] = v end
        check.payment_extra_param = core.json_decode(p.payment_extra_param)
        if type(check.payment_extra_param) ~= "table" then
            return nil, errors.new("validation", "ecommpay: Payment Page is invalid (1 problem)", {
                fields = { violation("payment_extra_param", "type", "must be an object or its JSON text") } })
        end
    end
    local ok, err = ecommpay.validate("page", trustly and "trustly" or nil, check, self.checks)
    if not ok then return nil, err end
    return ecommpay.payment_page_url(p, self.secret, self.payment_page_base)
end

provider.lifetime(Gate, "ecommpay")

return ecommpay
