--- luapay.trustly_na: Trustly North America (formerly PayWithMyBank) List
-- Payments as a paging iterator, the Lightbox/establish requestSignature,
-- and event notification checks.
--
--   local trustly_na = require "luapay.trustly_na"
--   local tna = trustly_na.new{ access_id = "...", access_key = "...", environment = "test" }
--   for p, err in tna:payments{
--       paymentType = { "Instant", "Deferred" }, ["authorization.status"] = { 2, 3 },
--       ["createdAt.start"] = 1717372800000, ["createdAt.end"] = 1717459199999,
--       ["amount.min"] = 1000,                      -- minor units (10.00 USD), or "10.00"
--   } do
--       if not p then error(err) end              -- err.resume continues there
--       print(p.paymentId, p.merchantReference, p.amount, p.auth.status)
--   end
--
-- GET {base}/payments with HTTP Basic accessId:accessKey. The query keeps
-- the API's names (dotted ones as they are); an array filter repeats its
-- argument (paymentType=1&paymentType=2). Pages go by startIndex and count
-- (at most 100); unless told otherwise the iterator asks for orderBy =
-- createdAt and sortOrder = asc, so payments created while it runs land
-- after the pages already read instead of shifting them.
local core = require "luapay.core"
local http = require "luapay.http"
local provider = require "luapay.provider"
local errors = require "luapay.errors"
local pager = require "luapay.pager"

local validation_error, violation = errors.validation, errors.violation

local trustly_na = {}

--- The endpoint of each environment (sandbox and production: their
-- names before 0.2, deprecated until 0.3).
trustly_na.BASE_URLS = {
    test = "https://sandbox.trustly.one/api/v1",
    live = "https://api.trustly.one/api/v1",
}
trustly_na.BASE_URLS.sandbox, trustly_na.BASE_URLS.production = trustly_na.BASE_URLS.test, trustly_na.BASE_URLS.live
trustly_na.MAX_COUNT = 100

---------------------------------------------------------------------------
-- The seed's tables (code -> name)
-- @section code_tables
---------------------------------------------------------------------------

--- paymentType: 1 Instant, 2 Deferred, 3 Recurring, 4 Disbursement,
-- 5 Verification, 6 Retrieval.
trustly_na.payment_types = { "Instant", "Deferred", "Recurring", "Disbursement", "Verification", "Retrieval" }

--- verification.status.
trustly_na.verification_statuses = { "Automatic", "ToVerify", "Verified", "Refused" }

--- Transaction Status Values (authorizationStatus, notifications' status).
trustly_na.transaction_statuses = {
    [0] = "New", "Pending", "Authorized", "Processed", "Completed", "Failed", "Expired", "Canceled",
    "Denied", "Disputed", "Reversed", "PartiallyRefunded", "Refunded", "Voided", "OnHold",
}

--- auth.status, the payment's bank authorization (filter authorization.status):
-- the 004 seed says "See Transaction Status Values", so the same table
-- (0 New ... 4 Completed ... 14 OnHold).
trustly_na.authorization_statuses = trustly_na.transaction_statuses

--- transactionType of a notification.
trustly_na.transaction_types = {
    [0] = "External", "Authorize", "Pay", "Capture", "Refund", "Reverse", "Deposit", "Reclaim",
    "Representment", [10] = "Preauthorization",
}

--- system, paymentProviderSubtype and country of a payment.
trustly_na.payment_systems = { [-1] = "None", [1] = "PayWithMyBank", [2] = "TrustlyAB" }
trustly_na.payment_provider_subtypes = { [1000] = "EasyOnline", [2000] = "MEC", [2001] = "MCD" }
trustly_na.countries = { "US", "CA", "UK", "DE", "AU" }

-- name or code -> code string, for a table above
local function codes_of(names, first)
    local map = {}
    for code = first, #names do
        map[names[code]] = tostring(code)
        map[tostring(code)] = tostring(code)
    end
    return map
end

local ENUMS = {
    paymentType = codes_of(trustly_na.payment_types, 1),
    ["authorization.status"] = codes_of(trustly_na.authorization_statuses, 0),
    ["verification.status"] = codes_of(trustly_na.verification_statuses, 1),
}

local function code_list(map)
    local list = {}
    for k, v in pairs(map) do
        if k == v then list[#list + 1] = v end
    end
    table.sort(list, function(a, b) return tonumber(a) < tonumber(b) end)
    return list
end

local STRING = { type = "string", min_len = 1, max_len = 255 }
-- 004 seed: createdAt.start etc. are strings ("Returns payments after this
-- creation date") holding the payments' createdAt/updatedAt ("UNIX
-- timestamp", which Trustly NA gives in milliseconds): an integer or its
-- decimal digits.
local STAMP = { type = "integer", min = 0 }
local STAMPS = { "createdAt.start", "createdAt.end", "updatedAt.start", "updatedAt.end" }
local AMOUNT = { type = "decimal", decimals = 2, max_digits = 10 }

local QUERY = core.schema{
    type = "object", additional = false,
    fields = {
        paymentType = { type = "array", min_items = 1, items = { type = "enum", values = code_list(ENUMS.paymentType) } },
        merchantReference = STRING,
        ["authorization.status"] = { type = "array", min_items = 1,
            items = { type = "enum", values = code_list(ENUMS["authorization.status"]) } },
        ["verification.status"] = { type = "array", min_items = 1,
            items = { type = "enum", values = code_list(ENUMS["verification.status"]) } },
        paymentId = { type = "string", min_len = 1, max_len = 15 },
        ["merchant.merchantId"] = STRING,
        description = STRING,
        ["paymentProvider.paymentProviderId"] = STRING,
        ["customer.customerId"] = STRING,
        fingerprint = STRING,
        ["createdAt.start"] = STAMP, ["createdAt.end"] = STAMP,
        ["updatedAt.start"] = STAMP, ["updatedAt.end"] = STAMP,
        ["amount.min"] = AMOUNT, ["amount.max"] = AMOUNT,
        ["paid.min"] = AMOUNT, ["paid.max"] = AMOUNT,
        ["refunded.min"] = AMOUNT, ["refunded.max"] = AMOUNT,
        orderBy = { type = "enum", values = { "createdAt", "updatedAt" } },
        sortOrder = { type = "enum", values = { "asc", "desc" } },
        startIndex = { type = "integer", min = 0 },
        count = { type = "integer", min = 1, max = trustly_na.MAX_COUNT },
        resume = {
            type = "object", additional = false,
            fields = { startIndex = { type = "integer", min = 0, required = true } },
        },
    },
}

local RANGES = {
    { "createdAt.start", "createdAt.end" }, { "updatedAt.start", "updatedAt.end" },
    { "amount.min", "amount.max" }, { "paid.min", "paid.max" }, { "refunded.min", "refunded.max" },
}

---------------------------------------------------------------------------
-- Helpers
-- @section helpers
---------------------------------------------------------------------------

local function is_array(t)
    if next(t) == nil then return true end
    local n = #t
    if n == 0 then return false end
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then return false end
    end
    return true
end

-- {createdAt = {start = 1}} -> {["createdAt.start"] = 1}; arrays stay.
local function flatten(t, prefix, out)
    for k, v in pairs(t) do
        local key = prefix and (prefix .. "." .. tostring(k)) or k
        if type(v) == "table" and getmetatable(v) == nil and not is_array(v) then
            flatten(v, key, out)
        else
            out[key] = v
        end
    end
    return out
end

-- An integral number's digits, or nil.
local function integer_text(v)
    local i = provider.integer(v)
    return i and provider.digits(i)
end

local function enum_value(map, v)
    if type(v) == "number" then v = integer_text(v) or tostring(v) end
    if type(v) == "string" and map[v] then return map[v] end
    return v
end

-- minor units -> "10.00"; a float or negative number is a violation.
local function amount_value(v, path, violations)
    if type(v) == "number" then
        local s = core.to_decimal(v, "USD")
        if s then return s end
        violations[#violations + 1] = violation(path, "type", "must be an integer amount in minor units or a decimal string like \"10.00\"")
        return nil
    end
    return v
end


--- trustly_na.payments_query(params) -> query table (what the first page
-- sends, without startIndex/count) | nil, err. Pure: names and codes are
-- turned into the API's codes, amounts in minor units into "10.00", and
-- every value is checked.
function trustly_na.payments_query(params)
    if type(params) ~= "table" then
        error("trustly_na.payments_query: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local resume = params.resume
    local flat = {}
    for k, v in pairs(params) do
        if k ~= "resume" then
            if type(v) == "table" and getmetatable(v) == nil and not is_array(v) then
                flatten(v, k, flat)
            else
                flat[k] = v
            end
        end
    end
    flat.resume = resume
    for _, k in ipairs(STAMPS) do
        local v = flat[k]
        if type(v) == "string" and v:match("^%d+$") and #v <= 15 then flat[k] = tonumber(v) end
    end
    for key, map in pairs(ENUMS) do
        local v = flat[key]
        if v ~= nil then
            local list = type(v) == "table" and v or { v }
            local out = {}
            for i, x in ipairs(list) do out[i] = enum_value(map, x) end
            if type(v) == "table" and #out == 0 then out = v end
            flat[key] = out
        end
    end
    local own = {}
    for _, r in ipairs(RANGES) do
        if r[1]:match("^%a+%.min$") then
            flat[r[1]] = amount_value(flat[r[1]], r[1], own)
            flat[r[2]] = amount_value(flat[r[2]], r[2], own)
        end
    end
    local ok, violations = QUERY:validate(flat)
    violations = ok and {} or violations
    for _, v in ipairs(own) do violations[#violations + 1] = v end
    local bad = {}
    for _, v in ipairs(violations) do bad[v.path] = true end
    for _, r in ipairs(RANGES) do
        local lo, hi = flat[r[1]], flat[r[2]]
        if lo ~= nil and hi ~= nil and not bad[r[1]] and not bad[r[2]] then
            if type(lo) == "string" then lo, hi = core.to_minor(lo, "USD"), core.to_minor(hi, "USD") end
            if lo > hi then
                violations[#violations + 1] = violation(r[1], "range", "must not be above " .. r[2])
            end
        end
    end
    if #violations > 0 then return nil, validation_error("trustly_na payments", violations) end
    flat.resume = nil
    for key in pairs(ENUMS) do
        if flat[key] ~= nil then flat[key] = http.array(flat[key]) end
    end
    for _, k in ipairs({ "createdAt.start", "createdAt.end", "updatedAt.start", "updatedAt.end", "startIndex", "count" }) do
        if flat[k] ~= nil then flat[k] = integer_text(flat[k]) end
    end
    return flat
end

---------------------------------------------------------------------------
-- The client
-- @section the_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout (also as the
-- HTTP Basic credentials access_id:access_key).
trustly_na.SECRET_OPTIONS = { "access_key" }

local Client = errors.secret_fields({}, trustly_na.SECRET_OPTIONS, { access_key = "access_id" })
trustly_na.Client = Client
Client.__tostring = errors.describe("luapay.trustly_na client", { "$environment", "access id $access_id", "$base_url" })

--- The options trustly_na.new accepts (its own, then
-- provider.TRANSPORT_OPTIONS); any other raises.
trustly_na.OPTIONS = provider.options { "access_id", "access_key", "environment", "base_url" }

--- trustly_na.new{access_id, access_key, environment = "test" | "live",
-- base_url, and the transport options (provider.TRANSPORT_OPTIONS)} ->
-- client. environment picks the endpoint (BASE_URLS: Trustly's sandbox or
-- production; "sandbox" and "production" are deprecated names for them);
-- base_url (e.g. a sandbox fake) wins over it. "live" requires an https
-- URL and refuses verify = false, which is refused anyway unless base_url
-- is a loopback host.
function trustly_na.new(opts)
    provider.check_options("trustly_na.new", opts, trustly_na.OPTIONS)
    local self = setmetatable({}, Client)
    self.access_id = provider.string_option("trustly_na.new", opts, "access_id", true)
    if self.access_id:find(":", 1, true) then error("trustly_na.new: option 'access_id' may not contain ':'", 2) end
    self.access_key = provider.string_option("trustly_na.new", opts, "access_key", true)
    self.environment = provider.environment("trustly_na.new", opts,
        { words = { sandbox = "test", production = "live" } })
    local base = opts.base_url or trustly_na.BASE_URLS[self.environment]
    if type(base) ~= "string" or not base:match("^https?://[^/]") then
        error("trustly_na.new: option 'base_url' must be an http(s) URL", 2)
    end
    self.base_url = base:gsub("/+$", "")
    provider.check_urls("trustly_na.new", opts, self.environment, { { "base_url", self.base_url } })
    self.http = provider.pipeline("trustly_na.new", opts, self.environment == "live")
    return provider.client(self, opts)
end

local function response_error(res)
    local body = type(res.json) == "table" and res.json or {}
    local first = type(body.errors) == "table" and type(body.errors[1]) == "table" and body.errors[1] or {}
    return http.refused(res, "Trustly",
        type(first.message) == "string" and "Trustly refused the payments query: " .. first.message or nil, first.code)
end

--- client:payments{paymentType, merchantReference, ["authorization.status"],
-- ["verification.status"], paymentId, ["merchant.merchantId"], description,
-- ["paymentProvider.paymentProviderId"], ["customer.customerId"],
-- fingerprint, ["createdAt.start"|"end"], ["updatedAt.start"|"end"] (Unix
-- ms), ["amount.min"|"max"], ["paid.min"|"max"], ["refunded.min"|"max"]
-- (minor units or "10.00"), orderBy, sortOrder, startIndex, count (page
-- size, 1-100, default 100), resume} -> iterator over payments. Nested
-- tables work too ({createdAt = {start = ...}}). A bad value makes the
-- iterator yield a validation error and send nothing.
function Client:payments(params)
    if type(params) ~= "table" then
        error("trustly_na.Client:payments: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local query, err = trustly_na.payments_query(params)
    if not query then return pager.new(nil, nil, err) end
    local per_page = tonumber(query.count) or trustly_na.MAX_COUNT
    query.count = integer_text(per_page)
    query.orderBy = query.orderBy or "createdAt"
    query.sortOrder = query.sortOrder or "asc"
    local first = tonumber(query.startIndex) or 0
    query.startIndex = nil
    if type(params.resume) == "table" then first = params.resume.startIndex end
    local url = self.base_url .. "/payments"
    local auth = { self.access_id, self.access_key }
    local client = self.http

    local function fetch(cursor)
        query.startIndex = integer_text(cursor.startIndex)
        local res, rerr = client:request{ method = "GET", url = url, query = query, basic = auth, idempotent = true }
        if not res then return nil, nil, rerr end
        if res.status ~= 200 then return nil, nil, response_error(res) end
        local list = type(res.json) == "table" and res.json.payments
        if type(list) ~= "table" then
            return nil, nil, errors.new("provider", "Trustly answered a payments page without a payments array", {
                http_status = res.status, raw = type(res.body) == "string" and res.body:sub(1, 300) or nil,
            })
        end
        local n = #list
        if n == 0 or n < per_page then return list, nil end
        return list, { startIndex = cursor.startIndex + n }
    end

    return pager.new(fetch, { startIndex = first })
end

---------------------------------------------------------------------------
-- requestSignature (Lightbox establishData, POST /establish)
-- @section requestsignature
---------------------------------------------------------------------------

--- The documented order of the signed fields.
trustly_na.SIGNATURE_FIELDS = {
    "accessId", "merchantId", "description", "currency", "amount", "displayAmount", "minimumBalance",
    "merchantReference", "paymentType", "timeZone",
    "recurrence.startDate", "recurrence.endDate", "recurrence.frequency", "recurrence.frequencyUnit",
    "recurrence.frequencyUnitType", "recurrence.recurringAmount", "recurrence.automaticCapture",
    "verification.status", "verification.verifyCustomer",
    "customer.customerId", "customer.externalId", "customer.name", "customer.vip", "customer.taxId",
    "customer.driverLicense.number", "customer.driverLicense.state",
    "customer.address.address1", "customer.address.address2", "customer.address.city",
    "customer.address.state", "customer.address.zip", "customer.address.country",
    "customer.phone", "customer.email", "customer.balance", "customer.currency", "customer.enrollDate",
    "customer.dateOfBirth",
    "account.nameOnAccount", "account.name", "account.type", "account.profile", "account.accountNumber",
    "account.routingNumber",
    "transactionId",
}

local function lookup(params, path)
    local v = params[path]
    if v ~= nil then return v end
    v = params
    for part in path:gmatch("[^%.]+") do
        if type(v) ~= "table" then return nil end
        v = v[part]
    end
    return v
end

local function signed_text(v, path, bad)
    local t = type(v)
    if v == nil or v == http.null or v == false or v == "" then return nil end
    if t == "string" then return v end
    if t == "boolean" then return "true" end
    if t == "number" then
        if v == 0 then return nil end
        if v ~= v or v - v ~= 0 then -- NaN, infinity: no text Lightbox would send
            bad[#bad + 1] = violation(path, "type", "must be a finite number, not " .. tostring(v))
            return nil
        end
        return integer_text(v) or ("%.17g"):format(v)
    end
    error(("trustly_na.signature_string: bad argument #1 'params' (field '%s' must be a string, number or boolean, got %s)")
        :format(path, t), 3)
end

--- trustly_na.signature_string(params) -> "accessId=...&merchantId=..." | nil, err
-- The fields of SIGNATURE_FIELDS present in params (nested tables or flat
-- dotted keys), in that order, values raw (not URL-encoded). Like Trustly's
-- example code, empty strings, false and 0 count as absent. A NaN or
-- infinite number gives a "validation" error naming the field.
function trustly_na.signature_string(params)
    if type(params) ~= "table" then
        error("trustly_na.signature_string: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local parts, bad = {}, {}
    for _, path in ipairs(trustly_na.SIGNATURE_FIELDS) do
        local s = signed_text(lookup(params, path), path, bad)
        if s then parts[#parts + 1] = path .. "=" .. s end
    end
    if #bad > 0 then return nil, validation_error("trustly_na.request_signature", bad) end
    return table.concat(parts, "&")
end

local ALGS = { HmacSHA1 = "sha1", sha1 = "sha1", HmacSHA512 = "sha512", sha512 = "sha512" }

--- trustly_na.request_signature(params, access_key [, alg]) -> base64 | nil, err
-- HMAC-SHA1 of signature_string(params) keyed with the access key; with
-- alg "HmacSHA512" (beta) an HMAC-SHA512 prefixed "HmacSHA512:". A field
-- that has no text (NaN, infinity) gives nil and a "validation" error.
function trustly_na.request_signature(params, access_key, alg)
    if type(access_key) ~= "string" or access_key == "" then
        error("trustly_na.request_signature: bad argument #2 'access_key' (non-empty string expected, got " .. type(access_key) .. ")", 2)
    end
    local md = ALGS[alg or "HmacSHA1"]
    if not md then error("trustly_na.request_signature: bad argument #3 'alg' (HmacSHA1 or HmacSHA512 expected)", 2) end
    local text, err = trustly_na.signature_string(params)
    if not text then return nil, err end
    local mac = core.hmac(md, access_key, text, "base64")
    if md == "sha512" then return "HmacSHA512:" .. mac end
    return mac
end

---------------------------------------------------------------------------
-- Event notifications
-- @section event_notifications
---------------------------------------------------------------------------

local percent_decode = http.unescape

local TX_STATUS = {
    [0] = "pending", "pending", "authorized", "pending", "succeeded", "failed", "failed", "canceled",
    "failed", "reversed", "reversed", "partially_refunded", "refunded", "canceled", "pending",
}

--- transactionType (its code, or its name as eventType words it) onto
-- provider.KINDS: External and Pay are payments; Authorize and
-- Preauthorization authorizations; Deposit (money to the customer's
-- account) a payout; Reverse and Reclaim (money taken back after it moved,
-- such as a returned debit) reversals; Representment (a returned debit
-- presented again) a payment. Anything else is "other". The word itself
-- is in event.extra.transactionType.
trustly_na.KIND = {
    External = "payment", Authorize = "authorization", Pay = "payment", Capture = "capture", Refund = "refund",
    Reverse = "reversal", Deposit = "payout", Reclaim = "reversal", Representment = "payment",
    Preauthorization = "authorization",
}

--- trustly_na.event(fields [, raw_body]) -> the common event
-- (provider.event) for a notification's fields; raw_body is the body as
-- received (default: the fields encoded again as a query). Trustly's own
-- words are under extra: fields (every field, decoded), transactionType
-- (its name: "Pay", "Refund", ...), eventType, transactionStatus (the
-- name of status: "Authorized", "Completed", ...).
function trustly_na.event(f, raw_body)
    if type(f) ~= "table" then
        error("trustly_na.event: bad argument #1 'fields' (table expected, got " .. type(f) .. ")", 2)
    end
    if raw_body ~= nil and type(raw_body) ~= "string" then
        error("trustly_na.event: bad argument #2 'raw_body' (string or nil expected, got " .. type(raw_body) .. ")", 2)
    end
    local status_code = tonumber(f.status)
    local type_name = trustly_na.transaction_types[tonumber(f.transactionType)]
    local kind = trustly_na.KIND[type_name or f.eventType or ""] or "other"
    local status = TX_STATUS[status_code] or "pending"
    -- Processed: the ACH is submitted, not yet completed; a refund is done
    -- only once Completed ("funds transferred"), as a payment succeeds.
    if kind == "refund" and status_code == 4 then status = "refunded" end
    if kind == "reversal" and (status_code == 3 or status_code == 4) then status = "reversed" end
    local currency = f.currency ~= "" and f.currency or "USD"
    local amount = f.amount and f.amount ~= "" and core.to_minor(f.amount, currency) or nil
    -- make_event: provider.event's check of each field's name is a loop,
    -- which breaks LuaJIT's trace of a notification in two.
    return provider.make_event("trustly_na", kind, status, f.merchantReference ~= "" and f.merchantReference or nil,
        f.objectId or f.transactionId, amount, amount and currency or nil, raw_body or http.encode_query(f), {
            fields = f,
            transactionType = type_name,
            eventType = f.eventType,
            transactionStatus = trustly_na.transaction_statuses[status_code],
        })
end

local function sig_error(message)
    return errors.new("signature", "Trustly notification: " .. message)
end

local function same(x) return x end

-- The fields of the signed text (the URL-decoded body: the very bytes the
-- signature covers), or nil and why the body is refused. The signature
-- cannot tell a field separator from an "&" inside a value, so the raw body,
-- each key and value decoded on its own, must split into exactly the same
-- fields as the signed text (no encoded "&", and no encoded "=" in a key),
-- and a key may not appear twice with different values.
local function signed_fields(raw, signed, decode)
    local from_raw, from_signed = http.query_pairs(raw, decode), http.query_pairs(signed, same)
    local ambiguous = "a key or value holds an encoded '&' or '=', so the signed text has other fields than the body"
    if #from_raw ~= #from_signed then return nil, ambiguous end
    for i, p in ipairs(from_signed) do
        local r = from_raw[i]
        if r[1] ~= p[1] or r[2] ~= p[2] then return nil, ambiguous end
    end
    local fields, name = http.decode_query(signed, same)
    if not fields then return nil, "the field '" .. name .. "' appears twice with different values" end
    return fields
end

local function bad_argument(n, name, message)
    error(("trustly_na.verify_notification: bad argument #%d '%s' (%s)"):format(n, name, message), 3)
end

--- trustly_na.verify_notification(raw_body, headers, keys) -> event | nil,
-- err. headers: the request's headers (a table, names in any case), or the
-- Authorization header's value; keys: {access_id = ..., access_key = ...}.
-- The Authorization header is "Basic base64(accessId:signature)" with
-- signature = base64 HMAC-SHA1 (or "HmacSHA512:" + HMAC-SHA512) keyed with
-- the access key over the URL-decoded body in the order received. Whether
-- "+" counts as an encoded space is not documented: a body with "+" is
-- accepted if either reading verifies, and read as the one that verified.
-- The fields come from the text that verified; a body whose fields differ
-- from that text's (an "&" or "=" sent encoded inside a key or value, which
-- the signature cannot tell from a separator) or that repeats a key with
-- another value is refused as a "signature" error: look the payment up
-- (client:payments{paymentId = ...}) instead. The event: see
-- trustly_na.event; raw is raw_body.
--
-- Deprecated, until 0.3: the 0.1 form verify_notification(raw_body,
-- authorization, access_id, access_key) (a string third argument).
function trustly_na.verify_notification(raw_body, headers, keys, access_key)
    if type(keys) == "string" then keys = { access_id = keys, access_key = access_key } end
    if type(raw_body) ~= "string" then bad_argument(1, "raw_body", "string expected, got " .. type(raw_body)) end
    if headers ~= nil and type(headers) ~= "table" and type(headers) ~= "string" then
        bad_argument(2, "headers", "a table, the Authorization value or nil expected, got " .. type(headers))
    end
    if type(keys) ~= "table" then
        bad_argument(3, "keys", "{access_id = ..., access_key = ...} expected, got " .. type(keys))
    end
    local access_id, key = keys.access_id, keys.access_key
    if type(access_id) ~= "string" or type(key) ~= "string" or key == "" then
        bad_argument(3, "keys", "keys.access_id and keys.access_key: strings expected")
    end
    local decoded, problem = http.basic_credentials(headers)
    if problem == "repeated" then return nil, sig_error("more than one Authorization header") end
    if problem == "missing" then return nil, sig_error("no HTTP Basic Authorization header") end
    local id, sig = (decoded or ""):match("^([^:]*):(.+)$")
    if not id then return nil, sig_error("the Authorization header is not accessId:signature") end
    if not core.equal(id, access_id) then return nil, sig_error("the accessId is not ours") end
    local md = "sha1"
    local alg, rest = sig:match("^(HmacSHA%d+):(.+)$")
    if alg then
        md = ALGS[alg]
        if not md then return nil, sig_error("unknown signature algorithm") end
        sig = rest
    end
    local decode = percent_decode
    local signed = percent_decode(raw_body)
    local ok = core.equal(core.hmac(md, key, signed, "base64"), sig)
    if not ok and raw_body:find("+", 1, true) then
        decode = function(s) return percent_decode((s:gsub("%+", " "))) end
        signed = decode(raw_body)
        ok = core.equal(core.hmac(md, key, signed, "base64"), sig)
    end
    if not ok then return nil, sig_error("the signature does not match the body") end
    local fields, why = signed_fields(raw_body, signed, decode)
    if not fields then return nil, sig_error("refused: " .. why .. "; look the payment up instead") end
    return trustly_na.event(fields, raw_body)
end

--- client:notification(raw_body, headers) -> event | nil, err: the
-- notification verified with the client's access id and key
-- (trustly_na.verify_notification). headers: the request's headers, or
-- the Authorization header's value.
function Client:notification(raw_body, headers)
    return trustly_na.verify_notification(raw_body, headers, { access_id = self.access_id, access_key = self.access_key })
end

--- client:notification_response(event, received) -> {status, headers, body}:
-- what to answer Trustly, which sends a notification again every 5 minutes
-- for 12 hours until it gets an HTTP 200 (within 3 seconds). With an event
-- and received true (recorded): 200 "OK". With an event not recorded:
-- 500, send it again. Without an event from client:notification (nil: it
-- did not verify; an error; any other table): 400.
function Client:notification_response(event, received)
    return provider.notification_response("trustly_na.Client:notification_response", "trustly_na", event, received)
end

provider.lifetime(Client, "trustly_na")

return trustly_na
