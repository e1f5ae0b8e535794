--- luapay.trustpay: TrustPay's Merchant API (mapi5: bank transfers and cards
-- in a pop-up or redirect, background calls, notifications) and API Banking
-- (OAuth, accounts, transaction history, statements, pain.001 orders,
-- refunds). Field names are TrustPay's own, as in its documentation.
--
--   local trustpay = require "luapay.trustpay"
--   trustpay.signature(secret, values)          --> uppercase hex HMAC-SHA256 of values joined by "/"
--   trustpay.message(kind, fields)              --> the values in signing order for a message kind
--
--   local tp = trustpay.new{ account_id = "4107111111", secret = "...",
--       banking = { username = "...", password = "..." } }
--   tp:card_payment_url{ Amount = 150, Currency = "EUR", Reference = "ORD-42", CardHolder = "...", ... }
--   tp:notification(ngx.var.args)               --> event | nil, err
--   tp:refund{ Amount = 150, Currency = "EUR", Reference = "ORD-42-R1", PaymentRequestId = "846487" }
--   for tx, err in tp:transactions{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-31" } do ... end
--
-- Amounts at this API are integers in minor units plus a Currency; on the
-- wire TrustPay always writes two decimals ("1.50").
local cjson = require "cjson.safe"
local core = require "luapay.core"
local errors = require "luapay.errors"
local http = require "luapay.http"

local trustpay = {}

trustpay.DEFAULT_BASE_URL = "https://amapi.trustpay.eu"
trustpay.DEFAULT_BANKING_URL = "https://api.trustpay.eu"

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

trustpay.order_states = {
    "Waiting", "Ready", "Rejected", "Error", "Processed", "Blocked", "Refused", "Reversed",
    "WaitingForApprove", "Reserved", "Deleted", "Canceled", "Processing",
}

local WIRE_LANGUAGES = { "en", "sk", "cs" }
local CARD_LANGUAGES = { "en", "sk", "cs", "bg", "hr", "da", "nl", "et", "fi", "fr", "de", "el", "hu", "it",
    "ja", "lv", "lt", "nb", "pl", "pt", "ro", "ru", "sl", "es", "sv", "uk" }

---------------------------------------------------------------------------
-- Small helpers
-- @section small_helpers
---------------------------------------------------------------------------

local function copy(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end

local function is_integer(v)
    if math.type then return math.type(v) == "integer" end
    return type(v) == "number" and v == math.floor(v) and math.abs(v) <= 2 ^ 53
end

local function int_string(v)
    if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
    return ("%.0f"):format(v)
end

local sort_violations = errors.sort_fields -- core.validate's order

local function violation(path, code, message)
    return { path = path, code = code, message = (path == "" and "value" or path) .. ": " .. message }
end

local function invalid(what, violations)
    sort_violations(violations)
    return nil, errors.new("validation", ("%s: %d invalid field%s"):format(what, #violations, #violations == 1 and "" or "s"),
        { fields = violations })
end

local function validate(schema, value, what, extra)
    local ok, violations = schema:validate(value)
    violations = ok and {} or violations
    for _, v in ipairs(extra or {}) do violations[#violations + 1] = v end
    if #violations > 0 then return invalid(what, violations) end
    return true
end

---------------------------------------------------------------------------
-- Amounts: minor units <-> TrustPay's two decimals
-- @section amounts
---------------------------------------------------------------------------

--- trustpay.amount(minor, currency) -> "1.50" | nil, message. TrustPay
-- writes every amount with exactly two decimals ("en-US", no grouping);
-- for a currency without minor unit 150 is "150.00", and a three-decimal
-- amount must end in 0.
function trustpay.amount(minor, currency)
    local s, err = core.to_decimal(minor, currency)
    if not s then return nil, err end
    local int, frac = s:match("^(%d+)%.?(%d*)$")
    if #frac == 0 then
        s = int .. ".00"
    elseif #frac > 2 then
        if not frac:sub(3):match("^0+$") then return nil, "cannot be written with two decimals in " .. currency end
        s = int .. "." .. frac:sub(1, 2)
    elseif #frac == 1 then
        s = s .. "0"
    end
    if #int > 11 then return nil, "exceeds Numeric(13,2)" end
    return s
end

--- trustpay.minor(decimal2, currency) -> integer | nil, message: the
-- inverse, for amounts TrustPay sends ("6.00", "-13.37").
function trustpay.minor(s, currency)
    local sign, int, frac = tostring(s):match("^(%-?)(%d+)%.(%d%d)$")
    if not int then return nil, "not an amount with two decimals" end
    local cur = core.currency(currency or "")
    if not cur then return nil, "unknown currency" end
    local text
    if cur.exponent == 0 then
        if frac ~= "00" then return nil, "has a fraction, which " .. currency .. " does not have" end
        text = int
    else
        text = int .. "." .. frac .. ("0"):rep(cur.exponent - 2)
    end
    text = text:gsub("^0+(%d)", "%1")
    local v, err = core.to_minor(text, currency)
    if not v then return nil, err end
    if sign == "-" then v = -v end
    return v
end

-- A JSON number with two decimals (API Banking answers 123.45, -13.37) in
-- hundredths; Numeric(13,2) has at most 15 significant digits, which a
-- double prints back exactly.
local function hundredths(v)
    if type(v) == "string" then v = tonumber(v) end
    if type(v) ~= "number" or v ~= v or math.abs(v) >= 1e13 then return nil end
    local s = ("%.2f"):format(v)
    local sign, int, frac = s:match("^(%-?)(%d+)%.(%d%d)$")
    local n = tonumber(int) * 100 + tonumber(frac)
    if math.tointeger then n = math.tointeger(n) end
    return sign == "-" and -n or n
end

local function decimal2(hundredths_value)
    local neg = hundredths_value < 0
    local a = neg and -hundredths_value or hundredths_value
    local int = math.floor(a / 100)
    return (neg and "-" or "") .. int_string(int) .. "." .. ("%02d"):format(a - int * 100)
end

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

-- The values of a message in signing order; with strict, a value holding
-- "/" is refused (TrustPay joins the values with "/" and does not escape).
local function build(kind, fields, strict)
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
                if strict and s:find("/", 1, true) then
                    problems[#problems + 1] = violation(name, "forbidden",
                        "must not contain '/': TrustPay joins the signed values with '/', so it could not be signed unambiguously")
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
-- skipped; a value containing "/" is a validation error naming the field.
function trustpay.message(kind, fields)
    local values, problems = build(kind, fields, true)
    if not values then return invalid("trustpay." .. kind, problems) end
    return values
end

--- trustpay.signature(secret, values) -> uppercase hex | nil, err.
-- HMAC-SHA256 (computed in the C core) over the values joined by "/".
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
        elseif s:find("/", 1, true) then
            problems[#problems + 1] = violation(("values[%d]"):format(i), "forbidden",
                "must not contain '/': TrustPay joins the signed values with '/'")
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
    local values, problems = build(kind, fields, false)
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
    return verify(secret, kind, fields, signature)
end

---------------------------------------------------------------------------
-- Query strings
-- @section query_strings
---------------------------------------------------------------------------

local function unescape(s)
    s = s:gsub("+", " ")
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- trustpay.parse_query(s) -> table: a query string (or a whole URL) as
-- name -> value; "+" is a space, %XX a byte. A repeated name keeps its
-- first value.
function trustpay.parse_query(s)
    s = s:match("^[^?]*%?(.*)$") or s
    s = s:gsub("#.*$", "")
    local t = {}
    for pair in s:gmatch("[^&]+") do
        local k, v = pair:match("^([^=]*)=?(.*)$")
        k = unescape(k)
        if k ~= "" and t[k] == nil then t[k] = unescape(v) end
    end
    return t
end

-- Parameters given as a query string or a table (ngx.req.get_uri_args()),
-- as strings.
local function read_params(params, what)
    if type(params) == "string" then return trustpay.parse_query(params) end
    if type(params) ~= "table" then
        error(("trustpay: %s needs a query string or a table, got %s"):format(what, type(params)), 3)
    end
    local t, problems = {}, {}
    for k, v in pairs(params) do
        if type(k) == "string" then
            if type(v) == "table" then v = v[1] end -- a repeated argument: its first value
            if type(v) == "number" and is_integer(v) then v = int_string(v) end
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

local NUMERIC10 = "^[0-9]{1,10}$"
local function str(max, opts)
    local s = { type = "string", min_len = 1, max_len = max }
    for k, v in pairs(opts or {}) do s[k] = v end
    return s
end

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
        Country = { type = "country" },
        Description = str(140),
        Email = { type = "email", max_len = 254, required = opts.card },
        IsRedirect = { type = "enum", values = { "True", "False" } },
    }
    if opts.card then
        f.CardHolder = str(140, { required = true, min_len = 3 })
        f.BillingStreet = str(100, { required = true })
        f.BillingCity = str(80, { required = true })
        f.BillingPostcode = str(30, { required = true })
        f.BillingCountry = { type = "country", required = true }
    end
    if opts.card_id then f.CardId = str(64, { required = opts.card_id == "required" }) end
    return core.schema{ type = "object", additional = false, fields = f }
end

local function background_schema(sca)
    local f = {
        Amount = { type = "amount", required = true, min = 1 },
        Currency = { type = "currency", required = true },
        Reference = str(35, { required = true, forbid = "<>" }),
        PaymentRequestId = str(10, { required = true, pattern = NUMERIC10 }),
    }
    if sca then
        f.CardHolder = str(140, { min_len = 3 })
        f.BillingStreet = str(100)
        f.BillingCity = str(80)
        f.BillingPostcode = str(30)
        f.BillingCountry = { type = "country" }
        f.Email = { type = "email", max_len = 254 }
    end
    return core.schema{ type = "object", additional = false, fields = f }
end

local CARD_PATH, WIRE_PATH = "/mapi5/Card/PayPopup", "/mapi5/wire/paypopup"

-- The browser URL builders: method name -> message kind, endpoint, schema.
local URLS = {
    wire_payment_url = { kind = "wire_purchase", path = WIRE_PATH,
        schema = browser_schema{ currencies = { "CZK", "EUR" }, languages = WIRE_LANGUAGES } },
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
    refund = { kind = "refund", path = CARD_PATH, schema = background_schema(false), idempotent = false,
        find_out = NOTIFIED .. " (a DBIT notification), or look the refund up in TrustPay's merchant portal" },
    wire_refund = { kind = "refund", path = WIRE_PATH, schema = background_schema(false), idempotent = false,
        find_out = NOTIFIED .. " (a DBIT notification), or look it up in the account's history (client:transactions)" },
    capture = { kind = "capture", path = CARD_PATH, schema = background_schema(false), idempotent = false,
        find_out = NOTIFIED .. " (ResultCode 3 for a capture), or look it up in TrustPay's merchant portal" },
    recurring_charge = { kind = "recurring_subsequent", path = CARD_PATH, schema = background_schema(true), idempotent = false,
        find_out = NOTIFIED .. " (ResultCode 3 for a charge), or look it up in TrustPay's merchant portal" },
}

-- Normalizes what a merchant may reasonably pass: integer ids as strings,
-- IsRedirect as a boolean. Works on a copy.
local ID_FIELDS = { PaymentRequestId = true, AccountId = true, PaymentId = true, OrderId = true, TransactionId = true,
    DebtorAccount = true, AbaCode = true, BsbCode = true, TransitCode = true,
    SymbolConstant = true, SymbolSpecific = true, SymbolVariable = true }
local function integral(v) -- also 652801.0, as lua-cjson decodes JSON integers in Lua 5.4
    return type(v) == "number" and v == math.floor(v) and v >= 0 and v <= 2 ^ 53
end

local function normalize(params)
    local p = copy(params)
    for k, v in pairs(p) do
        if ID_FIELDS[k] and integral(v) then p[k] = ("%.0f"):format(v) end
        if k == "IsRedirect" and type(v) == "boolean" then p[k] = v and "True" or "False" end
    end
    return p
end

-- Schema violations plus the "/" check of the signed fields.
local function check_request(spec, params, what)
    local ok, violations = spec.schema:validate(params)
    violations = ok and {} or violations
    local seen = {}
    for _, v in ipairs(violations) do seen[v.path .. ":" .. v.code] = true end
    for _, name in ipairs(trustpay.signed_fields[spec.kind]) do
        local v = params[name]
        if type(v) == "string" and v:find("/", 1, true) and not seen[name .. ":forbidden"] then
            violations[#violations + 1] = violation(name, "forbidden",
                "must not contain '/': TrustPay joins the signed values with '/', so it could not be signed unambiguously")
        end
    end
    if #violations > 0 then return invalid(what, violations) end
    return true
end

---------------------------------------------------------------------------
-- The client
-- @section the_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout; so is the
-- API Banking OAuth token the client fetches.
trustpay.SECRET_OPTIONS = { "secret", "banking.password" }

local Client = errors.secret_fields({}, { "secret", "token" })
trustpay.Client = Client
Client.__tostring = errors.describe("luapay.trustpay client", { "account $account_id" })

-- The client's API Banking part {username, password, base_url}; the
-- password is sent as HTTP Basic with the username.
local Banking = errors.secret_fields({}, { "password" }, { password = "username" })

local function check_url(v, name)
    if v ~= nil and (type(v) ~= "string" or not v:match("^https?://[^/]+")) then
        error(("trustpay.new: '%s' must be an http(s) URL"):format(name), 3)
    end
    return v and (v:gsub("/+$", ""))
end

--- trustpay.new{account_id, secret, base_url, banking = {username,
-- password, base_url}, transport, timeout_ms, deadline_ms, retries, verify,
-- ca_file, clock} -> client. Raises on misuse, naming the option.
function trustpay.new(opts)
    if type(opts) ~= "table" then error("trustpay.new: needs an options table", 2) end
    local account_id = opts.account_id
    if type(account_id) == "number" and is_integer(account_id) then account_id = int_string(account_id) end
    if type(account_id) ~= "string" or not account_id:match("^%d+$") or #account_id > 10 then
        error("trustpay.new: 'account_id' must be TrustPay's account or project ID (Numeric(10))", 2)
    end
    if type(opts.secret) ~= "string" or opts.secret == "" then
        error("trustpay.new: 'secret' must be the account's secret key (a non-empty string)", 2)
    end
    if opts.timeout_ms ~= nil and (type(opts.timeout_ms) ~= "number" or opts.timeout_ms < 1) then
        error("trustpay.new: 'timeout_ms' must be a positive number of milliseconds", 2)
    end
    if opts.clock ~= nil and type(opts.clock) ~= "function" then error("trustpay.new: 'clock' must be a function", 2) end
    local banking
    if opts.banking ~= nil then
        local b = opts.banking
        if type(b) ~= "table" then error("trustpay.new: 'banking' must be a table {username, password, base_url}", 2) end
        if type(b.username) ~= "string" or b.username == "" or b.username:find(":", 1, true) then
            error("trustpay.new: 'banking.username' must be a non-empty string without ':'", 2)
        end
        if type(b.password) ~= "string" or b.password == "" then
            error("trustpay.new: 'banking.password' must be a non-empty string", 2)
        end
        banking = setmetatable({ username = b.username,
            base_url = check_url(b.base_url, "banking.base_url") or trustpay.DEFAULT_BANKING_URL }, Banking)
        banking.password = b.password
    end
    http.check_verify_option(opts.verify, opts.base_url or trustpay.DEFAULT_BASE_URL, "trustpay.new")
    if banking then http.check_verify_option(opts.verify, banking.base_url, "trustpay.new") end
    local pipeline = http.new{
        transport = opts.transport, timeout_ms = opts.timeout_ms, deadline_ms = opts.deadline_ms,
        retries = opts.retries, verify = opts.verify, ca_file = opts.ca_file, live = opts.live,
        sleep = opts.sleep, clock = opts.clock, random = opts.random,
    }
    local self = setmetatable({
        account_id = account_id,
        base_url = check_url(opts.base_url, "base_url") or trustpay.DEFAULT_BASE_URL,
        banking = banking,
        http = pipeline,
        clock = opts.clock or pipeline.clock,
    }, Client)
    self.secret = opts.secret
    return self
end

function Client:close()
    self.http:close()
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
    if type(params) ~= "table" then error("trustpay: " .. method .. " needs a table of parameters", 3) end
    params = normalize(params)
    local ok, err = check_request(spec, params, method)
    if not ok then return nil, err end
    return signed_query(self, spec, params)
end

for method, spec in pairs(URLS) do
    --- client:KIND_url(params) -> url | nil, err. The URL for the
    -- customer's browser (iframe pop-up, or redirect with IsRedirect), one
    -- method per key of URLS: wire_payment_url, card_payment_url,
    -- card_on_file_register_url, card_on_file_purchase_url,
    -- card_on_file_preauthorization_url, recurring_initial_url,
    -- recurring_initial_preauthorization_url, preauthorization_url.
    -- @function Client:KIND_url
    Client[method] = function(self, params)
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

--- client:notification(params) -> event | nil, err. params: the
-- notification's query string (ngx.var.args, or the whole URL) or a table
-- (ngx.req.get_uri_args()). Verifies the signature (wire or card variant,
-- absent optional fields skipped) and returns the common event.
function Client:notification(params)
    local p, perr = read_params(params, "notification")
    if not p then return nil, perr end
    local method
    if p.PaymentId ~= nil then method = "wire"
    elseif p.PaymentRequestId ~= nil then method = "card"
    else
        return invalid("TrustPay notification", { violation("PaymentId", "required",
            "is required (PaymentId for a bank transfer, PaymentRequestId for a card payment)") })
    end
    local kind = method .. "_notification"
    local ok, err = verify(self.secret, kind, p, p.Signature)
    if not ok then return nil, err end
    local problems = {}
    if p.AccountId ~= self.account_id then
        problems[#problems + 1] = violation("AccountId", "enum", "is not this client's account")
    end
    if p.Type ~= "CRDT" and p.Type ~= "DBIT" then problems[#problems + 1] = violation("Type", "enum", "must be CRDT or DBIT") end
    local code = p.ResultCode and p.ResultCode:match("^%d+$") and tonumber(p.ResultCode)
    if not code then problems[#problems + 1] = violation("ResultCode", "format", "must be a number") end
    local amount, why = trustpay.minor(p.Amount, p.Currency)
    if not amount then problems[#problems + 1] = violation("Amount", "format", why) end
    if #problems > 0 then return invalid("TrustPay notification", problems) end
    local event = {
        provider = "trustpay",
        kind = p.Type == "DBIT" and "refund" or "payment",
        method = method,
        status = trustpay.status(code, method, p.Type),
        merchant_ref = p.Reference,
        provider_ref = method == "wire" and p.PaymentId or p.PaymentRequestId,
        amount = amount,
        currency = p.Currency,
        result_code = code,
        result = result_of(code),
        raw = p,
    }
    if method == "card" and (p.CardId or p.CardMask or p.CardExpiration or p.AuthNumber) then
        event.card = { CardId = p.CardId, CardMask = p.CardMask, CardExpiration = p.CardExpiration, AuthNumber = p.AuthNumber }
    end
    return event
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

---------------------------------------------------------------------------
-- API Banking
-- @section api_banking
---------------------------------------------------------------------------

-- How long before expires_in a cached token is replaced.
local function token_margin(expires_in)
    return math.min(60, expires_in / 10)
end

local function no_banking()
    return nil, errors.new("config", "TrustPay API Banking needs banking = {username, password} in trustpay.new")
end

-- An OAuth access token as RFC 6750 lets it follow "Bearer " (b64token);
-- TrustPay documents Varchar(235), the bound leaves it room to grow.
local MAX_TOKEN = 4096
local function bearer_token(v)
    return type(v) == "string" and #v <= MAX_TOKEN and v:find("^[%w%-%._~%+/]+=*$") ~= nil
end

-- The OAuth token: client credentials with HTTP Basic, cached until
-- shortly before it expires.
function Client:access_token(force)
    if not self.banking then return no_banking() end
    if not force and self.token and self.clock() < self.token_expires then return self.token end
    self.token, self.token_expires = nil, nil
    local started = self.clock()
    local res, err = self.http:request{
        method = "POST", url = self.banking.base_url .. "/api/oauth2/token",
        form = { grant_type = "client_credentials" },
        basic = { self.banking.username, self.banking.password },
        idempotent = true, -- a second token moves no money, and the newest one is kept
    }
    if not res then return nil, err end
    if res.status ~= 200 then return nil, http.status_error(res, "TrustPay OAuth token request") end
    local t = res.json or cjson.decode(res.body or "")
    if type(t) ~= "table" or t.access_token == nil then
        return nil, errors.new("provider", "TrustPay OAuth: the answer has no access_token", { http_status = res.status })
    end
    -- The token goes into the next requests' Authorization header: only what
    -- a Bearer header may carry (never a CR or LF a server slipped in).
    if not bearer_token(t.access_token) then
        return nil, errors.new("provider", ("TrustPay OAuth: the answer's access_token is not a Bearer token"
            .. " (RFC 6750 b64token characters, 1 to %d of them)"):format(MAX_TOKEN), { http_status = res.status })
    end
    local expires_in = t.expires_in -- without it (RFC 6749: optional) the token is not reused
    if expires_in == nil or expires_in == cjson.null then expires_in = 0 else expires_in = tonumber(expires_in) end
    if not expires_in or expires_in ~= expires_in or expires_in < 0 or expires_in == math.huge then
        return nil, errors.new("provider", "TrustPay OAuth: the answer's expires_in is not a number of seconds",
            { http_status = res.status })
    end
    self.token = t.access_token
    self.token_expires = started + expires_in - token_margin(expires_in)
    self.tokens_fetched = (self.tokens_fetched or 0) + 1
    return self.token
end

-- API Banking methods: whether a resend is safe, and for those that move
-- money how to learn the outcome of one left without a clear answer. Reads
-- are idempotent. An order and a refund order are not: TrustPay documents no
-- key it deduplicates them by (MessageId is the pain.001 message ID, and
-- nothing says TrustPay refuses one it has seen), so a resent order could be
-- paid twice. A method not listed here counts as not idempotent.
local ORDER_FIND_OUT = "look for the order in the account's history (client:transactions, e.g. by ClientReference)"
    .. " or in TrustPay Internet Banking; with its OrderId, client:order(OrderId) gives its state"
local BANKING_CALLS = {
    GetAccountList = { idempotent = true }, GetAccountDetails = { idempotent = true },
    GetTransactionHistory = { idempotent = true }, GetTransactionDetails = { idempotent = true },
    GetStatement = { idempotent = true }, GetOrderDetails = { idempotent = true },
    CreateOrder = { idempotent = false, find_out = ORDER_FIND_OUT },
    CreateOrders = { idempotent = false, find_out = ORDER_FIND_OUT },
    RefundPayment = { idempotent = false, find_out = "look for the refund order in the account's history"
        .. " (client:transactions) or in TrustPay Internet Banking; with its OrderId, client:order(OrderId) gives its state" },
}
local UNLISTED = { idempotent = false, find_out = "look the result up in TrustPay Internet Banking" }

-- One API Banking call: POST JSON with the bearer token; a 401 fetches a
-- new token and tries once more (a 401 is refused before anything is done).
-- -> the answer's JSON object | nil, err. check(answer) -> nil, or what the
-- answer lacks of what TrustPay documents for the method: then it is a
-- provider error, and for a call that moves money one whose outcome is
-- unknown (the order may have been placed all the same).
function Client:banking_call(method, body, check)
    if not self.banking then return no_banking() end
    local what = "TrustPay API Banking " .. method
    local call = BANKING_CALLS[method] or UNLISTED
    local res, err
    for attempt = 1, 2 do
        local token, terr = self:access_token(attempt == 2)
        if not token then return nil, terr end
        res, err = self.http:request{
            method = "POST", url = self.banking.base_url .. "/ApiBanking/" .. method,
            json = body or {}, bearer = token, idempotent = call.idempotent, find_out = call.find_out,
        }
        if not res then return nil, err end
        if res.status ~= 401 then break end
        self.token = nil
    end
    if res.status ~= 200 then
        return nil, http.status_error(res, what)
    end
    local t = res.json or cjson.decode(res.body or "")
    local problem = type(t) ~= "table" and "the answer is not a JSON object" or check and check(t)
    if problem then
        err = errors.new("provider", what .. ": " .. problem,
            { http_status = res.status, raw = http.redact(res, (res.body or ""):sub(1, 300)) })
        if not call.idempotent then http.outcome_unknown(err, call.find_out) end
        return nil, err
    end
    return t
end

-- What an answer must hold, as TrustPay documents it: check functions for
-- banking_call, each saying what is missing.
local function object(name)
    return function(t)
        if type(t[name]) ~= "table" then return "the answer has no " .. name .. " object" end
    end
end

local function list_of_objects(name)
    return function(t)
        local list = t[name]
        if type(list) ~= "table" then return "the answer has no " .. name .. " list" end
        for k, v in pairs(list) do
            if type(k) ~= "number" or type(v) ~= "table" then return name .. " is not a list of objects" end
        end
    end
end

-- An id as TrustPay writes it, Numeric(10): a JSON number or a string of
-- digits, as a string; nil for anything else.
local function numeric10(v)
    if type(v) == "string" and v:match("^%d+$") and #v <= 10 then return v end
    if type(v) == "number" and v == math.floor(v) and v >= 0 and v < 1e10 then return ("%.0f"):format(v) end
end

local function order_id(t)
    if not numeric10(t.OrderId) then return "the answer has no OrderId (Numeric(10))" end
end

local function to_number_id(v)
    if type(v) == "string" then return math.tointeger and math.tointeger(tonumber(v)) or tonumber(v) end
    return v
end

-- Ids as integers (lua-cjson gives Lua 5.4 floats for JSON integers), and
-- amounts in minor units (hundredths: TrustPay writes two decimals) next to
-- TrustPay's own fields.
local function decorate_transaction(tx)
    if type(tx) ~= "table" then return tx end
    for _, k in ipairs({ "TransactionId", "PaymentId", "OrderId", "AccountId" }) do
        if math.tointeger and type(tx[k]) == "number" then tx[k] = math.tointeger(tx[k]) or tx[k] end
    end
    if tx.Amount ~= nil then tx.amount = hundredths(tx.Amount) end
    if tx.RefundedAmount ~= nil then tx.refunded_amount = hundredths(tx.RefundedAmount) end
    return tx
end

--- client:accounts() -> AccountList | nil, err
function Client:accounts()
    local t, err = self:banking_call("GetAccountList", {}, list_of_objects("AccountList"))
    if not t then return nil, err end
    for _, a in ipairs(t.AccountList) do decorate_transaction(a) end
    return t.AccountList
end

local ACCOUNT_ID = str(10, { required = true, pattern = NUMERIC10 })
local ACCOUNT_SCHEMA = core.schema{ type = "object", additional = false, fields = { AccountId = ACCOUNT_ID } }

--- client:account(id) -> AccountDetails | nil, err
function Client:account(id)
    local p = normalize{ AccountId = id }
    local ok, err = validate(ACCOUNT_SCHEMA, p, "account")
    if not ok then return nil, err end
    local t, cerr = self:banking_call("GetAccountDetails", { AccountId = to_number_id(p.AccountId) },
        object("AccountDetails"))
    if not t then return nil, cerr end
    return decorate_transaction(t.AccountDetails)
end

local HISTORY_SCHEMA = core.schema{ type = "object", additional = false, fields = {
    AccountId = ACCOUNT_ID,
    DateFrom = { type = "date", required = true },
    DateTo = { type = "date", required = true },
    Type = { type = "enum", values = { "Any", "Internal", "External" } },
    Direction = { type = "enum", values = { "Any", "Credit", "Debit" } },
    CounterAccount = str(34),
    AmountFrom = { type = "amount", allow_negative = true, max = 9999999999999 },
    AmountTo = { type = "amount", allow_negative = true, max = 9999999999999 },
    ClientReference = str(256),
    TransactionId = str(10, { pattern = NUMERIC10 }),
    PaymentId = str(10, { pattern = NUMERIC10 }),
    OrderId = str(10, { pattern = NUMERIC10 }),
    PageSize = { type = "integer", min = 1, max = 999 },
    Page = { type = "integer", min = 0 },
} }

local function date_order(p)
    if type(p.DateFrom) == "string" and type(p.DateTo) == "string" and p.DateFrom > p.DateTo then
        return { violation("DateTo", "range", "must not be before DateFrom") }
    end
    return {}
end

local function failing_iterator(err)
    local done = false
    return function()
        if done then return nil end
        done = true
        return false, err
    end
end

--- client:transactions{AccountId, DateFrom, DateTo, Type, Direction,
-- CounterAccount, AmountFrom, AmountTo, ClientReference, TransactionId,
-- PaymentId, OrderId, PageSize (default 100), Page (first page, default 0)}
-- -> iterator over every transaction of every page. AmountFrom/AmountTo are
-- hundredths (two decimals, as TrustPay writes them). Each transaction is
-- TrustPay's table plus amount and refunded_amount in hundredths. A failure
-- is yielded once as false, err:
--   for tx, err in client:transactions{...} do if not tx then error(err) end ... end
function Client:transactions(filter)
    if type(filter) ~= "table" then error("trustpay: transactions needs a filter table", 2) end
    local p = normalize(filter)
    local ok, err = validate(HISTORY_SCHEMA, p, "transactions", date_order(p))
    if not ok then return failing_iterator(err) end
    local size = p.PageSize or 100
    local page = p.Page or 0
    local f = {}
    for k, v in pairs(p) do
        if k ~= "PageSize" and k ~= "Page" then
            if k == "AmountFrom" or k == "AmountTo" then v = decimal2(v)
            elseif ID_FIELDS[k] then v = to_number_id(v) end
            f[k] = v
        end
    end
    local buffer, i, seen, last, done = {}, 0, 0, false, false
    return function()
        if done then return nil end
        if i < #buffer then
            i = i + 1
            return decorate_transaction(buffer[i])
        end
        if last then done = true return nil end
        local query = { Filter = f, Paging = { Page = page, PageSize = size } }
        local t, cerr = self:banking_call("GetTransactionHistory", query, list_of_objects("Transactions"))
        if not t then
            done = true
            cerr.page = page -- resume here: transactions{..., Page = err.page}
            return false, cerr
        end
        buffer, i = t.Transactions, 0
        page = page + 1
        seen = seen + #buffer
        local total = tonumber(t.TotalCount)
        if #buffer < size or (total and seen >= total) then last = true end
        if #buffer == 0 then done = true return nil end
        i = 1
        return decorate_transaction(buffer[1])
    end
end

local DETAILS_SCHEMA = core.schema{ type = "object", additional = false, fields = {
    TransactionId = str(10, { pattern = NUMERIC10 }),
    PaymentId = str(10, { pattern = NUMERIC10 }),
    OrderId = str(10, { pattern = NUMERIC10 }),
} }

--- client:transaction{TransactionId | PaymentId | OrderId} (exactly one)
-- -> TransactionDetails (+ Xml, the order) | nil, err
function Client:transaction(ids)
    if type(ids) ~= "table" then error("trustpay: transaction needs a table {TransactionId | PaymentId | OrderId}", 2) end
    local p = normalize(ids)
    local given = {}
    for _, k in ipairs({ "TransactionId", "PaymentId", "OrderId" }) do
        if p[k] ~= nil then given[#given + 1] = k end
    end
    local extra = {}
    if #given ~= 1 then
        extra[1] = violation("", "required", ("needs exactly one of TransactionId, PaymentId, OrderId (got %d)"):format(#given))
    end
    local ok, err = validate(DETAILS_SCHEMA, p, "transaction", extra)
    if not ok then return nil, err end
    local t, cerr = self:banking_call("GetTransactionDetails", { [given[1]] = to_number_id(p[given[1]]) },
        object("TransactionDetails"))
    if not t then return nil, cerr end
    local tx = decorate_transaction(t.TransactionDetails)
    if type(tx) == "table" and t.Xml ~= nil and t.Xml ~= cjson.null then tx.Xml = t.Xml end
    return tx
end

local STATEMENT_SCHEMA = core.schema{ type = "object", additional = false, fields = {
    AccountId = ACCOUNT_ID,
    DateFrom = { type = "date", required = true },
    DateTo = { type = "date", required = true },
    FileFormat = { type = "enum", required = true, values = { "Csv", "Html", "Camt53V2", "Camt53V4" } },
} }

--- client:statement{AccountId, DateFrom, DateTo, FileFormat} -> the
-- statement's bytes (decoded from StatementBytes) | nil, err
function Client:statement(filter)
    if type(filter) ~= "table" then error("trustpay: statement needs a filter table", 2) end
    local p = normalize(filter)
    local ok, err = validate(STATEMENT_SCHEMA, p, "statement", date_order(p))
    if not ok then return nil, err end
    p.AccountId = to_number_id(p.AccountId)
    local t, cerr = self:banking_call("GetStatement", { Filter = p }, function(a)
        if type(a.StatementBytes) ~= "string" then return "the answer has no StatementBytes" end
    end)
    if not t then return nil, cerr end
    local bytes, derr = core.base64_decode(t.StatementBytes)
    if not bytes then return nil, errors.new("provider", "TrustPay GetStatement: StatementBytes is not Base64: " .. derr) end
    return bytes
end

---------------------------------------------------------------------------
-- pain.001.001.03 orders
-- @section payment_orders
---------------------------------------------------------------------------

local function order_fields(single)
    local f = {
        AbaCode = str(9, { pattern = "^[0-9]{9}$", required_if = { field = "CreditorBankCountry", equals = "US" } }),
        Address = str(60),
        Amount = { type = "amount", required = true, min = 1 },
        BsbCode = str(6, { pattern = "^[0-9]{6}$", required_if = { field = "CreditorBankCountry", equals = "AU" } }),
        ClientReference = str(30),
        CorrespondentBank = str(35),
        CreationDateTime = str(19, { pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$" }),
        CreditorAccount = str(34, { required = true }),
        CreditorAddress = str(70),
        CreditorBankAddress = str(35, { required = true }),
        CreditorBankBic = { type = "bic", required = true },
        CreditorBankCity = str(35, { required = true }),
        CreditorBankCountry = { type = "country", required = true },
        CreditorBankName = str(35, { required = true }),
        CreditorCity = str(35),
        CreditorCountry = { type = "country" },
        CreditorName = str(35, { required = true }),
        Currency = { type = "currency", required = true },
        DebtorAccount = str(10, { required = true, pattern = NUMERIC10 }),
        DebtorName = str(35, { required = true }),
        Description = str(140),
        EndToEndReference = str(35),
        MessageId = str(35, { required = true }),
        RequestedExecutionDate = { type = "date", required = true },
        TransitCode = str(9, { pattern = "^0[0-9]{8}$", required_if = { field = "CreditorBankCountry", equals = "CA" } }),
    }
    if single then
        f.CityCode = str(35, { required = true })
        f.SymbolConstant = str(4, { pattern = "^[0-9]{1,4}$" })
        f.SymbolSpecific = str(10, { pattern = NUMERIC10 })
        f.SymbolVariable = str(10, { pattern = NUMERIC10 })
    end
    return f
end

local ORDER_SCHEMA = core.schema{ type = "object", additional = false, fields = order_fields(true) }
local ORDERS_SCHEMA = core.schema{ type = "array", min_items = 1,
    items = { type = "object", additional = false, fields = order_fields(false) } }

-- A SEPA order: euros to an IBAN. Anything else is an "Other country"
-- order, which needs the creditor's address, city and country.
local function is_sepa(o)
    return o.Currency == "EUR" and type(o.CreditorAccount) == "string" and core.check("iban", o.CreditorAccount) == true
end

local CONTROL = "[%z\1-\8\11\12\14-\31\127]"

-- UTF-8 characters (continuation bytes not counted).
local function ulen(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

-- Checks the schema cannot express: "Other country" required fields,
-- the execution date, XML-unsafe control characters.
local function order_rules(o, prefix, today)
    local v = {}
    if type(o) ~= "table" then return v end
    if not is_sepa(o) then
        for _, k in ipairs({ "CreditorAddress", "CreditorCity", "CreditorCountry" }) do
            if o[k] == nil then
                v[#v + 1] = violation(prefix .. k, "required", "is required for an order that is not SEPA (euros to an IBAN)")
            end
        end
        if type(o.CreditorAddress) == "string" and ulen(o.CreditorAddress) > 35 then
            v[#v + 1] = violation(prefix .. "CreditorAddress", "max_len", "must be at most 35 characters for an order that is not SEPA")
        end
    end
    if type(o.RequestedExecutionDate) == "string" and core.check("date", o.RequestedExecutionDate) == true
        and o.RequestedExecutionDate < today then
        v[#v + 1] = violation(prefix .. "RequestedExecutionDate", "range", "must be today or later")
    end
    for k, x in pairs(o) do
        if type(k) == "string" and type(x) == "string" and x:find(CONTROL) then
            v[#v + 1] = violation(prefix .. k, "forbidden", "must not contain control characters (XML cannot carry them)")
        end
    end
    return v
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

--- trustpay.xml_escape(s): s with & < > " ' as XML entities.
function trustpay.xml_escape(s)
    return (tostring(s):gsub("[&<>\"']", ESCAPES))
end
local esc = trustpay.xml_escape

-- Elements are written only when they have content.
local function el(name, ...)
    local inner = table.concat({ ... })
    if inner == "" then return "" end
    return "<" .. name .. ">" .. inner .. "</" .. name .. ">"
end
local function leaf(name, value)
    if value == nil or value == "" then return "" end
    return "<" .. name .. ">" .. esc(value) .. "</" .. name .. ">"
end

local CLEARING = { { "AbaCode", "USABA" }, { "BsbCode", "AUBSB" }, { "TransitCode", "CACPA" } }

local function payment_xml(o, n)
    local amount = assert(trustpay.amount(o.Amount, o.Currency))
    local sepa = is_sepa(o)
    local clearing = ""
    for _, c in ipairs(CLEARING) do
        if o[c[1]] then clearing = el("ClrSysMmbId", el("ClrSysId", leaf("Cd", c[2])), leaf("MmbId", o[c[1]])) end
    end
    local account = core.check("iban", o.CreditorAccount) == true and leaf("IBAN", o.CreditorAccount)
        or el("Othr", leaf("Id", o.CreditorAccount))
    local symbols = ""
    if o.SymbolVariable or o.SymbolSpecific or o.SymbolConstant then
        symbols = (o.SymbolVariable and "/VS" .. o.SymbolVariable or "") .. (o.SymbolSpecific and "/SS" .. o.SymbolSpecific or "")
            .. (o.SymbolConstant and "/KS" .. o.SymbolConstant or "")
    end
    return el("PmtInf",
        leaf("PmtInfId", tostring(n)),
        leaf("PmtMtd", "TRF"),
        leaf("NbOfTxs", "1"),
        leaf("CtrlSum", amount),
        sepa and el("PmtTpInf", el("SvcLvl", leaf("Cd", "SEPA"))) or "",
        leaf("ReqdExctnDt", o.RequestedExecutionDate),
        el("Dbtr", leaf("Nm", o.DebtorName), el("PstlAdr", leaf("TwnNm", o.CityCode), leaf("AdrLine", o.Address))),
        el("DbtrAcct", el("Id", el("Othr", leaf("Id", o.DebtorAccount))), leaf("Ccy", o.Currency)),
        el("DbtrAgt", el("FinInstnId", leaf("BIC", "TPAYSKBX"))),
        leaf("ChrgBr", sepa and "SLEV" or "SHAR"),
        el("CdtTrfTxInf",
            el("PmtId", leaf("EndToEndId", o.EndToEndReference or "NOTPROVIDED")),
            '<Amt><InstdAmt Ccy="' .. esc(o.Currency) .. '">' .. amount .. "</InstdAmt></Amt>",
            el("IntrmyAgt1", el("FinInstnId", leaf("Nm", o.CorrespondentBank))),
            el("CdtrAgt", el("FinInstnId", leaf("BIC", o.CreditorBankBic), clearing, leaf("Nm", o.CreditorBankName),
                el("PstlAdr", leaf("TwnNm", o.CreditorBankCity), leaf("Ctry", o.CreditorBankCountry),
                    leaf("AdrLine", o.CreditorBankAddress)))),
            el("Cdtr", leaf("Nm", o.CreditorName),
                el("PstlAdr", leaf("TwnNm", o.CreditorCity), leaf("Ctry", o.CreditorCountry), leaf("AdrLine", o.CreditorAddress))),
            el("CdtrAcct", el("Id", account)),
            el("RmtInf", leaf("Ustrd", o.Description),
                symbols ~= "" and el("Strd", el("CdtrRefInf", leaf("Ref", symbols))) or "",
                o.ClientReference and el("Strd", leaf("AddtlRmtInf", "CREF:" .. o.ClientReference)) or "")))
end

local function utc_now() return os.date("!%Y-%m-%dT%H:%M:%S") end

-- Validates one order (single) or a list, fills CreationDateTime and
-- EndToEndReference, and writes the pain.001.001.03 document.
local function order_document(orders, single)
    local list, schema, what
    if single then
        if type(orders) ~= "table" then error("trustpay: create_order needs an order table", 3) end
        list, schema, what = { normalize(orders) }, ORDER_SCHEMA, "create_order"
    else
        if type(orders) ~= "table" then error("trustpay: create_orders needs a list of order tables", 3) end
        list = {}
        for i, o in ipairs(orders) do list[i] = type(o) == "table" and normalize(o) or o end
        schema, what = ORDERS_SCHEMA, "create_orders"
    end
    local today = os.date("!%Y-%m-%d")
    local extra = {}
    for i, o in ipairs(list) do
        local prefix = single and "" or ("[%d]."):format(i)
        for _, x in ipairs(order_rules(o, prefix, today)) do extra[#extra + 1] = x end
        if i > 1 and type(o) == "table" and type(list[1]) == "table" then
            for _, k in ipairs({ "MessageId", "CreationDateTime", "DebtorName" }) do
                if o[k] ~= nil and o[k] ~= list[1][k] then
                    extra[#extra + 1] = violation(prefix .. k, "enum", "must equal the first order's (one pain.001 message per call)")
                end
            end
        end
    end
    local ok, err = validate(schema, single and list[1] or list, what, extra)
    if not ok then return nil, err end
    local first = list[1]
    local created = first.CreationDateTime or utc_now()
    local payments = {}
    for i, o in ipairs(list) do payments[i] = payment_xml(o, i) end
    -- CtrlSum adds the amounts as written; with mixed currencies it is only a checksum.
    local total = 0
    for _, o in ipairs(list) do
        local a = assert(trustpay.amount(o.Amount, o.Currency))
        local int, frac = a:match("^(%d+)%.(%d%d)$")
        total = total + tonumber(int) * 100 + tonumber(frac)
    end
    return '<?xml version="1.0" encoding="UTF-8"?>'
        .. '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        .. el("CstmrCdtTrfInitn",
            el("GrpHdr", leaf("MsgId", first.MessageId), leaf("CreDtTm", created), leaf("NbOfTxs", tostring(#list)),
                leaf("CtrlSum", decimal2(total)), el("InitgPty", leaf("Nm", first.DebtorName))),
            table.concat(payments))
        .. "</Document>"
end

--- trustpay.order_xml(order) / trustpay.orders_xml(orders) -> the
-- pain.001.001.03 document | nil, err (validation), as create_order and
-- create_orders send it.
function trustpay.order_xml(order) return order_document(order, true) end
function trustpay.orders_xml(orders) return order_document(orders, false) end

--- client:create_order(order) -> OrderId | nil, err. order: the fields of
-- the seed's order table (Amount in minor units); CreationDateTime defaults
-- to now (UTC), EndToEndReference to NOTPROVIDED.
function Client:create_order(order)
    local xml, err = order_document(order, true)
    if not xml then return nil, err end
    local t, cerr = self:banking_call("CreateOrder", { Xml = xml }, order_id)
    if not t then return nil, cerr end
    return numeric10(t.OrderId)
end

--- client:create_orders(orders) -> {OrderId, ...} | nil, err. One pain.001
-- message (the first order's MessageId) with a payment per order.
function Client:create_orders(orders)
    local xml, err = order_document(orders, false)
    if not xml then return nil, err end
    local ids = {}
    -- one id per order sent, each Numeric(10)
    local t, cerr = self:banking_call("CreateOrders", { Xml = xml }, function(a)
        local list = a.OrderIds
        if type(list) ~= "table" then return "the answer has no OrderIds list" end
        for k in pairs(list) do
            if type(k) ~= "number" then return "OrderIds is not a list" end
        end
        for i, id in ipairs(list) do
            ids[i] = numeric10(id)
            if not ids[i] then return ("the answer's OrderIds[%d] is not an id (Numeric(10))"):format(i) end
        end
        if #ids ~= #orders then
            return ("the answer's OrderIds does not hold one id per order: %d for the %d orders sent"):format(#ids, #orders)
        end
    end)
    if not t then return nil, cerr end
    return ids
end

local ORDER_ID_SCHEMA = core.schema{ type = "object", additional = false,
    fields = { OrderId = str(10, { required = true, pattern = NUMERIC10 }) } }

--- client:order(id) -> OrderDetail (+ Xml) | nil, err
function Client:order(id)
    local p = normalize{ OrderId = id }
    local ok, err = validate(ORDER_ID_SCHEMA, p, "order")
    if not ok then return nil, err end
    -- The documentation's example says OrderDetail, its table TransactionDetails.
    local t, cerr = self:banking_call("GetOrderDetails", { OrderId = to_number_id(p.OrderId) }, function(a)
        if type(a.OrderDetail) ~= "table" and type(a.OrderDetails) ~= "table" then
            return "the answer has no OrderDetail object"
        end
    end)
    if not t then return nil, cerr end
    local detail = type(t.OrderDetail) == "table" and t.OrderDetail or t.OrderDetails
    if detail.Amount ~= nil then detail.amount = hundredths(detail.Amount) end
    if t.Xml ~= nil and t.Xml ~= cjson.null then detail.Xml = t.Xml end
    return detail
end

local REFUND_SCHEMA = core.schema{ type = "object", additional = false, fields = {
    PaymentId = str(10, { required = true, pattern = NUMERIC10 }),
    Amount = { type = "amount", required = true, min = 1 },
    Currency = { type = "currency", required = true, description = "not sent: converts Amount, and CZK needs no BeneficiaryName" },
    BeneficiaryName = str(70),
    Description = str(140),
} }

--- client:refund_payment{PaymentId, Amount, Currency, BeneficiaryName,
-- Description} -> OrderId | nil, err. Currency is not sent: it converts
-- Amount and decides whether BeneficiaryName is needed (not for CZK).
function Client:refund_payment(params)
    if type(params) ~= "table" then error("trustpay: refund_payment needs a table", 2) end
    local p = normalize(params)
    local extra = {}
    if p.BeneficiaryName == nil and p.Currency ~= "CZK" then
        extra[1] = violation("BeneficiaryName", "required", "is required (except for refunds in CZK)")
    end
    local ok, err = validate(REFUND_SCHEMA, p, "refund_payment", extra)
    if not ok then return nil, err end
    local amount, aerr = trustpay.amount(p.Amount, p.Currency)
    if not amount then return invalid("refund_payment", { violation("Amount", "range", aerr) }) end
    local t, cerr = self:banking_call("RefundPayment", {
        PaymentId = to_number_id(p.PaymentId), Amount = amount,
        BeneficiaryName = p.BeneficiaryName, Description = p.Description,
    }, order_id)
    if not t then return nil, cerr end
    return numeric10(t.OrderId)
end

return trustpay
