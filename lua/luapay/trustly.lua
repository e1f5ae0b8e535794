--- luapay.trustly: Trustly's JSON-RPC 1.1 merchant API (Europe, api/1).
--
-- Every message is signed: RSA PKCS#1 v1.5 with SHA-1 over
-- method .. uuid .. serialize(data), base64. The merchant signs its requests
-- and its answers to notifications with its own key; Trustly signs its
-- answers and notifications with the key published for the environment
-- (bundled in luapay.trustly.keys).
--
--   local trustly = require "luapay.trustly"
--   trustly.serialize(data)                              --> string (the C core)
--   trustly.sign(method, uuid, data, private_key)        --> base64 signature
--   trustly.verify(method, uuid, data, sig_b64, public_key) --> true | nil, err
--
--   local client = trustly.new{
--       username = "...", password = "...",
--       private_key = pem_or_core_pkey,         -- the merchant's key
--       environment = "test",                   -- or "live"
--   }
--   local data, err = client:deposit{
--       NotificationURL = "https://shop.example/trustly/notify/k3j2h4",
--       EndUserID = "user-42", MessageID = "order-1001",
--       Attributes = { Currency = "EUR", Amount = 10050,  -- minor units or "100.50"
--           Firstname = "Ann", Lastname = "Ek", Country = "SE", Locale = "sv_SE",
--           SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail" },
--   }
--   --> data = { orderid = "1234567890", url = "https://..." }: redirect the customer to url
--
-- Requests keep Trustly's own field names, Data and Attributes exactly as in
-- its documentation. Username and Password go inside Data (the client adds
-- them), a UUID is made for every call and a MessageID where the method takes
-- one and the caller gives none. Every request is validated before anything
-- is sent; the answer must carry the request's uuid and Trustly's valid
-- signature, or the call fails with an error of type "signature".
--
-- Notifications: client:notification(raw_body, headers) verifies one and
-- returns the common event; client:notification_response(event, true) is
-- the answer to send back once it is recorded (HTTP 200, the signed "OK",
-- application/json). Account, Pending and Credit may arrive in any order,
-- and Trustly delivers the same notificationid again until it gets a valid
-- answer: process each notificationid once, and answer a repeat as you
-- answered the first time.
--
-- Refunds: "If the refund fails, Trustly will send a Credit notification",
-- on the deposit's order, like the deposit's own credit. Only what the
-- merchant knows tells them apart, so the client keeps it in a store
-- (option store: ngx.shared.DICT, any object with get and set, default
-- trustly.memory_store() for this process only): client:refund records each
-- refund before sending it, client:record_refund adds those made elsewhere,
-- and an order's first credit that answers no refund is remembered as the
-- deposit's. Any other credit for the amount and currency of a refund on
-- that order is reported {kind = "refund", status = "failed", refund =
-- {orderid, amount, currency}} (refund what was credited: a deposit's own
-- credit arriving after a refund of its full amount would read as that
-- refund failing), and a payout confirmation for it {kind = "refund",
-- status = "refunded"}. Notifications Trustly flags refund = "1" are the
-- refund's whatever the store says. Give the notifications and the refunds
-- one store (inside nginx, a shared dict; across hosts, your database
-- behind get and set).
--
-- An account notification is "authorized" only with an active direct-debit
-- mandate (attributes.directdebitmandate = "1"); "0" (inactive) is
-- "canceled". A Refund or AccountPayout that Trustly answers with a result
-- other than "1" is a "provider" error, never data.
local core = require "luapay.core"
local errors = require "luapay.errors"
local http = require "luapay.http"
local provider = require "luapay.provider"
local keys = require "luapay.trustly.keys"

local trustly = {}

trustly.VERSION = "1.1"
trustly.ENDPOINTS = {
    test = "https://test.trustly.com/api/1",
    live = "https://api.trustly.com/1",
}
trustly.keys = keys

--- Trustly's error codes (Trustly's documentation, "Error messages"), up to
-- 639. Any other code is named by the message Trustly sends with it.
trustly.ERRORS = {
    [602] = "ERROR_FUNCTION_ACCESS_DENIED",
    [607] = "ERROR_HOST_ACCESS_DENIED",
    [615] = "ERROR_INVALID_AMOUNT",
    [616] = "ERROR_INVALID_CREDENTIALS",
    [620] = "ERROR_UNKNOWN",
    [622] = "ERROR_INVALID_CURRENCY_CODE",
    [623] = "ERROR_INVALID_PARAMETERS",
    [636] = "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE",
    [637] = "ERROR_DUPLICATE_MESSAGE_ID",
    [638] = "ERROR_ENDUSER_IS_BLOCKED",
    [639] = "ERROR_NO_PUBLIC_KEY",
}

local HINTS = {
    [602] = "this merchant account may not call this method",
    [607] = "the calling IP address is not on Trustly's allow list",
    [615] = "the amount is not accepted (it must be greater than 0, with 2 decimals)",
    [616] = "the username or password is wrong",
    [622] = "the currency code is not accepted",
    [623] = "a value or parameter does not have the expected format",
    [636] = "Trustly could not verify the request's signature: wrong private key, or Trustly holds another public key for this merchant",
    [637] = "the MessageID was used before",
    [638] = "the end user is blocked",
    [639] = "Trustly has no public key for this merchant",
}

---------------------------------------------------------------------------
-- Keys
-- @section keys
---------------------------------------------------------------------------

-- PEM text -> core.pkey. Parsing a PEM costs more than the serialization,
-- so the last few keys seen as text are kept (they are in memory already).
local pem_cache, pem_cache_size, PEM_CACHE_MAX = {}, 0, 8
local known_pkeys = setmetatable({}, { __mode = "k" }) -- core.pkey values seen

local function is_pkey(v)
    local mt = type(v) == "userdata" and getmetatable(v)
    return type(mt) == "table" and mt.__name == "luapay.pkey"
end

--- trustly.load_key(pem_or_pkey [, passphrase]) -> key | nil, err
function trustly.load_key(key, passphrase)
    if passphrase ~= nil and type(passphrase) ~= "string" then
        error("trustly.load_key: bad argument #2 'passphrase' (string expected, got " .. type(passphrase) .. ")", 2)
    end
    if passphrase == nil and known_pkeys[key] then return key end -- one table look-up on the hot path
    if is_pkey(key) then
        known_pkeys[key] = true
        return key
    end
    if type(key) ~= "string" then return nil, "a PEM string or a core.pkey is expected, got " .. type(key) end
    local cached = passphrase == nil and pem_cache[key]
    if cached then return cached end
    local k, err = core.pkey(key, passphrase)
    if not k then return nil, err end
    if passphrase == nil then
        if pem_cache_size >= PEM_CACHE_MAX then pem_cache, pem_cache_size = {}, 0 end
        pem_cache[key] = k
        pem_cache_size = pem_cache_size + 1
    end
    return k
end

-- The key argument #n (when given) called name of trustly.fn.
local function key_arg(key, fn, name, want_private, n)
    local arg = n and ("#%d '%s'"):format(n, name) or ("'%s'"):format(name)
    local k, err = trustly.load_key(key)
    if not k then error(("trustly.%s: bad argument %s (%s)"):format(fn, arg, err), 3) end
    if want_private and not k:is_private() then
        error(("trustly.%s: bad argument %s (a private key is needed to sign)"):format(fn, arg), 3)
    end
    return k
end

---------------------------------------------------------------------------
-- Signatures (pure)
-- @section signatures
---------------------------------------------------------------------------

local serialize, b64encode, trustly_verify = core.trustly_serialize, core.base64_encode, core.trustly_verify

--- trustly.serialize(data) -> the text signatures are made over.
function trustly.serialize(data)
    return serialize(data, "trustly.serialize", 1)
end

local function check_method_uuid(fn, method, uuid)
    if type(method) ~= "string" then
        error(("trustly.%s: bad argument #1 'method' (string expected, got %s)"):format(fn, type(method)), 3)
    end
    if type(uuid) ~= "string" then error(("trustly.%s: bad argument #2 'uuid' (string expected, got %s)"):format(fn, type(uuid)), 3) end
end

--- trustly.plaintext(method, uuid, data) -> method .. uuid .. serialize(data)
function trustly.plaintext(method, uuid, data)
    check_method_uuid("plaintext", method, uuid)
    return method .. uuid .. serialize(data, "trustly.plaintext", 3)
end

--- trustly.sign(method, uuid, data, private_key) -> base64 signature.
-- private_key: PEM text or a core.pkey.
function trustly.sign(method, uuid, data, private_key)
    check_method_uuid("sign", method, uuid)
    local key = key_arg(private_key, "sign", "private_key", true, 4)
    return b64encode(key:sign(method .. uuid .. serialize(data, "trustly.sign", 3), "sha1"))
end

-- The check itself, with a loaded key.
local function verify_with(key, method, uuid, data, sig_b64)
    if type(sig_b64) ~= "string" or sig_b64 == "" then
        return nil, errors.new("signature", "the message carries no signature")
    end
    -- key:verify(method .. uuid .. serialize(data), b64decode(sig_b64), "sha1"), no string made on the way
    local ok = trustly_verify(key, method, uuid, data, sig_b64, "trustly.verify", 3)
    if ok == nil then return nil, errors.new("signature", "the signature is not valid base64") end
    if not ok then
        return nil, errors.new("signature", "the signature does not match the message (wrong key, or the message was altered)")
    end
    return true
end

--- trustly.verify(method, uuid, data, sig_b64, public_key) -> true | nil, err
-- err is a luapay error of type "signature". Verify what was received:
-- decode the body with core.json_decode(raw, {numbers = "lexeme"}) so that
-- numbers keep the text they were signed as.
function trustly.verify(method, uuid, data, sig_b64, public_key)
    check_method_uuid("verify", method, uuid)
    return verify_with(key_arg(public_key, "verify", "public_key", false, 5), method, uuid, data, sig_b64)
end

---------------------------------------------------------------------------
-- Envelopes (pure): what the merchant sends, and what Trustly sends
-- @section envelopes
---------------------------------------------------------------------------

local encode_json = core.json_encode

-- The JSON text of a document trustly.fn builds (fn: the builder's name;
-- notification_response's call gives none).
local function encode(doc, fn)
    local text, err = encode_json(doc)
    if not text then error(("trustly.%s: %s"):format(fn or "notification_response", err), 3) end
    return text
end

--- trustly.request(method, uuid, data, private_key) -> JSON text of a signed
-- request: {"method", "params": {"Signature", "UUID", "Data"}, "version": "1.1"}.
function trustly.request(method, uuid, data, private_key)
    local sig = trustly.sign(method, uuid, data, private_key)
    return encode({ method = method, params = { Signature = sig, UUID = uuid, Data = data }, version = trustly.VERSION },
        "request")
end

--- trustly.notification_response(method, uuid, status, private_key) -> JSON
-- text of the merchant's signed answer to a notification (status "OK" or
-- "FAILED").
function trustly.notification_response(method, uuid, status, private_key)
    if status ~= "OK" and status ~= "FAILED" then
        error("trustly.notification_response: bad argument #3 'status' (\"OK\" or \"FAILED\" expected)", 2)
    end
    local data = { status = status }
    local sig = trustly.sign(method, uuid, data, private_key)
    return encode({ result = { signature = sig, uuid = uuid, method = method, data = data }, version = trustly.VERSION })
end

-- What Trustly itself sends, for fakes and tests: a signed success answer,
-- a signed error answer and a notification request.

--- trustly.answer(method, uuid, data, private_key) -> JSON text
function trustly.answer(method, uuid, data, private_key)
    local sig = trustly.sign(method, uuid, data, private_key)
    return encode({ result = { signature = sig, uuid = uuid, method = method, data = data }, version = trustly.VERSION },
        "answer")
end

--- trustly.error_answer(method, uuid, code, message, private_key) -> JSON text
function trustly.error_answer(method, uuid, code, message, private_key)
    local data = { code = code, message = message }
    local sig = trustly.sign(method, uuid, data, private_key)
    return encode({
        version = trustly.VERSION,
        error = { name = "JSONRPCError", code = code, message = message,
                  error = { signature = sig, uuid = uuid, method = method, data = data } },
    }, "error_answer")
end

--- trustly.notification(method, uuid, data, private_key) -> JSON text
function trustly.notification(method, uuid, data, private_key)
    local sig = trustly.sign(method, uuid, data, private_key)
    return encode({ method = method, params = { signature = sig, uuid = uuid, data = data }, version = trustly.VERSION },
        "notification")
end

---------------------------------------------------------------------------
-- Reading what Trustly sends (pure)
-- @section reading
---------------------------------------------------------------------------

local number_mt, null = core.number_mt, core.null

--- A received tree for the caller: number objects become Lua numbers
-- (integers where the text is one), arrays keep core.array_mt, null stays
-- core.null.
local plain = provider.plain
trustly.plain = plain

local plain_owned = provider.plain_owned
local LEXEMES = { numbers = "lexeme" }
local json_decode = core.json_decode
local function decode(raw)
    return json_decode(raw, LEXEMES)
end

local function str(v)
    return type(v) == "string" and v or nil
end

local is_integer = provider.is_integer
local violation = errors.violation

local function sig_error(message, extra)
    return nil, errors.new("signature", message, extra)
end

-- extra.signed = false: an error answer nobody signed, which proves
-- nothing (a proxy may have written it), so it is not called Trustly's.
local function provider_error(method, code, message, extra)
    local name = message or trustly.ERRORS[code] or "ERROR_UNKNOWN"
    local text = ((extra and extra.signed == false) and "an unsigned error answer to %s, which proves nothing: %s"
        or "Trustly refused %s: %s"):format(method or "the call", name)
    if code then text = text .. (" (%s)"):format(tostring(code)) end
    local hint = HINTS[code]
    if hint then text = text .. ": " .. hint end
    extra = extra or {}
    extra.code, extra.name, extra.retryable = code, name, false
    return errors.new("provider", text, extra)
end

-- Calls that move money and answer result "1" when Trustly accepted them
-- (Refund: "If the refund request is not accepted, you will get an error");
-- any other result is a refusal, never data a caller could take for success.
-- (Charge and CancelCharge answer result "0" with a rejected code: results.)
local ACCEPTED_BY_RESULT = { Refund = true, AccountPayout = true }

--- trustly.read_answer(raw_body, method, uuid, public_key) -> data | nil, err
-- Checks Trustly's answer to a request made with this method and uuid: the
-- answer's uuid and method must be the request's and its signature must
-- verify with Trustly's key (else an error of type "signature"). Returns
-- result.data, or a "provider" error with Trustly's code and message (also
-- for a Refund or AccountPayout answered with a result other than "1").
function trustly.read_answer(raw, method, uuid, public_key)
    local key = key_arg(public_key, "read_answer", "public_key", false, 4)
    local doc = type(raw) == "string" and decode(raw)
    if type(doc) ~= "table" then
        return nil, errors.new("http", "the answer is not a JSON-RPC document",
            { raw = type(raw) == "string" and raw:sub(1, 300) or nil })
    end
    local result, err = doc.result, doc.error
    local part, is_error
    if type(result) == "table" then
        part = result
    elseif type(err) == "table" then
        is_error = true
        part = err.error
        if type(part) ~= "table" or part.signature == nil or part.signature == null then
            -- A protocol-level error (bad JSON, unknown method, ...): uuid and
            -- method are null and nothing is signed, so it proves nothing.
            local code = type(err.code) == "table" and tonumber(err.code[1]) or tonumber(err.code)
            return nil, provider_error(method, code, str(err.message),
                { signed = false, request_id = uuid, uuid = uuid, method = method, raw = raw })
        end
    else
        return nil, errors.new("http", "the answer has neither result nor error", { raw = raw:sub(1, 300) })
    end
    local a_method, a_uuid = str(part.method), str(part.uuid)
    if a_uuid ~= uuid then
        return sig_error(("Trustly's answer carries uuid %s, not the request's %s"):format(tostring(a_uuid), uuid),
            { request_id = uuid, uuid = uuid, method = method, raw = raw })
    end
    if a_method ~= method then
        return sig_error(("Trustly's answer is for method %s, not %s"):format(tostring(a_method), method),
            { request_id = uuid, uuid = uuid, method = method, raw = raw })
    end
    local ok, verr = verify_with(key, a_method, a_uuid, part.data, part.signature)
    if not ok then
        verr.message = "Trustly's answer to " .. method .. " failed verification: " .. verr.message
        verr.request_id, verr.uuid, verr.method, verr.raw = uuid, uuid, method, raw
        return nil, verr
    end
    if is_error then
        local data = type(part.data) == "table" and part.data or {}
        local code = plain(data.code)
        if code == nil then code = plain(err.code) end
        return nil, provider_error(method, tonumber(code), str(data.message) or str(err.message),
            { signed = true, request_id = uuid, uuid = uuid, method = method, raw = raw })
    end
    local data = plain(part.data)
    if ACCEPTED_BY_RESULT[method] then
        local accepted = type(data) == "table" and data.result
        if accepted ~= "1" and accepted ~= 1 then
            local rejected = type(data) == "table" and str(data.rejected) or nil
            return nil, errors.new("provider", ("Trustly did not accept the %s: result %s%s"):format(method,
                accepted and ("%q"):format(tostring(accepted)) or "missing", rejected and (" (" .. rejected .. ")") or ""),
                { name = rejected, result = accepted or nil, data = data, signed = true, retryable = false,
                  request_id = uuid, uuid = uuid, method = method, raw = raw })
        end
    end
    return data
end

-- Notification methods -> event kind and status.
local NOTIFICATIONS = {
    pending = { "payment", "pending" },
    credit = { "payment", "succeeded" },
    debit = { "payment", "reversed" },
    cancel = { "payment", "canceled" },
    account = { "account" },
    payoutconfirmation = { "payout", "succeeded" },
}
trustly.NOTIFICATION_METHODS = { "account", "cancel", "credit", "debit", "payoutconfirmation", "pending" }

-- The same methods about a refund: notifications flagged refund = "1", or
-- related to a refund the merchant made. A credit or cancel answering a
-- refund says it failed (the money came back, or never left); a debit or a
-- payout confirmation says it left.
local REFUND_STATUS = {
    pending = "pending", credit = "failed", cancel = "failed", debit = "refunded", payoutconfirmation = "refunded",
}

---------------------------------------------------------------------------
-- What the merchant knows about refunds (a store)
-- @section refund_store
---------------------------------------------------------------------------

-- A store is anything with get(self, key) -> string | nil and set(self, key,
-- string): ngx.shared.DICT as it is, a Redis or database wrapper, or
-- trustly.memory_store(). Keys: luapay:trustly:refund:<orderid>:<currency>:<minor
-- units> for each refund made, luapay:trustly:credit:<orderid> for the
-- notificationid of an order's first credit (the deposit's).
local STORE_PREFIX = "luapay:trustly:"

--- trustly.memory_store() -> a store in this process's memory (the
-- client's default; not shared between processes or nginx workers).
function trustly.memory_store()
    local t = {}
    return {
        get = function(_, k) return t[k] end,
        set = function(_, k, v) t[k] = v; return true end,
    }
end

local function store_methods(v) return v.get, v.set end

-- Reading get and set is protected: a userdata may raise on an unknown
-- field. store_methods is no closure: making one on each notification
-- aborts LuaJIT's trace (NYI FNEW).
local function is_store(v)
    local ok, get, set = pcall(store_methods, v)
    return ok and type(get) == "function" and type(set) == "function"
end

local function minor_units(amount, currency)
    if type(amount) == "string" then return core.to_minor(amount, currency) end
    if is_integer(amount) and amount > 0 then return amount end
end

local function refund_key(orderid, amount, currency)
    return ("%srefund:%s:%s:%d"):format(STORE_PREFIX, orderid, currency, amount)
end

--- trustly.record_refund(store, orderid, amount, currency) -> true | nil, why
-- Tells the store about a refund made on an order (amount in minor units or
-- "30.00"), so that the notifications answering it are read as such.
-- client:refund records its own; record those made elsewhere with this.
function trustly.record_refund(store, orderid, amount, currency)
    if not is_store(store) then error("trustly.record_refund: bad argument #1 'store' (get and set expected)", 2) end
    local minor = type(currency) == "string" and minor_units(amount, currency)
    if type(orderid) ~= "string" or orderid == "" or not minor then
        return nil, "a refund needs an OrderID, a positive amount and its currency"
    end
    store:set(refund_key(orderid, minor, currency), "1")
    return true
end

-- The refund this notification answers, if the store knows of one: same
-- order, same amount and currency.
local function known_refund(store, orderid, amount, currency)
    if not (store and orderid and amount and currency) then return nil end
    if store:get(refund_key(orderid, amount, currency)) then
        return { orderid = orderid, amount = amount, currency = currency }
    end
end

-- A "1"/"0" flag as text (Trustly sends strings; a number would mean the same).
local function flag(v)
    if type(v) == "number" then return tostring(math.floor(v)) end
    return str(v)
end

-- kind, status and the refund answered, for a verified notification
-- (orderid and notificationid: data's, where they are strings).
local function meaning(method, data, amount, currency, orderid, notificationid, store)
    local map = NOTIFICATIONS[method]
    local kind, status = map[1], map[2]
    if kind == "account" then
        -- Trustly's account notification tells the status of a direct-debit
        -- mandate (active or inactive), or describes the account a deposit
        -- came from: only an active mandate authorizes charging it.
        local mandate = type(data.attributes) == "table" and flag(data.attributes.directdebitmandate) or nil
        if mandate == "1" then
            status = "authorized"
        elseif mandate ~= nil then
            status = "canceled"
        else
            status = flag(data.verified) == "1" and "succeeded" or "pending"
        end
        return kind, status
    end
    if data.refund ~= nil and flag(data.refund) == "1" and REFUND_STATUS[method] then
        return "refund", REFUND_STATUS[method], { orderid = orderid, amount = amount, currency = currency }
    end
    if method == "credit" and store and orderid then
        -- "If the refund fails, Trustly will send a Credit notification" on
        -- the deposit's order: a credit for the amount of a refund made on it
        -- is that refund failing (a shop refunds what was credited), unless
        -- it is the credit remembered as the deposit's (delivered again). An
        -- order's first credit not answering a refund is the deposit's.
        local first = store:get(STORE_PREFIX .. "credit:" .. orderid)
        local refund = first ~= notificationid and known_refund(store, orderid, amount, currency)
        if refund then return "refund", "failed", refund end
        if first == nil and notificationid then store:set(STORE_PREFIX .. "credit:" .. orderid, notificationid) end
    elseif method == "payoutconfirmation" then
        local refund = known_refund(store, orderid, amount, currency)
        if refund then return "refund", "refunded", refund end
    end
    return kind, status
end

-- The general path: any text, and what is wrong with it -> method, uuid,
-- data (plain) | nil, err.
local function verified_notification(raw, key)
    local doc = decode(raw)
    local params = type(doc) == "table" and doc.params
    if type(params) ~= "table" or type(doc.method) ~= "string" or type(params.uuid) ~= "string" then
        return sig_error("not a Trustly notification (a JSON-RPC request with method and params.uuid)", { raw = raw:sub(1, 300) })
    end
    local method, uuid, data = doc.method, params.uuid, params.data
    local ok, verr = verify_with(key, method, uuid, data, params.signature)
    if not ok then
        verr.message = "the " .. method .. " notification failed verification: " .. verr.message
        verr.method, verr.uuid, verr.raw = method, uuid, raw
        return nil, verr
    end
    if not NOTIFICATIONS[method] then
        return nil, errors.new("validation", ("a signed notification with a method luapay does not know: %s"):format(method),
            { code = "unsupported", method = method, uuid = uuid, raw = raw, data = plain(data) })
    end
    return method, uuid, type(data) == "table" and plain_owned(data) or {} -- doc is this call's own
end

local trustly_notification, to_minor = core.trustly_notification, core.to_minor
--- What core.trustly_notification picks of data for the event (the C core
-- knows no provider's field names): the amount and its currency first,
-- then the other members the event is made of; and the names the event
-- reads too.
local NOTIFICATION_PLAN = core.trustly_notification_plan(
    { "amount", "currency", "orderid", "messageid", "notificationid", "enduserid" },
    { "attributes", "timestamp", "accountid", "verified", "refund" })
trustly.NOTIFICATION_PLAN = NOTIFICATION_PLAN
local event_mt = provider.event_mt
local type, setmetatable = type, setmetatable -- upvalues: no lookup in _ENV on each notification

-- verify_notification builds its event without provider.make_event's
-- checks (three calls, a tenth of the Lua side under Lua 5.4), which hold
-- by construction: the name is a string, raw is checked first, the amount
-- is core.to_minor's (an integer or nil), and meaning's kinds and statuses,
-- checked here once, are provider's (spec/83 compares with make_event).
do
    local KINDS, STATUSES = {}, {}
    for _, k in ipairs(provider.KINDS) do KINDS[k] = true end
    for _, s in ipairs(provider.STATUSES) do STATUSES[s] = true end
    local kinds, statuses = { "refund" }, { "authorized", "canceled", "succeeded", "pending", "failed", "refunded" }
    for _, map in pairs(NOTIFICATIONS) do kinds[#kinds + 1], statuses[#statuses + 1] = map[1], map[2] end
    for _, s in pairs(REFUND_STATUS) do statuses[#statuses + 1] = s end
    for _, k in ipairs(kinds) do assert(KINDS[k], k) end
    for _, s in pairs(statuses) do assert(STATUSES[s], s) end
end

local function bad_argument(fn, n, name, message)
    error(("trustly.%s: bad argument #%d '%s' (%s)"):format(fn, n, name, message), 3)
end

--- trustly.verify_notification(raw_body, headers, keys) -> event | nil, err
-- Verifies a notification Trustly sent (methods pending, credit, debit,
-- cancel, account, payoutconfirmation) with keys.trustly_public_key (PEM
-- or core.pkey: trustly.keys.test or .live, or the one Trustly gave you)
-- and returns the common event (provider.event)
--   {provider = "trustly", kind, status, merchant_ref = messageid,
--    provider_ref = orderid, amount (minor units), currency, raw (the
--    body string), extra = {method, uuid, notificationid, orderid,
--    messageid, enduserid, data, refund}}
-- with refund = {orderid, amount, currency} when it answers a refund.
-- Trustly signs the body: headers are not read (pass them, or nil).
-- kind: "payment" (pending -> pending, credit -> succeeded, debit ->
-- reversed, cancel -> canceled), "payout" (payoutconfirmation ->
-- succeeded), "account" (attributes.directdebitmandate "1": authorized, an
-- active direct-debit mandate; "0": canceled, no active mandate; without
-- one, succeeded when data.verified is "1", else pending), "refund"
-- (pending; credit or cancel -> failed; debit or payoutconfirmation ->
-- refunded) for a notification flagged refund = "1", or a credit or payout
-- confirmation for the amount of a refund keys.store knows on that order
-- (see trustly.record_refund). The store is also told each order's first
-- credit. Without a store a credit answering a failed refund cannot be told
-- from a payment: give one.
-- Anything that is not a notification signed by Trustly's key is an error
-- of type "signature": answer it with an HTTP error and nothing signed. A
-- signed notification of a method luapay does not know is an error of type
-- "validation" with code "unsupported", method and uuid (it may be
-- acknowledged: client:notification_response takes it).
function trustly.verify_notification(raw, headers, given)
    local fn = "verify_notification"
    if type(raw) ~= "string" then bad_argument(fn, 1, "raw_body", "string expected, got " .. type(raw)) end
    if headers ~= nil and type(headers) ~= "table" then
        bad_argument(fn, 2, "headers", "a table or nil expected, got " .. type(headers))
    end
    if type(given) ~= "table" then
        bad_argument(fn, 3, "keys", "{trustly_public_key = ..., store = ...} expected, got " .. type(given))
    end
    local key, store = given.trustly_public_key, given.store
    if not known_pkeys[key] then -- else a core.pkey already seen: no call
        local kerr
        key, kerr = trustly.load_key(key)
        if not key then bad_argument(fn, 3, "keys", "keys.trustly_public_key: " .. kerr) end
    end
    if store ~= nil and not is_store(store) then bad_argument(fn, 3, "keys", "keys.store: get and set expected") end
    -- A verified notification of a known method in one C pass
    -- (core.trustly_notification, which also picks what the event is made
    -- of); anything else takes the general path, which answers the same for
    -- what the C pass answers (spec/83).
    local ok, method, uuid, data, amount, currency, orderid, messageid, notificationid, enduserid =
        trustly_notification(key, raw, NOTIFICATION_PLAN)
    local map = ok == true and NOTIFICATIONS[method]
    if not map then
        method, uuid, data = verified_notification(raw, key)
        if not method then return nil, uuid end
        currency, orderid, messageid = str(data.currency), str(data.orderid), str(data.messageid)
        notificationid, enduserid = str(data.notificationid), str(data.enduserid)
        amount = currency and str(data.amount) and to_minor(data.amount, currency) or nil
        map = NOTIFICATIONS[method]
    end
    -- meaning's answer without its call where it has nothing to look at:
    -- no account, no refund flag, no store
    local kind, status, refund = map[1], map[2], nil
    if kind == "account" or store or data.refund ~= nil then
        kind, status, refund = meaning(method, data, amount, currency, orderid, notificationid, store)
    end
    local extra = { method = method, uuid = uuid, notificationid = notificationid, orderid = orderid,
        messageid = messageid, enduserid = enduserid, data = data }
    if refund then extra.refund = refund end -- else no store of a nil (a lookup under Lua 5.4)
    -- not a tail call: LuaJIT's trace, stitched at the C call above, cannot
    -- return from a fast function to a lower frame (NYI) and would abort
    local event = setmetatable({ provider = "trustly", kind = kind, status = status, merchant_ref = messageid,
        provider_ref = orderid, amount = amount, currency = currency, raw = raw, extra = extra }, event_mt)
    return event
end

--- trustly.read_notification(raw_body, public_key [, store]) -> event | nil,
-- err: the 0.1 name and form of trustly.verify_notification(raw_body, nil,
-- {trustly_public_key = public_key, store = store}). Deprecated: removed in 0.3.
function trustly.read_notification(raw, public_key, store)
    local key = key_arg(public_key, "read_notification", "public_key", false)
    if type(raw) ~= "string" then
        error("trustly.read_notification: bad argument #1 'raw_body' (string expected, got " .. type(raw) .. ")", 2)
    end
    if store ~= nil and not is_store(store) then
        error("trustly.read_notification: bad argument #3 'store' (get and set expected)", 2)
    end
    return trustly.verify_notification(raw, nil, { trustly_public_key = key, store = store })
end

---------------------------------------------------------------------------
-- Request validation: one compiled schema per method
-- @section request_validation
---------------------------------------------------------------------------

local function merged(...)
    local out = {}
    for i = 1, select("#", ...) do
        for k, v in pairs((select(i, ...))) do out[k] = v end
    end
    return out
end

local CREDENTIALS = {
    Username = { type = "string", required = true, min_len = 1 },
    Password = { type = "string", required = true, min_len = 1, secret = true },
}
local REQUIRED_STRING = { type = "string", required = true, min_len = 1 }
local AMOUNT = { type = "decimal", decimals = 2, positive = true, required = true }
local CURRENCY = { type = "currency", required = true }
local URL = { type = "url", required = true }
local ZERO_ONE = { type = "enum", values = { "0", "1" } }
local END_USER = { type = "any", required = true } -- a string or an integer: checked below
local SHOPPER_STATEMENT = { type = "string", min_len = 1, pattern = "^[-A-Za-z0-9._ ]+$" }
local SENDER_INFORMATION = {
    type = "object",
    fields = {
        Partytype = { type = "enum", values = { "PERSON", "ORGANISATION" }, required = true },
        Firstname = { type = "string" }, Lastname = { type = "string" },
        CountryCode = { type = "country", required = true },
        CustomerID = { type = "string" }, Address = { type = "string" },
        DateOfBirth = { type = "date" },
    },
}
local RECIPIENT_INFORMATION = merged(SENDER_INFORMATION, {})

-- An invoice ID or other merchant reference (ExternalReference): text.
local INVOICE_ID = { type = "string", min_len = 1 }

-- Attributes shared by the methods that open the Trustly checkout.
local CHECKOUT_ATTRIBUTES = {
    Firstname = REQUIRED_STRING, Lastname = REQUIRED_STRING,
    Country = { type = "country", required = true },
    Locale = { type = "locale", required = true },
    SuccessURL = URL, FailURL = URL,
    Email = { type = "email" },
    MobilePhone = { type = "string", pattern = "^\\+?[0-9][-0-9 ()]{4,}$" },
    NationalIdentificationNumber = { type = "string" },
    DateOfBirth = { type = "date" },
    TemplateURL = { type = "url" },
    URLTarget = { type = "string" },
    IP = { type = "ip" },
    ShopperStatement = { type = "string", min_len = 1 },
}

-- Every method the client knows, with `idempotent`: may the same request
-- be sent again once it may have reached Trustly? Yes where Trustly
-- deduplicates it by MessageID (message_id: the client makes one when the
-- caller gives none), where it only reads (Balance) and where doing it twice
-- does what doing it once does (CancelCharge). No for Refund: it has no
-- MessageID, nothing would deduplicate it. A method not listed here is
-- idempotent when its Data carries a MessageID.
local METHODS = {
    Deposit = {
        message_id = true, idempotent = true, amount = "Attributes",
        fields = {
            NotificationURL = URL, EndUserID = END_USER, MessageID = REQUIRED_STRING,
            Attributes = { type = "object", required = true, fields = merged(CHECKOUT_ATTRIBUTES, {
                Currency = CURRENCY,
                Amount = { type = "decimal", decimals = 2, positive = true },
                SuggestedMinAmount = { type = "decimal", decimals = 2, positive = true },
                SuggestedMaxAmount = { type = "decimal", decimals = 2, positive = true },
                RequestKYC = ZERO_ONE,
                AccountID = { type = "string" },
                RecipientInformation = RECIPIENT_INFORMATION,
                -- 001 seed, "Pay by invoice": "include an invoice ID in attribute ExternalReference"
                ExternalReference = INVOICE_ID,
            }) },
        },
    },
    SelectAccount = {
        message_id = true, idempotent = true,
        fields = {
            NotificationURL = URL, EndUserID = END_USER, MessageID = REQUIRED_STRING,
            Attributes = { type = "object", required = true, fields = merged(CHECKOUT_ATTRIBUTES, {
                RequestDirectDebitMandate = ZERO_ONE,
                Email = { type = "email", required_if = { field = "RequestDirectDebitMandate", equals = "1" } },
            }) },
        },
    },
    Refund = {
        idempotent = false, amount = "Data",
        -- No MessageID: nothing but the UUID would deduplicate a resent
        -- refund, so luapay never resends one that may have arrived.
        fields = {
            OrderID = REQUIRED_STRING, Amount = AMOUNT, Currency = CURRENCY,
            Attributes = { type = "object", fields = { ExternalReference = { type = "string" } } },
        },
    },
    Charge = {
        message_id = true, idempotent = true, amount = "Data",
        fields = {
            AccountID = REQUIRED_STRING, NotificationURL = URL, EndUserID = END_USER, MessageID = REQUIRED_STRING,
            Amount = AMOUNT, Currency = CURRENCY,
            Attributes = { type = "object", required = true, fields = {
                ShopperStatement = merged(SHOPPER_STATEMENT, { required = true }),
                Email = { type = "email", required = true },
                PaymentDate = { type = "date" },
                ExternalReference = { type = "string" },
            } },
        },
    },
    CancelCharge = {
        idempotent = true,
        fields = { OrderID = REQUIRED_STRING },
    },
    AccountPayout = {
        message_id = true, idempotent = true, amount = "Data",
        fields = {
            NotificationURL = URL, AccountID = REQUIRED_STRING, EndUserID = END_USER, MessageID = REQUIRED_STRING,
            Amount = AMOUNT, Currency = CURRENCY,
            Attributes = { type = "object", required = true, fields = {
                ShopperStatement = { type = "string", required = true, min_len = 1 },
                SenderInformation = SENDER_INFORMATION,
                ExternalReference = { type = "string" },
            } },
        },
    },
    Balance = { idempotent = true, fields = {} },
}

for _, m in pairs(METHODS) do
    m.schema = core.schema({ type = "object", fields = merged(CREDENTIALS, m.fields) })
end
local GENERIC_SCHEMA = core.schema({ type = "object", fields = CREDENTIALS })
trustly.METHODS = METHODS

-- Values Trustly's serialization cannot carry faithfully, anywhere in Data:
-- booleans (the official clients disagree on their text: send "1"/"0"),
-- functions and userdata, tables mixing array and object keys.
local function check_values(v, path, out)
    local t = type(v)
    if t == "boolean" then
        out[#out + 1] = violation(path, "type", "must not be a boolean (Trustly takes \"1\" or \"0\")")
    elseif t == "table" then
        local mt = getmetatable(v)
        if mt == number_mt then return end
        local count, strings = 0, 0
        for k in pairs(v) do
            count = count + 1
            if type(k) == "string" then strings = strings + 1 end
        end
        if strings > 0 and strings ~= count or strings == 0 and count ~= #v then
            out[#out + 1] = violation(path, "type", "mixes array and object keys")
            return
        end
        for k, x in pairs(v) do
            local sub = type(k) == "string" and (path == "" and k or path .. "." .. k) or ("%s[%d]"):format(path, k)
            check_values(x, sub, out)
        end
    elseif t == "function" or t == "thread" or (t == "userdata" and v ~= null) then
        out[#out + 1] = violation(path, "type", "a " .. t .. " cannot be sent")
    end
end

local function copy(v) return provider.copy(v, "trustly.prepare") end

-- Amount in minor units -> Trustly's decimal string, with the Currency next
-- to it (Data.Currency, or Attributes.Currency for Deposit).
local function convert_amount(Data, where, out)
    local holder = where == "Data" and Data or Data.Attributes
    if type(holder) ~= "table" then return end
    local amount = holder.Amount
    if type(amount) ~= "number" and not (type(amount) == "table" and getmetatable(amount) == number_mt) then return end
    local path = where == "Data" and "Amount" or "Attributes.Amount"
    if type(amount) == "table" then amount = tonumber(amount[1]) end
    if not is_integer(amount) then
        if amount == math.floor(amount) and amount - amount == 0 then -- whole, past 2^53 (LuaJIT)
            out[#out + 1] = violation(path, "range", "must be a positive amount within 2^53 minor units")
            return
        end
        out[#out + 1] = violation(path, "type",
            "an amount is an integer in minor units or a decimal string such as \"103.00\", not a float")
        return
    end
    local currency = holder.Currency
    local cur = type(currency) == "string" and core.currency(currency)
    if not cur then
        out[#out + 1] = violation(path, "format", "an amount in minor units needs a valid Currency to be converted")
        return
    end
    local text = core.to_decimal(amount, currency)
    if not text then
        out[#out + 1] = violation(path, "range", "must be a positive amount within 2^53 minor units")
        return
    end
    holder.Amount = text
end

local function path_less(a, b)
    if a.path ~= b.path then return a.path < b.path end
    return a.code < b.code
end

--- trustly.prepare(method, data, username, password) -> Data | nil, err
-- The Data that will be signed and sent: a copy of data with the
-- credentials, a MessageID where the method takes one (a new UUID when the
-- caller gives none), amounts in minor units converted to decimal strings,
-- Refund's Attributes as null when absent; validated against the method's
-- schema. A bad request gives a "validation" error listing every field.
function trustly.prepare(method, data, username, password)
    if data ~= nil and type(data) ~= "table" then
        error(("trustly.prepare: bad argument #2 'data' (a table of %s's Data expected, got %s)"):format(
            tostring(method), type(data)), 3)
    end
    local spec = METHODS[method]
    local Data = copy(data or {})
    Data.Username, Data.Password = username, password
    local custom = {}
    if spec then
        if spec.message_id and Data.MessageID == nil then Data.MessageID = core.uuid4() end
        if spec.amount then convert_amount(Data, spec.amount, custom) end
        if method == "Refund" and Data.Attributes == nil then Data.Attributes = null end
        local e = Data.EndUserID
        if spec.fields.EndUserID and e ~= nil and not (type(e) == "string" and e ~= "" or is_integer(e) and e >= 0) then
            custom[#custom + 1] = violation("EndUserID", "type", "must be a non-empty string or an integer")
        end
        local url = Data.NotificationURL
        if type(url) == "string" and url:find("?", 1, true) then
            custom[#custom + 1] = violation("NotificationURL", "forbidden", "must not contain '?'")
        end
    end
    -- the common case in one C pass, the Lua walk only to say what is wrong
    if not core.trustly_sendable(Data) then check_values(Data, "", custom) end
    local ok, violations = (spec and spec.schema or GENERIC_SCHEMA):validate(Data)
    if ok and #custom == 0 then return Data, spec end
    local seen, fields = {}, {}
    for _, v in ipairs(custom) do
        fields[#fields + 1] = v
        seen[v.path] = true
    end
    for _, v in ipairs(violations or {}) do
        if not seen[v.path] then fields[#fields + 1] = v end
    end
    table.sort(fields, path_less)
    local paths = {}
    for i, f in ipairs(fields) do paths[i] = f.path end
    return nil, errors.new("validation", ("invalid %s request: %s"):format(tostring(method), table.concat(paths, ", ")),
        { fields = fields })
end

---------------------------------------------------------------------------
-- The client
-- @section the_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout (a PEM key's
-- text too; the client signs with the key read from it).
trustly.SECRET_OPTIONS = { "password", "private_key", "private_key_passphrase" }

local Client = errors.secret_fields({}, trustly.SECRET_OPTIONS)
trustly.Client = Client

local function opt_error(name, message)
    provider.option_error("trustly.new", name, message, 4)
end

--- The options trustly.new accepts (its own, then
-- provider.TRANSPORT_OPTIONS); any other raises.
trustly.OPTIONS = provider.options { "username", "password", "private_key", "private_key_passphrase", "environment",
    "trustly_public_key", "base_url", "store", "message_id" }

--- trustly.message_id(method, order [, attempt]) -> a MessageID (UUID-shaped)
-- derived from the merchant's own order reference: the same on every box,
-- so a request retried from another box (or after a crash) carries the
-- MessageID of the first, and Trustly takes it once (637 for the second).
-- attempt (default 1): a new attempt after a definite failure.
function trustly.message_id(method, order, attempt)
    if type(method) ~= "string" or method == "" then bad_argument("message_id", 1, "method", "a method name expected") end
    -- A number as its digits: the same text under Lua 5.4 and LuaJIT, so
    -- every box derives the same MessageID.
    if type(order) == "number" and provider.is_integer(order) then order = provider.digits(order) end
    if type(order) ~= "string" then
        bad_argument("message_id", 2, "order", "the merchant's order reference (string or integer) expected")
    end
    if attempt ~= nil and not (provider.is_integer(attempt) and attempt >= 1) then
        bad_argument("message_id", 3, "attempt", "a whole number from 1 expected")
    end
    local h = core.hex_encode(core.digest("sha256", ("%s\0%s\0%d"):format(method, order, attempt or 1))):sub(1, 32)
    -- a version 5-style UUID (name-based) so it reads like the ones Trustly shows
    local variant = ("89ab"):sub(tonumber(h:sub(17, 17), 16) % 4 + 1, tonumber(h:sub(17, 17), 16) % 4 + 1)
    return ("%s-%s-5%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), variant, h:sub(18, 20), h:sub(21, 32))
end

--- trustly.new(opts) -> client. opts: username, password, private_key (PEM
-- or core.pkey; private_key_passphrase for an encrypted PEM), environment
-- ("test" (default) or "live"), trustly_public_key (PEM or core.pkey;
-- default: the bundled key of the environment), base_url (default: the
-- environment's endpoint), and the transport options
-- (provider.TRANSPORT_OPTIONS). verify = false is refused unless base_url
-- is a loopback host (the sandbox); live also refuses it, and a plain-http
-- base_url. store:
-- where the client keeps what it knows about refunds and credits (see
-- trustly.verify_notification; default trustly.memory_store(), this process
-- only: inside nginx pass an ngx.shared dict, across boxes a luapay.store.redis).
-- message_id: function(method, Data) -> MessageID, used where a method takes
-- one and the caller gives none (instead of a new UUID per call), e.g.
-- function(method, Data) return trustly.message_id(method, my_order_of(Data)) end.
function trustly.new(opts)
    provider.check_options("trustly.new", opts, trustly.OPTIONS)
    if type(opts.username) ~= "string" or opts.username == "" then opt_error("username", "must be a non-empty string") end
    if type(opts.password) ~= "string" or opts.password == "" then opt_error("password", "must be a non-empty string") end
    local env = provider.environment("trustly.new", opts)

    if opts.private_key == nil then opt_error("private_key", "is required (the merchant's RSA private key, PEM or core.pkey)") end
    local private_key, kerr = trustly.load_key(opts.private_key, opts.private_key_passphrase)
    if not private_key then opt_error("private_key", "cannot be read: " .. tostring(kerr)) end
    if not private_key:is_private() then opt_error("private_key", "must be a private key (it signs requests)") end

    local public_key = opts.trustly_public_key or keys[env]
    local pub, perr = trustly.load_key(public_key)
    if not pub then opt_error("trustly_public_key", "cannot be read: " .. tostring(perr)) end

    local url = opts.base_url or trustly.ENDPOINTS[env]
    if type(url) ~= "string" or not url:match("^https?://[^/]") then opt_error("base_url", "must be an http(s) URL") end
    provider.check_urls("trustly.new", opts, env, { { "base_url", url } })

    if opts.store ~= nil and not is_store(opts.store) then
        opt_error("store", "must have get and set (ngx.shared.DICT, trustly.memory_store(), ...)")
    end
    if opts.message_id ~= nil and type(opts.message_id) ~= "function" then
        opt_error("message_id", "must be a function(method, Data) -> MessageID")
    end

    local self = setmetatable({
        username = opts.username,
        environment = env,
        url = url,
        trustly_public_key = pub,
        store = opts.store or trustly.memory_store(),
        message_id = opts.message_id,
        http = provider.pipeline("trustly.new", opts, env == "live"),
    }, Client)
    errors.keep_secrets(self, opts, trustly.SECRET_OPTIONS)
    self.private_key = private_key
    return provider.client(self, opts)
end

Client.__tostring = errors.describe("luapay.trustly client", { "$environment", "user $username", "$url" })

-- How to learn what became of a call that may have reached Trustly but got
-- no signed answer. Trustly offers no status lookup for an order: its
-- notifications tell, and the back office.
local function how_to_find_out(method, Data, idempotent)
    if method == "Refund" then
        return ("check order %s in Trustly's back office before refunding again; Trustly's notifications"
            .. " on the order tell what became of the refund (a credit: it failed; a payoutconfirmation,"
            .. " where enabled: it was paid)"):format(tostring(Data.OrderID))
    end
    if Data.MessageID ~= nil then
        return ("send it again with the same MessageID %q (Trustly takes a MessageID once: a 637 says an"
            .. " earlier request took it), or wait for Trustly's notifications with that messageid")
            :format(tostring(Data.MessageID))
    end
    if idempotent then return "sending it again is safe" end
    return "wait for Trustly's notifications, or check the order in Trustly's back office"
end

-- A call that may have been carried out without a signed answer saying so
-- (see http.mark_unknown).
local function outcome_unknown(err, method, idempotent, find_out)
    return http.mark_unknown(err, idempotent, ("Trustly may have taken the %s request"):format(method), find_out)
end

-- An error of client:call marked with what it sent: the request's uuid
-- (also as request_id), the method and the MessageID. A function of its
-- own, not a closure made on each call: creating one aborts LuaJIT's trace
-- (NYI FNEW) of every call.
local function with_ids(e, uuid, method, message_id)
    e.request_id, e.uuid, e.method, e.message_id = uuid, uuid, method, message_id
    return e
end

--- client:call(method, data) -> result.data | nil, err
-- Any API method: data is Data without the credentials. Known methods are
-- validated against their required fields; other methods only for values
-- that cannot be signed faithfully. A request is resent (same UUID, same
-- MessageID: Trustly deduplicates it) only where METHODS declares it
-- idempotent; never a Refund once it may have arrived.
--
-- Only Trustly's signed answer says what became of a request: its result,
-- or its refusal (a "provider" error with signed = true). Anything else
-- once the request may have reached Trustly (a lost answer, an unsigned
-- error document, an answer that is not JSON-RPC or whose signature fails,
-- any HTTP status but a 429) leaves the outcome unknown: the error has sent
-- = true and says how to find out; for a call that is not idempotent also
-- retryable = false. Errors carry request_id (= uuid), method and message_id.
--
-- ERROR_DUPLICATE_MESSAGE_ID (637) on a resent request whose earlier
-- attempt may have reached Trustly (the pipeline's delivered_before) comes
-- back with replayed = true: that attempt probably took the MessageID.
function Client:call(method, data)
    if type(method) ~= "string" or not method:match("^%a+$") then
        error(("trustly.Client:call: bad argument #1 'method' (a method name such as \"Deposit\" expected, got %s)")
            :format(type(method) == "string" and ("%q"):format(method) or type(method)), 2)
    end
    if self.message_id and type(data) == "table" and data.MessageID == nil and METHODS[method]
        and METHODS[method].message_id then
        data = copy(data)
        data.MessageID = self.message_id(method, data) -- the merchant's, the same from every box
    end
    local Data, spec_or_err = trustly.prepare(method, data, self.username, self.password)
    if not Data then return nil, spec_or_err end
    -- Known before it is sent: a credit answering it may come at any time.
    if method == "Refund" then trustly.record_refund(self.store, Data.OrderID, Data.Amount, Data.Currency) end
    local spec = spec_or_err
    local idempotent
    if spec then idempotent = spec.idempotent == true else idempotent = Data.MessageID ~= nil end
    local find_out = how_to_find_out(method, Data, idempotent)

    local uuid = core.uuid4()
    local body = trustly.request(method, uuid, Data, self.private_key)
    local res, err = self.http:request{
        method = "POST", url = self.url, body = body, decode = false, idempotent = idempotent, find_out = find_out,
        headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    }
    local message_id = Data.MessageID
    if not res then
        -- the pipeline has marked a call that is not idempotent
        if idempotent and err.sent and (err.type == "network" or err.type == "timeout" or err.type == "http") then
            outcome_unknown(err, method, true, find_out)
        end
        return nil, with_ids(err, uuid, method, message_id)
    end
    local result, aerr = trustly.read_answer(res.body or "", method, uuid, self.trustly_public_key)
    if result then return result end
    if aerr.signed then -- Trustly's own refusal
        aerr.http_status, aerr.attempts, aerr.elapsed = res.status, res.attempts, res.elapsed
        aerr.sent, aerr.delivered_before = true, res.delivered_before
        if aerr.code == 637 and res.delivered_before then
            aerr.replayed = true
            aerr.message = aerr.message .. ("; an earlier attempt of this request got no signed answer and may have"
                .. " reached Trustly, taking the MessageID (else another request used it): look the order up by"
                .. " MessageID %q in its notifications or Trustly's back office"):format(tostring(Data.MessageID))
        end
        return nil, with_ids(aerr, uuid, method, message_id)
    end
    if res.status ~= 200 and aerr.type ~= "signature" then
        -- say what HTTP said, and what an unsigned error document says
        local said = aerr.type == "provider" and aerr.name or nil
        aerr = http.status_error(res, "Trustly")
        aerr.message = ("the answer to %s was HTTP %d%s"):format(method, res.status,
            said and (", an unsigned error that proves nothing: " .. said) or "")
        if res.status == 429 then return nil, with_ids(aerr, uuid, method, message_id) end -- refused unread
    else
        aerr.http_status, aerr.attempts, aerr.elapsed = res.status, res.attempts, res.elapsed
        aerr.delivered_before = res.delivered_before
    end
    return nil, with_ids(outcome_unknown(aerr, method, idempotent, find_out), uuid, method, message_id)
end

--- client:deposit(data) -> {orderid, url} | nil, err
-- Data: NotificationURL, EndUserID, MessageID (made when absent), Attributes
-- {Currency, Amount (minor units or "103.00"), Firstname, Lastname, Country,
-- Locale, SuccessURL, FailURL, Email, MobilePhone, ShopperStatement, IP,
-- ExternalReference (pay by invoice: the invoice ID, non-empty text), ...}.
-- Trustly Express: the 001 seed only says "Integrate Trustly Express. See
-- Trustly Express API" and names none of its attributes, so luapay checks
-- none; attributes it does not know are sent (and signed) as given.
function Client:deposit(data) return self:call("Deposit", data) end

--- client:refund{OrderID, Amount, Currency [, Attributes = {ExternalReference}]}
-- -> {orderid, result = "1"} | nil, err. The refund (this or any Refund
-- through client:call) is told to the client's store once validated, before
-- it is sent, so that the notifications answering it (a credit when it
-- fails, a payout confirmation when it is paid) are read as such.
function Client:refund(data) return self:call("Refund", data) end

--- client:record_refund(orderid, amount, currency) -> true | nil, why:
-- a refund made elsewhere (another process, the back office), for the
-- store (see trustly.record_refund).
function Client:record_refund(orderid, amount, currency)
    return trustly.record_refund(self.store, orderid, amount, currency)
end

--- client:select_account(data) -> {orderid, url} | nil, err
-- Attributes.RequestDirectDebitMandate = "1" (with Email) registers a
-- direct debit mandate; the account notification then carries accountid.
function Client:select_account(data) return self:call("SelectAccount", data) end

--- client:charge{AccountID, NotificationURL, EndUserID, MessageID, Amount,
-- Currency, Attributes = {ShopperStatement, Email, PaymentDate}} ->
-- {orderid, result = "1"} or a business rejection {result = "0", rejected = "ERROR_..."}
function Client:charge(data) return self:call("Charge", data) end

--- client:cancel_charge{OrderID} -> {result = "1", rejected = null} | rejection | nil, err
function Client:cancel_charge(data) return self:call("CancelCharge", data) end

--- client:account_payout{NotificationURL, AccountID, EndUserID, MessageID,
-- Amount, Currency, Attributes = {ShopperStatement, SenderInformation}} -> {orderid, result}
function Client:account_payout(data) return self:call("AccountPayout", data) end

--- client:balance() -> array of {currency, balance} | nil, err
-- Trustly asks for at most one call every 15 minutes.
function Client:balance() return self:call("Balance", {}) end

--- client:notification(raw_body [, headers]) -> event | nil, err: the
-- notification verified with the client's Trustly key and read with its
-- store (trustly.verify_notification).
function Client:notification(raw_body, headers)
    return trustly.verify_notification(raw_body, headers, { trustly_public_key = self.trustly_public_key,
        store = self.store })
end

-- The method and uuid of what Trustly signed: a verified event, or the
-- "unsupported" error of a signed notification of a method luapay does
-- not know. Anything else (nil, a signature error, any table) gives nil:
-- nothing is signed for what Trustly did not send.
local function signed_notification(event)
    if getmetatable(event) == provider.event_mt and event.provider == "trustly" then
        return event.extra.method, event.extra.uuid
    end
    if errors.is(event, "validation") and event.code == "unsupported" and type(event.method) == "string"
        and type(event.uuid) == "string" then
        return event.method, event.uuid
    end
end

--- client:notification_response(event, received) -> {status, headers, body}:
-- what to answer Trustly, which sends a notification again until it gets a
-- valid answer. received true (recorded): HTTP 200, the JSON-RPC answer
-- with status "OK" signed with the merchant's key (application/json), the
-- notification is done. received false (not recorded): HTTP 500 with
-- nothing signed, not a valid answer, so Trustly sends it again. No
-- verified event (nil, or a signature error): HTTP 400, nothing signed.
-- A signed "FAILED" is no request to send again but a refusal (on a debit
-- of a withdrawal it aborts the withdrawal): build it with
-- trustly.notification_response(method, uuid, "FAILED", private_key).
--
-- Deprecated, until 0.3: client:notification_response(note, "OK" |
-- "FAILED") -> the signed JSON text (the 0.1 form: a string second
-- argument), note any table with method and uuid.
function Client:notification_response(event, received)
    if type(received) == "string" then
        if type(event) ~= "table" or type(event.method) ~= "string" or type(event.uuid) ~= "string" then
            error("trustly.Client:notification_response: bad argument #1 'event' (the notification: a table with"
                .. " method and uuid)", 2)
        end
        if received ~= "OK" and received ~= "FAILED" then
            error("trustly.Client:notification_response: bad argument #2 'status' (\"OK\" or \"FAILED\" expected)", 2)
        end
        return trustly.notification_response(event.method, event.uuid, received, self.private_key)
    end
    local method, uuid = signed_notification(event)
    if method and getmetatable(event) ~= provider.event_mt then -- a signed notification luapay does not map
        event = provider.event { provider = "trustly", kind = "other", status = "pending", raw = event.raw or "" }
    end
    local answer = provider.notification_response("trustly.Client:notification_response", "trustly", event, received)
    if answer.status == 200 then -- signed here, not in a closure made on each call (it aborts LuaJIT's trace)
        answer.body = trustly.notification_response(method, uuid, "OK", self.private_key)
        answer.headers["Content-Type"] = "application/json"
    end
    return answer
end

provider.lifetime(Client, "trustly")

return trustly
