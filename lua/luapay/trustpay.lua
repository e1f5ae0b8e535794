--- luapay.trustpay: TrustPay's Merchant API (mapi5: bank transfers and cards
-- in a pop-up or redirect, background calls, notifications), the client and
-- its constructor. The client's API Banking methods (OAuth, accounts,
-- transaction history, statements, pain.001 orders, refunds) live in
-- luapay.trustpay.banking, the pain.001 document in
-- luapay.trustpay.payment_order; this module is the one public table for
-- all three. Field names are TrustPay's own, as in its documentation.
--
--   local trustpay = require "luapay.trustpay"
--   trustpay.signature(secret, values)          --> uppercase hex HMAC-SHA256 of values joined by "/"
--   trustpay.message(kind, fields)              --> the values in signing order for a message kind
--
--   local tp = trustpay.new{ account_id = "4107111111", secret = "...",
--       banking = { username = "...", password = "..." } }
--   tp:card_payment_url{ Amount = 150, Currency = "EUR", Reference = "ORD-42", CardHolder = "...", ... }
--   local event, err = tp:notification(ngx.var.args)      --> event | nil, err
--   local answer = tp:notification_response(event, event ~= nil and recorded) --> {status, headers, body}
--   tp:refund{ Amount = 150, Currency = "EUR", Reference = "ORD-42-R1", PaymentRequestId = "846487" }
--   for tx, err in tp:transactions{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-31" } do ... end
--
-- Amounts at this API are integers in minor units plus a Currency; on the
-- wire TrustPay always writes two decimals ("1.50").
local cjson = require "cjson.safe"
local core = require "luapay.core"
local errors = require "luapay.errors"
local http = require "luapay.http"
local provider = require "luapay.provider"
local make_event = provider.make_event
local api_banking = require "luapay.trustpay.banking"
local payment_order = require "luapay.trustpay.payment_order"
local tp_fields = require "luapay.trustpay.fields"

local copy, is_integer, int_string = tp_fields.copy, tp_fields.is_integer, tp_fields.int_string
local violation, invalid = tp_fields.violation, tp_fields.invalid
local str, NUMERIC10, normalize = tp_fields.str, tp_fields.NUMERIC10, tp_fields.normalize

local trustpay = {}

trustpay.DEFAULT_BASE_URL = "https://amapi.trustpay.eu"
trustpay.DEFAULT_BANKING_URL = "https://api.trustpay.eu"

-- Defined with the code that uses them, public here.
trustpay.amount, trustpay.minor = tp_fields.amount, tp_fields.minor
trustpay.order_states = api_banking.order_states
trustpay.xml_escape = payment_order.xml_escape
trustpay.order_xml, trustpay.orders_xml = payment_order.order_xml, payment_order.orders_xml

---------------------------------------------------------------------------
-- Signing: one line per message kind
-- @section signing
---------------------------------------------------------------------------

-- The signed fields of each message, in signing order. A field that is
-- absent (nil or "") is skipped: no empty slot between the separators.
-- Sources: the seed's "Signature" rows (purchase, card purchase, card on
-- file purchase and preauthorization, subsequent recurring, capture,
-- refund, both notifications); the kinds whose rows say "Parameters are the
-- same as for standard Purchase" (card on file register, recurring initial,
-- recurring initial preauthorization, preauthorization) take the card
-- purchase list.
local BASE = "AccountId Amount Currency Reference PaymentType"
local SCA = "BillingCity BillingCountry BillingPostcode BillingStreet CardHolder Email"
trustpay.signed_fields = {
    wire_purchase                      = BASE,
    card_purchase                      = BASE .. " " .. SCA,
    refund                             = BASE .. " PaymentRequestId",
    card_on_file_register              = BASE .. " " .. SCA,
    card_on_file_purchase              = BASE .. " " .. SCA .. " CardId",
    card_on_file_preauthorization      = BASE .. " " .. SCA .. " CardId",
    recurring_initial                  = BASE .. " " .. SCA,
    recurring_subsequent               = BASE .. " " .. SCA .. " PaymentRequestId",
    recurring_initial_preauthorization = BASE .. " " .. SCA,
    preauthorization                   = BASE .. " " .. SCA,
    capture                            = BASE .. " PaymentRequestId",
    wire_notification                  = "AccountId Amount Currency Type ResultCode CounterAccount CounterAccountName"
                                         .. " OrderId PaymentId Reference RefuseReason",
    card_notification                  = "AccountId Amount Currency Reference Type ResultCode PaymentRequestId"
                                         .. " CardId CardMask CardExpiration AuthNumber",
}
for kind, list in pairs(trustpay.signed_fields) do
    local names = {}
    for name in list:gmatch("%S+") do names[#names + 1] = name end
    trustpay.signed_fields[kind] = names
end

--- The fields the one-pass C paths (core.trustpay_url_plan,
-- core.trustpay_notification_plan) read for what they are: the C core
-- knows no provider's field names, so they are handed over as data.
trustpay.FIELD_ROLES = { account = "AccountId", payment_type = "PaymentType", signature = "Signature", amount = "Amount",
    currency = "Currency", type = "Type", result = "ResultCode" }

--- What core.trustpay_notification takes: a notification's Type (CRDT:
-- money in, DBIT: out), and its method: the first of these fields it
-- holds, and the names it signs.
-- The Lua check (checked_notification) reads the same two lists.
local NOTIFICATION_TYPES = { "CRDT", "DBIT" }
local NOTIFICATION_METHODS = {
    { field = "PaymentId", name = "wire", signed = trustpay.signed_fields.wire_notification },
    { field = "PaymentRequestId", name = "card", signed = trustpay.signed_fields.card_notification } }
local NOTIFICATION_PLAN = core.trustpay_notification_plan(trustpay.FIELD_ROLES, NOTIFICATION_TYPES,
    NOTIFICATION_METHODS)
trustpay.NOTIFICATION_PLAN = NOTIFICATION_PLAN

-- PaymentType of each request kind (seed: "Payment type" and each section).
trustpay.payment_type_of = {
    wire_purchase = 0, card_purchase = 0, card_on_file_register = 1, card_on_file_purchase = 2,
    recurring_initial = 3, recurring_subsequent = 4, preauthorization = 5, capture = 6,
    refund = 8, card_on_file_preauthorization = 9, recurring_initial_preauthorization = 12,
}

-- Fields a message cannot be signed without.
local MESSAGE_REQUIRED = {
    wire_notification = { "AccountId", "Amount", "Currency", "Type", "ResultCode" },
    card_notification = { "AccountId", "Amount", "Currency", "Type", "ResultCode" },
}
local REQUEST_REQUIRED = { "AccountId", "Amount", "Currency", "Reference", "PaymentType" }

---------------------------------------------------------------------------
-- Code lists from the seed
-- @section code_lists
---------------------------------------------------------------------------

local function code_list(rows)
    local t = {}
    for _, r in ipairs(rows) do t[r[1]] = { name = r[2], description = r[3] } end
    return t
end

-- One code a line, its text as TrustPay's documentation words it (so it
-- can be compared line by line), whatever the line's length.
-- luacheck: push no max line length
trustpay.result_codes = code_list{
    { 0, "Success", "Payment was successfully processed. When received in notification, funds have been credited to the merchant account - merchant can provide goods or services without delay" },
    { 1, "Pending", "Payment may have been payed, but the real result is not known yet (for example client made offline payment or TrustPay still waits for notification from bank)." },
    { 2, "Announced", "TrustPay has been notified that the client placed a payment order or has made payment, but further confirmation from 3rd party is needed. Another notification (with result code 0 - success) will be sent when TrustPay receives and processes payment from 3rd party. Funds have not been credited to the merchant account and there is no guarantee they will be." },
    { 3, "Authorized", "Payment was successfully authorized. Another notification (with result code 0 - success) will be sent when TrustPay receives and processes payment from 3rd party. For card payments, no further notification will be sent and funds will be credited to the merchant's account in a bulk payment on the next settlement day. Merchant can provide goods or services without delay." },
    { 4, "Processing", "TrustPay has received the payment, but it must be internally processed before it is settled on the merchant's account. When the payment is successfully processed, another notification (with the result code 0 - success) will be sent. Funds will be credited to merchant's account at a later date." },
    { 5, "AuthorizedOnly", "Card payment was successfully authorized, but not captured. Subsequent MAPI calls are required to capture the payment." },
    { 1001, "Invalid request", "Some of the parameters in request are missing or have invalid format." },
    { 1002, "Unknown account", "Account with specified ID was not found. Please check that you are using correct AID for live environment." },
    { 1003, "Merchant account disabled", "Merchant account has been disabled." },
    { 1004, "Invalid signature", "Verification of request signature has failed." },
    { 1005, "User cancel", "Customer has cancelled the payment." },
    { 1006, "Invalid authentication", "Request was not properly authenticated." },
    { 1007, "Insufficient balance", "Requested transaction amount is greater than disposable balance." },
    { 1008, "Service not allowed", "Service cannot be used or permission to use given service has not been granted. If you receive this code, please contact TrustPay for more information." },
    { 1009, "Processing ID used", "Specified processing ID was already used. Please generate a new PID using Setup payment service call." },
    { 1010, "Transaction not found", "Transaction with specified ID was not found." },
    { 1011, "Unsupported transaction", "The requested action is not supported for the transaction." },
    { 1014, "Rejected transaction", "Transaction was rejected by issuer or gateway." },
    { 1015, "Declined by risk", "Transaction was rejected by risk department." },
    { 1100, "General Error", "Internal error has occurred. Please contact TrustPay to resolve this issue." },
    { 1101, "Unsupported currency conversion", "Currency conversion for requested currencies is not supported." },
}
-- luacheck: pop

trustpay.acquirer_codes = {
    ["100.100.303"] = "Rejected - card expired",
    ["100.100.600"] = "Rejected - invalid CVV",
    ["100.100.601"] = "Rejected - invalid CVV",
    ["100.100.700"] = "Rejected - invalid card number",
    ["100.380.401"] = "Rejected - failed 3DS authentication",
    ["100.380.501"] = "Rejected - failed 3DS authentication",
    ["800.100.151"] = "Rejected - invalid card number",
    ["800.100.153"] = "Rejected - invalid CVV",
    ["800.100.155"] = "Rejected - insufficient funds",
    ["800.100.157"] = "Rejected - invalid expiry date",
    ["800.100.161"] = "Rejected - too many invalid tries",
    ["800.100.162"] = "Rejected - card limit exceeded",
    ["800.100.163"] = "Rejected - card limit exceeded",
    ["800.120.101"] = "Rejected - card limit exceeded",
    ["800.120.200"] = "Rejected - card limit exceeded",
    ["800.120.201"] = "Rejected - card limit exceeded",
}

-- The seed's "Payment type" list, plus 12 from its "Recurring Initial
-- Preauthorization" section.
trustpay.payment_types = {
    [0] = "Purchase",
    [1] = "Card on file - Register",
    [2] = "Card on file - Purchase",
    [3] = "Recurring - Initial payment",
    [4] = "Recurring - Subsequent payment",
    [5] = "Preauthorization",
    [6] = "Capture",
    [8] = "Refund",
    [9] = "Card on file - Preauthorization",
    [12] = "Recurring - Initial preauthorization",
}


local WIRE_LANGUAGES = { "en", "sk", "cs" }
--- The 002 seed's "Supported currencies" and "Supported countries" of
-- instant bank transfers (the wire methods).
trustpay.WIRE_CURRENCIES = { "CZK", "EUR" }
trustpay.WIRE_COUNTRIES = { "CZ", "SK" }
local CARD_LANGUAGES = { "en", "sk", "cs", "bg", "hr", "da", "nl", "et", "fi", "fr", "de", "el", "hu", "it",
    "ja", "lv", "lt", "nb", "pl", "pt", "ro", "ru", "sl", "es", "sv", "uk" }

---------------------------------------------------------------------------
-- Messages and signatures
-- @section messages
---------------------------------------------------------------------------

-- A value as it appears on the wire, or nil, reason.
local function wire_value(name, v, currency)
    local t = type(v)
    if t == "string" then
        if name == "Amount" and not v:match("^%-?%d+%.%d%d$") then
            return nil, "format", "must be minor units (an integer) or a decimal with two places"
        end
        return v
    end
    if t == "number" then
        if name == "Amount" then
            if not is_integer(v) then return nil, "type", "must be an integer amount in minor units, got a float" end
            if type(currency) ~= "string" then return nil, "required", "needs Currency to be converted" end
            local s, err = trustpay.amount(v, currency)
            if not s then return nil, "range", err end
            return s
        end
        if not is_integer(v) then return nil, "type", "must be an integer or a string, got a float" end
        return int_string(v)
    end
    if t == "boolean" then return v and "True" or "False" end
    return nil, "type", "must be a string or a number, got " .. t
end

-- The values of a message in signing order. A value may hold "/": TrustPay
-- joins the values with "/" without escaping and signs whatever it is
-- given (002 seed, every Signature row), so luapay signs it too.
local function build(kind, fields)
    local names = trustpay.signed_fields[kind]
    if not names then
        error(("trustpay.message: bad argument #1 'kind' (unknown message kind '%s')"):format(tostring(kind)), 3)
    end
    if type(fields) ~= "table" then error("trustpay.message: bad argument #2 'fields' (table expected, got " .. type(fields) .. ")", 3) end
    local problems, values = {}, {}
    local required = MESSAGE_REQUIRED[kind] or REQUEST_REQUIRED
    local need = {}
    for _, n in ipairs(required) do need[n] = true end
    local expected_type = trustpay.payment_type_of[kind]
    for _, name in ipairs(names) do
        local v = fields[name]
        if v == nil and name == "PaymentType" and expected_type then v = expected_type end
        if v == nil or v == "" then
            if need[name] then problems[#problems + 1] = violation(name, "required", "is required") end
        else
            local s, code, why = wire_value(name, v, fields.Currency)
            if not s then
                problems[#problems + 1] = violation(name, code, why)
            else
                if name == "PaymentType" and expected_type and s ~= tostring(expected_type) then
                    problems[#problems + 1] = violation(name, "enum", ("must be %d for %s"):format(expected_type, kind))
                end
                values[#values + 1] = s
            end
        end
    end
    if #problems > 0 then return nil, problems end
    return values
end

--- trustpay.message(kind, fields) -> values | nil, err. The values of the
-- message kind in signing order (see trustpay.signed_fields), as strings:
-- Amount from minor units (with Currency) or a two-decimal string,
-- PaymentType filled in for request kinds. Absent optional fields are
-- skipped; a value may contain "/" (see trustpay.warnings).
function trustpay.message(kind, fields)
    local values, problems = build(kind, fields)
    if not values then return invalid("trustpay." .. kind, problems) end
    return values
end

--- trustpay.signature(secret, values) -> uppercase hex | nil, err.
-- HMAC-SHA256 (computed in the C core) over the values joined by "/", for
-- any values, "/" included, as TrustPay computes it; only a value that is
-- not a string (or an integer) is an error.
function trustpay.signature(secret, values)
    if type(secret) ~= "string" or secret == "" then
        error("trustpay.signature: bad argument #1 'secret' (non-empty string expected, got " .. type(secret) .. ")", 2)
    end
    if type(values) ~= "table" then
        error("trustpay.signature: bad argument #2 'values' (table expected, got " .. type(values) .. ")", 2)
    end
    local parts, problems = {}, {}
    for i, v in ipairs(values) do
        local s = type(v) == "number" and is_integer(v) and int_string(v) or v
        if type(s) ~= "string" then
            problems[#problems + 1] = violation(("values[%d]"):format(i), "type", "must be a string")
        end
        parts[i] = s
    end
    if #problems > 0 then return invalid("trustpay.signature", problems) end
    return core.hmac("sha256", secret, table.concat(parts, "/"), "HEX")
end

--- trustpay.sign(secret, kind, fields) -> signature, values | nil, err.
function trustpay.sign(secret, kind, fields)
    local values, err = trustpay.message(kind, fields)
    if not values then return nil, err end
    return trustpay.signature(secret, values), values
end

-- Verifies what TrustPay signed: values may hold "/" (TrustPay's own
-- ambiguity, not the merchant's). Absent fields are skipped; if that does
-- not match and some fields were present but empty, those are tried as
-- empty slots (one public implementation joins '' for them).
local function verify(secret, kind, fields, signature)
    if type(signature) ~= "string" or not signature:match("^%x+$") or #signature ~= 64 then
        return nil, errors.new("signature", "TrustPay " .. kind .. ": Signature is missing or not 64 hex digits")
    end
    local values, problems = build(kind, fields)
    if not values then return invalid("TrustPay " .. kind, problems) end
    local got = signature:upper()
    if core.equal(core.hmac("sha256", secret, table.concat(values, "/"), "HEX"), got) then return true end
    local empties = false
    for _, name in ipairs(trustpay.signed_fields[kind]) do
        if fields[name] == "" then empties = true end
    end
    if empties then
        local slots = {}
        for _, name in ipairs(trustpay.signed_fields[kind]) do
            local v = fields[name]
            if v == "" then slots[#slots + 1] = ""
            elseif v ~= nil then slots[#slots + 1] = (wire_value(name, v, fields.Currency)) end
        end
        if core.equal(core.hmac("sha256", secret, table.concat(slots, "/"), "HEX"), got) then return true end
    end
    return nil, errors.new("signature",
        "TrustPay " .. kind .. ": the signature does not match (wrong secret, or the parameters were changed)")
end

--- trustpay.verify(secret, kind, fields, signature) -> true | nil, err.
function trustpay.verify(secret, kind, fields, signature)
    if type(secret) ~= "string" or secret == "" then
        error("trustpay.verify: bad argument #1 'secret' (non-empty string expected, got " .. type(secret) .. ")", 2)
    end
    if not trustpay.signed_fields[kind] then
        error(("trustpay.verify: bad argument #2 'kind' (unknown message kind '%s')"):format(tostring(kind)), 2)
    end
    return verify(secret, kind, fields, signature)
end

---------------------------------------------------------------------------
-- Query strings
-- @section query_strings
---------------------------------------------------------------------------

local function twice(what, name)
    return invalid(what, { violation(name, "forbidden", "appears twice with different values") })
end

local function query_table(s, what)
    s = s:match("^[^?]*%?(.*)$") or s
    s = s:gsub("#.*$", "")
    local t, name = http.decode_query(s)
    if not t then return twice(what, name) end
    return t
end

--- trustpay.parse_query(s) -> table | nil, err: a query string (or a whole
-- URL) as name -> value; "+" is a space, %XX a byte (http.decode_query).
-- A name repeated with another value is a "validation" error: which value
-- counts would be a guess, and the signature does not say.
function trustpay.parse_query(s)
    if type(s) ~= "string" then error("trustpay.parse_query: bad argument #1 's' (string expected, got " .. type(s) .. ")", 2) end
    return query_table(s, "trustpay.parse_query")
end

-- Parameters given as a query string or a table (ngx.req.get_uri_args()),
-- as strings.
local function read_params(params, what)
    if type(params) == "string" then return query_table(params, what) end
    if type(params) ~= "table" then
        error(("trustpay.Client:%s: bad argument #1 'params' (a query string or a table expected, got %s)")
            :format(what, type(params)), 3)
    end
    local t, problems = {}, {}
    for k, v in pairs(params) do
        if type(k) == "string" then
            if type(v) == "table" then -- a repeated argument: one value, or refused as http.decode_query does
                for i = 2, #v do
                    if v[i] ~= v[1] then return twice(what, k) end
                end
                v = v[1]
            end
            if getmetatable(v) == core.number_mt then v = tostring(v) end -- a JSON number's own text
            if k == "Amount" and type(v) == "number" then v = ("%.2f"):format(v) end -- "exactly 2 decimal places"
            if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
                v = ("%.0f"):format(v) -- also 4107111111.0, as lua-cjson decodes a JSON integer in Lua 5.4
            end
            if type(v) == "string" then
                t[k] = v
            elseif v ~= nil then
                problems[#problems + 1] = violation(k, "type", "must be a string")
            end
        end
    end
    if #problems > 0 then return invalid(what, problems) end
    return t
end

---------------------------------------------------------------------------
-- Result codes -> the common event's status
-- @section result_codes
---------------------------------------------------------------------------

local function result_of(code)
    local r = trustpay.result_codes[code]
    if r then return { name = r.name, description = r.description } end
    return { name = "Unknown", description = "A result code the TrustPay documentation does not list." }
end

--- trustpay.status(result_code, method, type) -> the common status.
-- method is "wire" or "card", type "CRDT" or "DBIT". For cards, 3
-- (Authorized) also means captured (seed: "Successful notifications are
-- sent with result code 3"), so it is succeeded; for wires a 0 follows.
function trustpay.status(code, method, typ)
    code = tonumber(code)
    if code == nil then return "failed" end
    if code == 0 or (code == 3 and method == "card") then
        return typ == "DBIT" and "refunded" or "succeeded"
    end
    if code == 3 or code == 5 then return "authorized" end
    if code == 1 or code == 2 or code == 4 then return "pending" end
    if code == 1005 then return "canceled" end
    if code >= 1000 then return "failed" end
    return "pending"
end

---------------------------------------------------------------------------
-- Schemas (compiled once)
-- @section schemas
---------------------------------------------------------------------------

local function browser_schema(opts)
    local f = {
        Amount = { type = "amount", required = true, min = opts.zero and 0 or 1 },
        Currency = { type = "currency", required = true, enum = opts.currencies },
        Reference = str(35, { required = true, forbid = "<>" }),
        Url = { type = "url", max_len = 256 },
        ReturnUrl = { type = "url", max_len = 256 },
        CancelUrl = { type = "url", max_len = 256 },
        ErrorUrl = { type = "url", max_len = 256 },
        NotificationUrl = { type = "url", max_len = 256 },
        Localization = { type = "language", enum = opts.languages },
        -- 002 seed, "Supported countries": CZ and SK for instant bank transfers
        Country = opts.card and { type = "country" } or { type = "enum", values = trustpay.WIRE_COUNTRIES },
        Description = str(140),
        Email = { type = "email", max_len = 254, required = opts.card },
        IsRedirect = { type = "enum", values = { "True", "False" } },
    }
    if opts.card then
        -- 002 seed, "API update 2020 - SCA": Varchar(100) (the Cards table says 3-140; both hold within 100)
        f.CardHolder = str(100, { required = true, min_len = 3 })
        f.BillingStreet = str(100, { required = true })
        f.BillingCity = str(80, { required = true })
        f.BillingPostcode = str(30, { required = true })
        f.BillingCountry = { type = "country", required = true }
    end
    if opts.card_id then f.CardId = str(64, { required = opts.card_id == "required" }) end
    return core.schema{ type = "object", additional = false, fields = f }
end

-- 002 seed, Refund, Capture, subsequent recurring: "Parameters are the same
-- as for standard Purchase", plus PaymentRequestId; none of the purchase's
-- SCA fields is required for a background call.
local function background_schema(wire)
    local f = {
        Amount = { type = "amount", required = true, min = 1 },
        Currency = { type = "currency", required = true, enum = wire and trustpay.WIRE_CURRENCIES or nil },
        Reference = str(35, { required = true, forbid = "<>" }),
        PaymentRequestId = str(10, { required = true, pattern = NUMERIC10 }),
        Url = { type = "url", max_len = 256 },
        ReturnUrl = { type = "url", max_len = 256 },
        CancelUrl = { type = "url", max_len = 256 },
        ErrorUrl = { type = "url", max_len = 256 },
        NotificationUrl = { type = "url", max_len = 256 },
        Localization = { type = "language", enum = wire and WIRE_LANGUAGES or CARD_LANGUAGES },
        Country = wire and { type = "enum", values = trustpay.WIRE_COUNTRIES } or { type = "country" },
        Description = str(140),
        Email = { type = "email", max_len = 254 },
        IsRedirect = { type = "enum", values = { "True", "False" } },
    }
    if not wire then
        f.CardHolder = str(100, { min_len = 3 })
        f.BillingStreet = str(100)
        f.BillingCity = str(80)
        f.BillingPostcode = str(30)
        f.BillingCountry = { type = "country" }
    end
    return core.schema{ type = "object", additional = false, fields = f }
end

local CARD_PATH, WIRE_PATH = "/mapi5/Card/PayPopup", "/mapi5/wire/paypopup"

-- The browser URL builders: method name -> message kind, endpoint, schema.
local URLS = {
    wire_payment_url = { kind = "wire_purchase", path = WIRE_PATH,
        schema = browser_schema{ currencies = trustpay.WIRE_CURRENCIES, languages = WIRE_LANGUAGES } },
    card_payment_url = { kind = "card_purchase", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES } },
    card_on_file_register_url = { kind = "card_on_file_register", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES } },
    card_on_file_purchase_url = { kind = "card_on_file_purchase", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES, card_id = "optional" } },
    card_on_file_preauthorization_url = { kind = "card_on_file_preauthorization", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES, card_id = "required" } },
    recurring_initial_url = { kind = "recurring_initial", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES } },
    recurring_initial_preauthorization_url = { kind = "recurring_initial_preauthorization", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES, zero = true } },
    preauthorization_url = { kind = "preauthorization", path = CARD_PATH,
        schema = browser_schema{ card = true, languages = CARD_LANGUAGES } },
}

-- The background calls, answered with a result code. Each is a GET, and
-- none is idempotent: TrustPay documents no key it would deduplicate them by
-- (Reference is the merchant's own, PaymentRequestId names the original
-- payment), so a resent refund refunds again, a resent capture or recurring
-- charge takes money again. They are never resent once they may have
-- arrived, whatever HTTP says of GET. `find_out` is how to learn the outcome
-- of one that got no clear answer.
local NOTIFIED = "wait for TrustPay's notification for this Reference (and PaymentRequestId) at your NotificationUrl"
local CALLS = {
    refund = { kind = "refund", path = CARD_PATH, schema = background_schema(), idempotent = false,
        find_out = NOTIFIED .. " (a DBIT notification), or look the refund up in TrustPay's merchant portal" },
    wire_refund = { kind = "refund", path = WIRE_PATH, schema = background_schema(true), idempotent = false,
        find_out = NOTIFIED .. " (a DBIT notification), or look it up in the account's history (client:transactions)" },
    capture = { kind = "capture", path = CARD_PATH, schema = background_schema(), idempotent = false,
        find_out = NOTIFIED .. " (ResultCode 3 for a capture), or look it up in TrustPay's merchant portal" },
    recurring_charge = { kind = "recurring_subsequent", path = CARD_PATH, schema = background_schema(), idempotent = false,
        find_out = NOTIFIED .. " (ResultCode 3 for a charge), or look it up in TrustPay's merchant portal" },
}

-- The schema's violations. What TrustPay accepts is not refused here: see
-- trustpay.warnings for what it accepts but may garble.
local function check_request(spec, params, what)
    local ok, violations = spec.schema:validate(params)
    if not ok then return invalid(what, violations) end
    return true
end

-- 002 seed, footnotes of the Cards and SCA tables: "Only alphanumeric
-- characters are allowed. Other characters may be lost or changed" (Reference,
-- BillingPostcode); "Only alphanumeric and space characters ... may not be
-- displayed correctly" (Description).
local ALNUM_NOTES = { Reference = "^%w*$", BillingPostcode = "^%w*$", Description = "^[%w ]*$" }

--- trustpay.warnings(method, params) -> list of {path, message}, empty when
-- none. What TrustPay accepts but the 002 seed warns about, for a URL
-- builder's or background call's params (method: "card_payment_url",
-- "refund", ...): a signed value holding "/" (the values are joined with "/"
-- unescaped, so another split gives the same signature), and the
-- alphanumeric-only notes. The builders send such values as they are.
function trustpay.warnings(method, params)
    local spec = URLS[method] or CALLS[method]
    if not spec then
        error(("trustpay.warnings: bad argument #1 'method' (unknown method '%s')"):format(tostring(method)), 2)
    end
    if type(params) ~= "table" then
        error("trustpay.warnings: bad argument #2 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local out = {}
    for _, name in ipairs(trustpay.signed_fields[spec.kind]) do
        local v = params[name]
        if type(v) == "string" and v:find("/", 1, true) then
            out[#out + 1] = { path = name, message = "contains '/', TrustPay's separator of the signed values" }
        end
    end
    for _, name in ipairs({ "BillingPostcode", "Description", "Reference" }) do
        local v = params[name]
        if type(v) == "string" and not v:find(ALNUM_NOTES[name]) then
            out[#out + 1] = { path = name, message = name == "Description"
                and "has characters other than letters, digits and spaces: they may not be displayed correctly"
                or "has characters other than letters and digits: they may be lost or changed during payment" }
        end
    end
    return out
end

---------------------------------------------------------------------------
-- Notifications
-- @section notifications
---------------------------------------------------------------------------

-- The notification's raw text and its parameters | nil, err. A table is
-- the deprecated form (until 0.3): its raw text is the query rebuilt.
local function notification_params(raw_body)
    if type(raw_body) == "string" and raw_body:find("^%s*{") then
        -- 002 seed, "Payment E-mail notification example": the same
        -- parameters as a JSON object, numbers as numbers ("Amount":6.00)
        -- read with their own text.
        local doc = core.json_decode(raw_body, { numbers = "lexeme" })
        if type(doc) ~= "table" then
            return raw_body, invalid("TrustPay notification", { violation("raw_body", "format", "is not a JSON object") })
        end
        local p, err = read_params(doc, "TrustPay notification")
        return raw_body, p, err
    end
    if type(raw_body) == "string" then
        local p, err = query_table(raw_body, "TrustPay notification")
        return raw_body, p, err
    end
    local p, err = read_params(raw_body, "TrustPay notification")
    return p and http.encode_query(p), p, err
end

-- Raises "who: bad argument #3 'keys' (why)" at the caller of
-- verify_notification. A function of its own, not a closure made on each
-- call: creating one aborts LuaJIT's trace (NYI FNEW) of every notification.
local function bad_keys(who, why)
    error(("%s: bad argument #3 'keys' (%s)"):format(who, why), 4)
end

-- The keys as verify_notification takes them: {secret, account_id} -> the
-- secret and the account id as digits. Raises naming who, at the caller of
-- verify_notification.
local function notification_keys(who, keys)
    if type(keys) ~= "table" then bad_keys(who, "table {secret, account_id} expected, got " .. type(keys)) end
    if type(keys.secret) ~= "string" or keys.secret == "" then bad_keys(who, "keys.secret must be a non-empty string") end
    local account = keys.account_id
    if is_integer(account) and account >= 0 then account = int_string(account) end
    if type(account) ~= "string" or not account:match("^%d+$") then
        bad_keys(who, "keys.account_id must be TrustPay's account or project ID")
    end
    return keys.secret, account
end

-- A notification's parameters checked as C does it in one pass
-- (core.trustpay_notification) -> p, method, code, amount | nil, err.
local function checked_notification(raw_body, secret, account_id)
    local raw, p, perr = notification_params(raw_body)
    if not p then return nil, perr end
    local method
    for _, m in ipairs(NOTIFICATION_METHODS) do
        if p[m.field] ~= nil then
            method = m.name
            break
        end
    end
    if not method then
        return invalid("TrustPay notification", { violation("PaymentId", "required",
            "is required (PaymentId for a bank transfer, PaymentRequestId for a card payment)") })
    end
    local ok, err = verify(secret, method .. "_notification", p, p.Signature)
    if not ok then return nil, err end
    local problems = {}
    if p.AccountId ~= account_id then
        problems[#problems + 1] = violation("AccountId", "enum", "is not the account_id it is verified for")
    end
    local typed = false
    for _, t in ipairs(NOTIFICATION_TYPES) do typed = typed or p.Type == t end
    if not typed then
        problems[#problems + 1] = violation("Type", "enum", "must be " .. table.concat(NOTIFICATION_TYPES, " or "))
    end
    local code = p.ResultCode and p.ResultCode:match("^%d+$") and tonumber(p.ResultCode)
    if not code then problems[#problems + 1] = violation("ResultCode", "format", "must be a number") end
    local amount, why = trustpay.minor(p.Amount, p.Currency)
    if not amount then problems[#problems + 1] = violation("Amount", "format", why) end
    if #problems > 0 then return invalid("TrustPay notification", problems) end
    return p, method, code, amount, raw
end

-- Misuse of a notification's arguments raises at level 3: the caller of
-- the public function that calls this.
local function check_notification_args(who, raw_body, headers)
    if type(raw_body) ~= "string" and type(raw_body) ~= "table" then
        error(("%s: bad argument #1 'raw_body' (string expected, got %s)"):format(who, type(raw_body)), 3)
    end
    if headers ~= nil and type(headers) ~= "table" then
        error(("%s: bad argument #2 'headers' (table or nil expected, got %s)"):format(who, type(headers)), 3)
    end
end

-- The verified event of a notification, for who: the public function,
-- which tail-calls it (so level 2 is its caller).
local function notification(who, raw_body, headers, secret, account_id)
    check_notification_args(who, raw_body, headers)
    -- The common case (a query string that verifies) in one pass in C;
    -- nil for anything it leaves to checked_notification, which words the error.
    local raw, p, method, code, amount = raw_body, nil, nil, nil, nil
    if type(raw_body) == "string" then
        p, method, code, amount = core.trustpay_notification(raw_body, secret, account_id, NOTIFICATION_PLAN)
    end
    if not p then
        p, method, code, amount, raw = checked_notification(raw_body, secret, account_id)
        if not p then return nil, method end
    end
    local card
    if method == "card" and (p.CardId or p.CardMask or p.CardExpiration or p.AuthNumber) then
        card = { CardId = p.CardId, CardMask = p.CardMask, CardExpiration = p.CardExpiration, AuthNumber = p.AuthNumber }
    end
    local typ = p.Type
    -- CRDT: money in (a payment); DBIT: money out of the account for this
    -- Reference, which the Merchant API sends for a refund.
    return make_event("trustpay", typ == "DBIT" and "refund" or "payment", trustpay.status(code, method, typ),
        p.Reference, method == "wire" and p.PaymentId or p.PaymentRequestId, amount, p.Currency, raw,
        { method = method, type = typ, result_code = code, result = result_of(code), card = card, params = p })
end

--- trustpay.verify_notification(raw_body, headers, keys) -> event | nil,
-- err. Pure (no I/O). raw_body: the query string TrustPay called the
-- NotificationUrl with (`ngx.var.args`; a GET), or the whole URL;
-- headers: the request's (unused: TrustPay signs the parameters), or nil;
-- keys: {secret = ..., account_id = ...}. Verifies the signature (the wire
-- or card variant, absent optional fields skipped) and that the
-- notification is for account_id. The event: kind "payment" (Type CRDT) or
-- "refund" (DBIT), status from the result code, merchant_ref = Reference,
-- provider_ref = PaymentId (wire) or PaymentRequestId (card), raw =
-- raw_body as given, and extra = {method = "wire"|"card", type =
-- "CRDT"|"DBIT", result_code, result = {name, description}, card =
-- {CardId, CardMask, CardExpiration, AuthNumber} (a card's, when sent),
-- params (every parameter, as strings)}.
function trustpay.verify_notification(raw_body, headers, keys)
    local who = "trustpay.verify_notification"
    check_notification_args(who, raw_body, headers)
    local secret, account_id = notification_keys(who, keys)
    return notification(who, raw_body, headers, secret, account_id)
end

---------------------------------------------------------------------------
-- The client
-- @section the_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout; so is the
-- API Banking OAuth token the client fetches.
trustpay.SECRET_OPTIONS = { "secret", "banking.password" }

local Client = errors.secret_fields({}, { "secret", "token", "shared_token_used" })
trustpay.Client = Client
Client.__tostring = errors.describe("luapay.trustpay client", { "$environment", "account $account_id" })
-- API Banking's methods are the client's too.
for name, method in pairs(api_banking.methods) do Client[name] = method end

-- The client's API Banking part {username, password, base_url}; the
-- password is sent as HTTP Basic with the username.
local Banking = errors.secret_fields({}, { "password" }, { password = "username" })

-- Raises at trustpay.new's caller (level: from a helper of new, 5).
local function option_error(name, message, level) provider.option_error("trustpay.new", name, message, level or 4) end

local function check_url(v, name)
    if v ~= nil and (type(v) ~= "string" or not v:match("^https?://[^/]+")) then
        option_error(name, "must be an http(s) URL", 5)
    end
    return v and (v:gsub("/+$", ""))
end

--- The options trustpay.new accepts (its own, then
-- provider.TRANSPORT_OPTIONS), and those of its banking table; any other
-- raises. `live` is deprecated until 0.3: `live = true` is environment = "live".
trustpay.OPTIONS = provider.options { "account_id", "secret", "base_url", "banking", "environment", "live", "store" }
trustpay.BANKING_OPTIONS = { "username", "password", "base_url" }

--- trustpay.new{account_id, secret, environment = "test" | "live",
-- base_url, banking = {username, password, base_url}, store (a
-- luapay.store: the OAuth token shared, one fetch per expiry), and the transport
-- options (provider.TRANSPORT_OPTIONS)} -> client. TrustPay has one
-- endpoint for test and live accounts: "live" requires https URLs and
-- refuses verify = false. Raises on misuse, naming the option.
function trustpay.new(opts)
    provider.check_options("trustpay.new", opts, trustpay.OPTIONS)
    local environment = provider.environment("trustpay.new", opts, { live = true })
    local account_id = opts.account_id
    if type(account_id) == "number" and is_integer(account_id) then account_id = int_string(account_id) end
    if type(account_id) ~= "string" or not account_id:match("^%d+$") or #account_id > 10 then
        option_error("account_id", "must be TrustPay's account or project ID (Numeric(10))")
    end
    if type(opts.secret) ~= "string" or opts.secret == "" then
        option_error("secret", "must be the account's secret key (a non-empty string)")
    end
    if opts.store ~= nil and (type(opts.store) ~= "table" or type(opts.store.lock) ~= "function") then
        option_error("store", "must be a luapay.store (it shares the API Banking OAuth token between workers and boxes)")
    end
    local banking
    if opts.banking ~= nil then
        local b = opts.banking
        if type(b) ~= "table" then option_error("banking", "must be a table {username, password, base_url}") end
        provider.check_options("trustpay.new", b, trustpay.BANKING_OPTIONS, "banking.")
        if type(b.username) ~= "string" or b.username == "" or b.username:find(":", 1, true) then
            option_error("banking.username", "must be a non-empty string without ':'")
        end
        if type(b.password) ~= "string" or b.password == "" then
            option_error("banking.password", "must be a non-empty string")
        end
        banking = setmetatable({ username = b.username,
            base_url = check_url(b.base_url, "banking.base_url") or trustpay.DEFAULT_BANKING_URL }, Banking)
        banking.password = b.password
    end
    local base_url = check_url(opts.base_url, "base_url") or trustpay.DEFAULT_BASE_URL
    local urls = { { "base_url", base_url } }
    if banking then urls[2] = { "banking.base_url", banking.base_url } end
    provider.check_urls("trustpay.new", opts, environment, urls)
    local pipeline = provider.pipeline("trustpay.new", opts, environment == "live")
    local self = setmetatable({
        environment = environment,
        account_id = account_id,
        base_url = base_url,
        banking = banking,
        http = pipeline,
        clock = opts.clock or pipeline.clock,
        store = opts.store,
    }, Client)
    self.secret = opts.secret
    return provider.client(self, opts)
end

-- The signed query of a request kind (AccountId and PaymentType added).
local function signed_query(self, spec, params)
    local p = copy(params)
    p.AccountId = self.account_id
    p.PaymentType = trustpay.payment_type_of[spec.kind]
    local values, err = trustpay.message(spec.kind, p)
    if not values then return nil, err end
    local q = {}
    for k, v in pairs(p) do
        if v ~= "" then q[k] = (wire_value(k, v, p.Currency)) end
    end
    q.Signature = trustpay.signature(self.secret, values)
    return q
end

-- What every URL builder and background call does first: check the
-- parameters against the method's table, then sign them. -> query | nil, err
local function checked_query(self, method, spec, params)
    if type(params) ~= "table" then
        error(("trustpay.Client:%s: bad argument #1 'params' (table expected, got %s)"):format(method, type(params)), 3)
    end
    params = normalize(params)
    local ok, err = check_request(spec, params, method)
    if not ok then return nil, err end
    return signed_query(self, spec, params)
end

for method, spec in pairs(URLS) do
    -- What the C pass needs of the method, worked out once (the names and
    -- required fields are trustpay.message's).
    local plan = core.trustpay_url_plan(spec.schema, trustpay.signed_fields[spec.kind],
        MESSAGE_REQUIRED[spec.kind] or REQUEST_REQUIRED, trustpay.payment_type_of[spec.kind], spec.path,
        trustpay.FIELD_ROLES)

    --- client:KIND_url(params) -> url | nil, err. The URL for the
    -- customer's browser (iframe pop-up, or redirect with IsRedirect), one
    -- method per key of URLS: wire_payment_url, card_payment_url,
    -- card_on_file_register_url, card_on_file_purchase_url,
    -- card_on_file_preauthorization_url, recurring_initial_url,
    -- recurring_initial_preauthorization_url, preauthorization_url.
    -- @function Client:KIND_url
    Client[method] = function(self, params)
        -- The common case in one pass in C; nil for anything it leaves to the code below
        -- (params not a table included: the code below words the error).
        local url = core.trustpay_url(plan, params, self.account_id, self.secret, self.base_url)
        if url then return url end
        local q, err = checked_query(self, method, spec, params)
        if not q then return nil, err end
        return self.base_url .. spec.path .. "?" .. http.encode_query(q)
    end
end

-- A result code as TrustPay writes it, Numeric(4): a JSON number or a
-- string of digits; nil for anything else.
local function result_code(v)
    if type(v) == "string" and v:match("^%d%d?%d?%d?$") then v = tonumber(v) end
    if type(v) ~= "number" or v ~= math.floor(v) or v < 0 or v > 9999 then return nil end
    return math.tointeger and math.tointeger(v) or v
end

-- A background call's answer: {"ResultCode": 0} or, as the documentation
-- prints it, {'ResultCode':3,'AcquirerResponseId':'000.000.000'}.
local function parse_result(body)
    if body ~= nil and type(body) ~= "string" then
        error("trustpay.parse_result: bad argument #1 'body' (string expected, got " .. type(body) .. ")", 2)
    end
    local t = cjson.decode(body or "")
    local code, acq
    if type(t) == "table" then
        code, acq = result_code(t.ResultCode), t.AcquirerResponseId
        if acq == cjson.null then acq = nil end
    else
        code = result_code((body or ""):match("[\"']ResultCode[\"']%s*:%s*[\"']?(%d+)[\"']?%s*[,}]"))
        acq = (body or ""):match("[\"']AcquirerResponseId[\"']%s*:%s*[\"']([^\"']*)[\"']")
    end
    if code == nil then return nil end
    if acq ~= nil then acq = tostring(acq) end
    return {
        result_code = code,
        result = result_of(code),
        acquirer_response_id = acq,
        acquirer = acq and trustpay.acquirer_codes[acq] or nil,
    }
end
trustpay.parse_result = parse_result

for method, spec in pairs(CALLS) do
    --- client:refund / wire_refund / capture / recurring_charge(params) ->
    -- {result_code, result = {name, description}, acquirer_response_id,
    -- acquirer} | nil, err. A result code of 1000 or more is an error of
    -- type provider (code = the result code, err.result = the same table).
    -- @function Client:refund
    Client[method] = function(self, params)
        local q, qerr = checked_query(self, method, spec, params)
        if not q then return nil, qerr end
        local res, rerr = self.http:request{ method = "GET", url = self.base_url .. spec.path, query = q,
                                             decode = false, idempotent = spec.idempotent, find_out = spec.find_out }
        if not res then return nil, rerr end
        if res.status ~= 200 then return nil, http.status_error(res, "TrustPay " .. method) end
        local result = parse_result(res.body)
        -- Below 1000 a code says how the call went: one TrustPay does not
        -- document says nothing, though the call may have been carried out.
        local problem = not result and "the answer has no ResultCode (Numeric(4), as TrustPay documents it)"
            or result.result_code < 1000 and not trustpay.result_codes[result.result_code]
            and ("the answer's ResultCode %d is not one TrustPay documents"):format(result.result_code)
        if problem then
            local err = errors.new("provider", "TrustPay " .. method .. ": " .. problem,
                { http_status = res.status, raw = res.body:sub(1, 300) })
            if not spec.idempotent then http.outcome_unknown(err, spec.find_out) end
            return nil, err
        end
        result.raw = res.body
        if result.result_code >= 1000 then
            local msg = ("TrustPay %s: %d %s"):format(method, result.result_code, result.result.name)
            if result.acquirer then msg = msg .. " (" .. result.acquirer .. ")" end
            return nil, errors.new("provider", msg, { code = result.result_code, result = result, raw = res.body })
        end
        return result
    end
end

--- client:notification(raw_body [, headers]) -> event | nil, err:
-- trustpay.verify_notification with the client's secret and account_id.
-- raw_body is the query string TrustPay called the NotificationUrl with
-- (`ngx.var.args`), or the whole URL. Deprecated until 0.3: a table
-- (`ngx.req.get_uri_args()`), whose event.raw is then the query rebuilt.
function Client:notification(raw_body, headers)
    return notification("trustpay.Client:notification", raw_body, headers, self.secret, self.account_id)
end

--- client:notification_response(event, received) -> {status, headers,
-- body}: what to answer TrustPay's call. received = true (the event is
-- recorded): 200 "OK". received false or nil, or no event (a forged or
-- unreadable notification): 500, for TrustPay to call again. TrustPay's
-- documentation says neither what it takes as received nor whether it
-- calls again: 200 is the answer every caller takes as delivered, and
-- a 5xx the one a caller that retries at all retries on.
function Client:notification_response(event, received)
    return provider.notification_response("trustpay.Client:notification_response", "trustpay", event, received)
end

--- client:redirect_result(params) -> table. What the customer's browser
-- brings back to the return URL: Reference, ResultCode, PaymentRequestId,
-- AcquirerResponseId. UNVERIFIED: the redirect carries no signature, so
-- anyone can forge it; show it to the customer, and act only on a verified
-- notification (or a background call's answer).
function Client:redirect_result(params)
    local p, err = read_params(params, "redirect_result")
    if not p then return nil, err end
    local code = p.ResultCode and p.ResultCode:match("^%d+$") and tonumber(p.ResultCode)
    return {
        verified = false,
        Reference = p.Reference,
        ResultCode = code,
        PaymentRequestId = p.PaymentRequestId,
        AcquirerResponseId = p.AcquirerResponseId,
        result = code and result_of(code) or nil,
        acquirer = p.AcquirerResponseId and trustpay.acquirer_codes[p.AcquirerResponseId] or nil,
        status = code and trustpay.status(code, p.AcquirerResponseId and "card" or nil, "CRDT") or nil,
        raw = p,
    }
end

provider.lifetime(Client, "trustpay")

return trustpay
