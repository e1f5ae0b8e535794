--- luapay.begateway: beGateway's DWH transaction export, streamed page by
-- page, its gateway notifications, and a reconciliation CSV writer.
--
--   local begateway = require "luapay.begateway"
--   local dwh = begateway.new{ psp_id = "1", secret = "...", dwh_url = "https://dwh.example.com" }
--   for tx, err in dwh:export{
--       date_from = "2024-06-03T00:00:00", date_to = "2024-06-03T23:59:59",
--       response_parameters = { "main", "gateway", "commission" },
--       filter = { type = { "payment", "refund" }, currency = "EUR,USD" },
--       limit = 1000,
--   } do
--       if not tx then error(err) end        -- err.resume continues there
--       print(tx.uid, tx.status, tx.amount, tx.currency)
--   end
--
-- POST {dwh_url}/api/v2/transactions/export, HTTP Basic with the PSP id and
-- secret, JSON in and out. The export follows the cursor: each answer's
-- pagination.next_date and next_uid become the next request's date_from and
-- uid_from until has_next_page is false, in both orders, as the seed's
-- date_from says ("Must equal next_date value from the response to the
-- previous request"). In descending order the request then no longer holds
-- the period's start, so the client drops what is older than it and stops.
-- Pages are decoded by core.json_decode: integers stay integers on every VM.
local core = require "luapay.core"
local http = require "luapay.http"
local provider = require "luapay.provider"
local errors = require "luapay.errors"
local pager = require "luapay.pager"

local begateway = {}

begateway.EXPORT_PATH = "/api/v2/transactions/export"
begateway.MAX_DAYS = 90
begateway.MAX_LIMIT = 1000

-- The seed's value lists.
begateway.TYPES = {
    "authorization", "payment", "tokenization", "payout", "capture", "void", "refund", "credit", "chargeback",
}
begateway.DATE_TYPES = { "created_at", "paid_at", "updated_at" }
begateway.METHOD_TYPES = { "credit_card", "alternative" }
begateway.SORT_ORDERS = { "asc", "desc" }
begateway.STATUSES = { "successful", "failed", "incomplete", "error", "pending" }
begateway.RESPONSE_GROUPS = {
    "main", "shop", "merchant", "gateway", "provider_raw", "links", "three_d_secure_verification",
    "method", "customer", "recipient", "be_protected_verification", "smart_routing_verification",
    "avs_cvc_verification", "provider_response", "additional_data", "commission", "adjustments",
}

local DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"
local ID = { type = "integer", min = 1 }

-- The export request after normalization (comma-joined strings split into
-- arrays), compiled once.
local EXPORT = core.schema{
    type = "object", additional = false,
    fields = {
        date_from = { type = "string", required = true, pattern = DATE_PATTERN },
        date_to = { type = "string", required = true, pattern = DATE_PATTERN },
        date_type = { type = "enum", values = begateway.DATE_TYPES },
        response_parameters = { type = "array", min_items = 1, items = { type = "enum", values = begateway.RESPONSE_GROUPS } },
        limit = { type = "integer", min = 1, max = begateway.MAX_LIMIT },
        sort_order = { type = "enum", values = begateway.SORT_ORDERS },
        sort_direction = { type = "enum", values = begateway.SORT_ORDERS }, -- the seed's example's name
        filter = {
            type = "object", additional = false,
            fields = {
                merchant_id = { type = "array", min_items = 1, items = ID },
                shop_id = { type = "array", min_items = 1, items = ID },
                gateway_id = { type = "array", min_items = 1, items = ID },
                type = { type = "array", min_items = 1, items = { type = "enum", values = begateway.TYPES } },
                currency = { type = "array", min_items = 1, items = { type = "currency" } },
                test = { type = "boolean" }, -- "true"/"false" (the seed's example) are read as booleans
                method_type = { type = "enum", values = begateway.METHOD_TYPES },
            },
        },
        resume = {
            type = "object", additional = false,
            fields = { date = { type = "string", min_len = 1 }, uid = { type = "string", min_len = 1 } },
        },
    },
}

local LIST_FILTERS = { merchant_id = "id", shop_id = "id", gateway_id = "id", type = "word", currency = "word" }

---------------------------------------------------------------------------
-- Helpers
-- @section helpers
---------------------------------------------------------------------------

local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math.floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- "YYYY-MM-DDThh:mm:ss" -> seconds since the epoch (UTC), already checked
-- by the schema pattern and core.check("datetime").
local function epoch(s)
    local y, mo, d, h, mi, se = s:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)$")
    return days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(se)
end

-- A list filter as given (array, comma-joined string, one value) -> array.
local function split_list(v, kind)
    local items
    if type(v) == "table" then
        items = {}
        for i, x in ipairs(v) do items[i] = x end
    elseif type(v) == "string" then
        items = {}
        for part in (v .. ","):gmatch("([^,]*),") do items[#items + 1] = (part:gsub("^%s+", ""):gsub("%s+$", "")) end
    else
        items = { v }
    end
    if kind == "id" then
        for i, x in ipairs(items) do
            if type(x) == "string" and x:match("^%d+$") and #x <= 15 then items[i] = tonumber(x) end
        end
    end
    return items
end

local validation_error, violation = errors.validation, errors.violation

local function id_string(v) return provider.digits(provider.integer(v) or v) end

local function join(list, kind)
    local parts = {}
    for i, v in ipairs(list) do parts[i] = kind == "id" and id_string(v) or v end
    return table.concat(parts, ",")
end

--- begateway.export_request(params) -> normalized request, wire body | nil,
-- err. Pure: what client:export sends for its first page (without the
-- cursor), after checking every field. Exposed for tests and logging.
function begateway.export_request(params)
    if type(params) ~= "table" then
        error("begateway.export_request: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local norm = {}
    for k, v in pairs(params) do norm[k] = v end
    if type(params.response_parameters) == "string" then
        norm.response_parameters = split_list(params.response_parameters, "word")
    end
    if type(params.filter) == "table" then
        local f = {}
        for k, v in pairs(params.filter) do
            f[k] = LIST_FILTERS[k] and split_list(v, LIST_FILTERS[k]) or v
        end
        -- 003 seed, request example: "test": "false"
        if f.test == "true" or f.test == "false" then f.test = f.test == "true" end
        norm.filter = f
    end
    local ok, violations = EXPORT:validate(norm)
    violations = ok and {} or violations
    -- Dates the pattern lets through must also be real, in order, and
    -- within 90 days of each other.
    local bad = {}
    for _, v in ipairs(violations) do bad[v.path] = true end
    for _, name in ipairs({ "date_from", "date_to" }) do
        if not bad[name] and type(norm[name]) == "string" and not core.check("datetime", norm[name]) then
            violations[#violations + 1] = violation(name, "format", "is not a real date and time")
            bad[name] = true
        end
    end
    -- A cursor is {} (the start of the period) or {date, uid}, as err.resume gives it.
    if type(norm.resume) == "table" and norm.resume.uid ~= nil and norm.resume.date == nil then
        violations[#violations + 1] = violation("resume.date", "required", "is required with resume.uid")
    end
    if not bad.date_from and not bad.date_to and norm.date_from and norm.date_to then
        local from, to = epoch(norm.date_from), epoch(norm.date_to)
        if from > to then
            violations[#violations + 1] = violation("date_from", "range", "must not be after date_to")
        elseif to - from > begateway.MAX_DAYS * 86400 then
            violations[#violations + 1] = violation("date_from", "range", "must be within " .. begateway.MAX_DAYS .. " days before date_to")
        end
    end
    if norm.sort_order and norm.sort_direction and norm.sort_order ~= norm.sort_direction then
        violations[#violations + 1] = violation("sort_direction", "conflict", "must equal sort_order when both are given")
    end
    if #violations > 0 then return nil, validation_error("begateway export", violations) end
    -- The seed's table names it options.sort_order, its example
    -- options.sort_direction: the one given is sent under its own name.
    local order = norm.sort_order or norm.sort_direction

    local filter = { date_from = norm.date_from, date_to = norm.date_to, date_type = norm.date_type }
    for k, v in pairs(norm.filter or {}) do
        filter[k] = LIST_FILTERS[k] and join(v, LIST_FILTERS[k]) or v
    end
    local body = { filter = filter }
    if norm.response_parameters then body.response_parameters = table.concat(norm.response_parameters, ",") end
    if norm.limit or order then
        body.options = { limit = norm.limit and tonumber(id_string(norm.limit)), sort_order = norm.sort_order,
            sort_direction = norm.sort_direction }
    end
    norm.order = order or "asc"
    return norm, body
end

---------------------------------------------------------------------------
-- The client
-- @section the_client
---------------------------------------------------------------------------

--- The options that are secrets: kept in luapay.errors' vault, not in the
-- client table, and redacted from every error and printout (also as the
-- HTTP Basic credentials psp_id:secret and shop_id:shop_key).
begateway.SECRET_OPTIONS = { "secret", "shop_key" }

local Client = errors.secret_fields({}, begateway.SECRET_OPTIONS, { secret = "psp_id", shop_key = "shop_id" })
begateway.Client = Client
Client.__tostring = errors.describe("luapay.begateway client", { "$environment", "psp $psp_id", "$dwh_url" })

-- An id option: a positive integer or a string without ':' (HTTP Basic's separator).
local function id_option(opts, name, required)
    local v = opts[name]
    if v == nil then
        if required then provider.option_error("begateway.new", name, "is required", 4) end
        return nil
    end
    if type(v) == "number" and v == math.floor(v) and v > 0 then return id_string(v) end
    if type(v) == "string" and v ~= "" and not v:find(":", 1, true) then return v end
    provider.option_error("begateway.new", name, "must be an id (a positive integer or a string without ':')", 4)
end

--- begateway.public_key(key) -> core.pkey | nil, err. The shop's public key
-- as the back office shows it (base64 DER, no armor), as PEM, or a
-- core.pkey already.
function begateway.public_key(key)
    if type(key) == "userdata" then return key end
    if type(key) ~= "string" then return nil, "public key must be a PEM or base64 string" end
    local pem = key
    if not key:find("-----BEGIN", 1, true) then
        local b64 = key:gsub("%s+", "")
        local lines = {}
        for i = 1, #b64, 64 do lines[#lines + 1] = b64:sub(i, i + 63) end
        pem = "-----BEGIN PUBLIC KEY-----\n" .. table.concat(lines, "\n") .. "\n-----END PUBLIC KEY-----\n"
    end
    return core.pkey(pem)
end

--- The options begateway.new accepts (its own, then
-- provider.TRANSPORT_OPTIONS); any other raises.
begateway.OPTIONS = provider.options { "psp_id", "secret", "dwh_url", "shop_id", "shop_key", "public_key",
    "accept_test", "environment" }

--- begateway.new{psp_id, secret, dwh_url, environment = "test" | "live",
-- shop_id, shop_key, public_key, accept_test, and the transport options
-- (provider.TRANSPORT_OPTIONS)} -> client. beGateway has one endpoint per
-- shop, so dwh_url is required in both environments; "live" requires it
-- to be https and refuses verify = false (which is refused anyway unless
-- dwh_url is a loopback host, the sandbox). accept_test stays its own
-- choice in either environment.
-- psp_id and secret authenticate the DWH export. For notifications:
-- public_key (the shop's RSA key: Content-Signature is then required), or
-- the Basic credentials shop_id/shop_key (default: psp_id/secret).
function begateway.new(opts)
    provider.check_options("begateway.new", opts, begateway.OPTIONS)
    local self = setmetatable({ environment = provider.environment("begateway.new", opts) }, Client)
    self.psp_id = id_option(opts, "psp_id", true)
    self.secret = provider.string_option("begateway.new", opts, "secret", true)
    local url = provider.string_option("begateway.new", opts, "dwh_url", true)
    if not url:match("^https?://[^/]") then error("begateway.new: option 'dwh_url' must be an http(s) URL", 2) end
    self.dwh_url = url:gsub("/+$", "")
    provider.check_urls("begateway.new", opts, self.environment, { { "dwh_url", self.dwh_url } })
    self.shop_id = id_option(opts, "shop_id", false)
    self.shop_key = provider.string_option("begateway.new", opts, "shop_key", false)
    if (self.shop_id == nil) ~= (self.shop_key == nil) then
        error("begateway.new: options 'shop_id' and 'shop_key' go together", 2)
    end
    -- accept_test = true: client:webhook also returns test transactions (no
    -- money moved); by default they are refused.
    if opts.accept_test ~= nil and type(opts.accept_test) ~= "boolean" then
        error("begateway.new: option 'accept_test' must be a boolean", 2)
    end
    self.accept_test = opts.accept_test == true
    if opts.public_key ~= nil then
        local key, err = begateway.public_key(opts.public_key)
        if not key then error("begateway.new: option 'public_key' is not a usable RSA public key (" .. tostring(err) .. ")", 2) end
        self.public_key = key
    end
    self.http = provider.pipeline("begateway.new", opts, self.environment == "live")
    return provider.client(self, opts)
end

-- The error for an answer that is not a page of transactions.
local function response_error(res)
    local body = type(res.json) == "table" and res.json or {}
    local message = res.status >= 400 and res.status < 500 and (body.message or body.error)
    return http.refused(res, "beGateway DWH",
        type(message) == "string" and "beGateway DWH refused the export: " .. message or nil, body.code)
end

local function malformed(res, what)
    return http.malformed(res, "beGateway DWH answered an unexpected export page: " .. what)
end

--- client:export{date_from, date_to, date_type, response_parameters,
-- filter = {merchant_id, shop_id, gateway_id, type, currency, test,
-- method_type}, limit, sort_order (or sort_direction, the seed example's
-- name), resume} -> iterator over transactions.
-- List filters take a Lua array or a comma-joined string. Everything is
-- checked before the first request: a bad field makes the iterator yield a
-- validation error and send nothing.
function Client:export(params)
    if type(params) ~= "table" then
        error("begateway.Client:export: bad argument #1 'params' (table expected, got " .. type(params) .. ")", 2)
    end
    local norm, body = begateway.export_request(params)
    if not norm then return pager.new(nil, nil, body) end
    local desc = norm.order == "desc"
    local dt, period_start = body.filter.date_type or "created_at", body.filter.date_from
    local url = self.dwh_url .. begateway.EXPORT_PATH
    local auth = { self.psp_id, self.secret }
    local client = self.http

    local function fetch(cursor)
        local filter = {}
        for k, v in pairs(body.filter) do filter[k] = v end
        if cursor.date then
            -- 003 seed, date_from and uid_from: next_date and next_uid of the previous answer
            filter.date_from, filter.uid_from = cursor.date, cursor.uid
        end
        local res, err = client:request{
            method = "POST", url = url, basic = auth, idempotent = true, -- a read: resending is harmless
            json = { response_parameters = body.response_parameters, options = body.options, filter = filter },
            decode = false,
        }
        if not res then return nil, nil, err end
        -- Exact numbers: amount 3000 stays the integer 3000 under Lua 5.4.
        local doc = type(res.body) == "string" and core.json_decode(res.body) or nil
        if res.status ~= 200 then
            res.json = doc
            return nil, nil, response_error(res)
        end
        local data = type(doc) == "table" and doc.data
        if type(data) ~= "table" then return nil, nil, malformed(res, "no data object") end
        local txs, page = data.transactions, data.pagination
        if type(txs) ~= "table" then return nil, nil, malformed(res, "no transactions array") end
        if type(page) ~= "table" then return nil, nil, malformed(res, "no pagination object") end
        if desc and cursor.date then
            -- The answer may run past the period's start: keep what is in it, then stop.
            for k, tx in ipairs(txs) do
                local d = type(tx) == "table" and tx[dt]
                if type(d) == "string" and d:sub(1, 19) < period_start then
                    for j = #txs, k, -1 do txs[j] = nil end
                    return txs, nil
                end
            end
        end
        if page.has_next_page ~= true then return txs, nil end
        if desc and type(page.next_date) == "string" and page.next_date:sub(1, 19) < period_start then
            return txs, nil
        end
        if type(page.next_date) ~= "string" or type(page.next_uid) ~= "string" then
            return nil, nil, malformed(res, "has_next_page without next_date and next_uid")
        end
        if page.next_date == cursor.date and page.next_uid == cursor.uid then
            return nil, nil, malformed(res, "the cursor did not move")
        end
        return txs, { date = page.next_date, uid = page.next_uid }
    end

    local start = norm.resume and { date = norm.resume.date, uid = norm.resume.uid } or {}
    return pager.new(fetch, start)
end

---------------------------------------------------------------------------
-- Notifications
-- @section notifications
---------------------------------------------------------------------------

local integer = provider.integer

-- What each documented transaction type means when it is successful: the
-- money moved as that type says (a refund went back to the customer, a
-- chargeback took a payment back), or nothing moved (an authorization, a
-- tokenization, a void).
local SUCCESSFUL = {
    payment = "succeeded", capture = "succeeded", authorization = "authorized", tokenization = "succeeded",
    payout = "succeeded", credit = "succeeded", void = "canceled", refund = "refunded", chargeback = "reversed",
}
-- Every other status, whatever the type: a failed refund is a failed refund.
-- The seed lists successful, failed, incomplete, error and pending; beGateway's
-- webhook page adds expired (the customer never paid in time).
local UNSUCCESSFUL = {
    failed = "failed", error = "failed", pending = "pending", incomplete = "pending", expired = "canceled",
}

local TYPE_NAMES = table.concat(begateway.TYPES, ", ")
local STATUS_NAMES = table.concat(begateway.STATUSES, ", ") .. ", expired"

-- A field's value for a message: short strings only.
local function shown(v)
    return type(v) == "string" and #v <= 40 and not v:find("[%c']") and (" '" .. v .. "'") or ""
end

-- beGateway's transaction type -> the common kind (its own word stays in
-- extra.type). A credit sends money to the customer's card: a payout. A
-- tokenization stores the customer's card for later charges, moving no
-- money: the customer's means of payment, an account event.
local KIND = {
    payment = "payment", authorization = "authorization", capture = "capture", void = "void", refund = "refund",
    payout = "payout", credit = "payout", chargeback = "chargeback", tokenization = "account",
}

-- tx (and the decoded body it came in, if any) -> the event, or nil and
-- why tx is not a documented transaction. raw: the text as received.
local function read(tx, raw, body)
    if tx.uid == nil or tx.uid == http.null or tx.uid == "" then return nil, "transaction.uid is missing" end
    if type(tx.uid) ~= "string" then return nil, "transaction.uid is not a string" end
    if tx.type == nil or tx.type == http.null then return nil, "transaction.type is missing" end
    if not SUCCESSFUL[tx.type] then
        return nil, "transaction.type" .. shown(tx.type) .. " is not one beGateway documents (" .. TYPE_NAMES .. ")"
    end
    if tx.status == nil or tx.status == http.null then return nil, "transaction.status is missing" end
    if tx.status ~= "successful" and not UNSUCCESSFUL[tx.status] then
        return nil, "transaction.status" .. shown(tx.status) .. " is not one beGateway documents (" .. STATUS_NAMES .. ")"
    end
    if tx.test ~= nil and tx.test ~= http.null and type(tx.test) ~= "boolean" then
        return nil, "transaction.test is not a boolean"
    end
    local amount = integer(tx.amount)
    local currency = type(tx.currency) == "string" and tx.currency ~= "" and tx.currency or nil
    -- A success that moved or reserved money says how much: without it the
    -- event could not be matched against the order.
    if tx.status == "successful" and tx.type ~= "tokenization" then
        if not amount or amount < 0 then return nil, "transaction.amount is not a whole number of minor units" end
        if not currency then return nil, "transaction.currency is missing" end
    end
    local merchant_ref = tx.tracking_id
    if merchant_ref == http.null then merchant_ref = nil end
    -- make_event: provider.event's check of each field's name is a loop,
    -- which breaks LuaJIT's trace of a notification in two.
    return provider.make_event("begateway", KIND[tx.type],
        tx.status == "successful" and SUCCESSFUL[tx.type] or UNSUCCESSFUL[tx.status], merchant_ref, tx.uid, amount,
        currency, raw, { test = tx.test == true, type = tx.type, status = tx.status, transaction = tx, body = body })
end

--- begateway.event(tx [, raw]) -> the common event | nil, err, for a
-- transaction object: an exported one (client:export yields the
-- transactions themselves, for the CSV and reconciliation; this reads
-- one as an event), or a notification's `transaction`. raw: the text it
-- came in; by default the transaction as JSON. kind is the common kind
-- (credit: payout, tokenization: account); extra holds beGateway's own
-- type and status words, test (true for a test transaction: no money
-- moved) and the transaction. A transaction without a documented type and
-- status is a `provider` error naming the field, never an event.
function begateway.event(tx, raw)
    if type(tx) ~= "table" then error("begateway.event: bad argument #1 'tx' (table expected, got " .. type(tx) .. ")", 2) end
    if raw ~= nil and type(raw) ~= "string" then
        error("begateway.event: bad argument #2 'raw' (string or nil expected, got " .. type(raw) .. ")", 2)
    end
    if raw == nil then
        local text, jerr = http.encode_json(tx)
        if not text then return nil, errors.new("provider", "beGateway transaction: not JSON (" .. tostring(jerr) .. ")") end
        raw = text
    end
    local event, why = read(tx, raw)
    if not event then return nil, errors.new("provider", "beGateway transaction: " .. why) end
    return event
end

local header = http.single_header

local function sig_error(message)
    return errors.new("signature", "beGateway notification: " .. message)
end

-- A key or id given as a number (an id) or a string.
local function key_text(v)
    if type(v) == "number" and integer(v) then return id_string(v) end
    return v
end

-- Raises "who: bad argument #3 'keys' (why)" at level (of the caller of
-- notification). A function of its own, not a closure made on each call:
-- creating one aborts LuaJIT's trace (NYI FNEW) of every notification.
local function bad_keys(who, level, why)
    error(("%s: bad argument #3 'keys' (%s)"):format(who, why), level + 2)
end

-- keys[id_name] and keys[key_name] as the Basic pair "id:key", or nil when
-- keys has neither; raises (see bad_keys) when it has half of one.
local function basic_pair(who, level, keys, id_name, key_name)
    local id, key = key_text(keys[id_name]), keys[key_name]
    if id == nil and key == nil then return nil end
    if type(id) ~= "string" or id == "" or type(key) ~= "string" or key == "" then
        bad_keys(who, level, ("%s and %s must both be non-empty strings"):format(id_name, key_name))
    end
    return id .. ":" .. key
end

-- keys -> a public key | nil, and the Basic pair "id:key" | nil: the
-- shop's, else the PSP's. Raises naming who when keys has neither (or
-- half of one), at level (of the caller of notification). No loop over
-- the two pairs: an inner loop breaks LuaJIT's trace of a notification.
local function notification_keys(who, keys, level)
    if type(keys) ~= "table" then bad_keys(who, level, "table expected, got " .. type(keys)) end
    if keys.public_key ~= nil then return keys.public_key end
    local pair = basic_pair(who, level + 1, keys, "shop_id", "shop_key")
        or basic_pair(who, level + 1, keys, "psp_id", "secret")
    if pair then return nil, pair end
    bad_keys(who, level, "public_key, or shop_id and shop_key, or psp_id and secret expected")
end

-- The verified event of a notification, for who: the public function;
-- misuse raises at level (2: notification's caller).
local function notification(who, level, raw_body, headers, keys)
    if type(raw_body) ~= "string" then
        error(("%s: bad argument #1 'raw_body' (string expected, got %s)"):format(who, type(raw_body)), level)
    end
    if type(headers) ~= "table" then
        error(("%s: bad argument #2 'headers' (table expected, got %s)"):format(who, type(headers)), level)
    end
    local public_key, shop = notification_keys(who, keys, level)
    if public_key ~= nil then
        local key, kerr = begateway.public_key(public_key)
        if not key then
            return nil, errors.new("config", "beGateway notification: the public key is not usable (" .. tostring(kerr) .. ")")
        end
        local value, repeated = header(headers, "Content-Signature")
        if repeated then return nil, sig_error("more than one Content-Signature header") end
        if type(value) ~= "string" or value == "" then return nil, sig_error("no Content-Signature header") end
        local sig = core.base64_decode((value:gsub("%s+", "")))
        if not sig then return nil, sig_error("Content-Signature is not base64") end
        if not key:verify(raw_body, sig, "sha256") then return nil, sig_error("Content-Signature does not match the body") end
    else
        local given, why = http.basic_credentials(headers)
        if why == "repeated" then return nil, sig_error("more than one Authorization header") end
        if why == "missing" then return nil, sig_error("no HTTP Basic credentials") end
        if not given then return nil, sig_error("the Basic credentials are not base64") end
        if not core.equal(given, shop) then return nil, sig_error("the Basic credentials are not the shop's") end
    end
    local body, jerr = http.decode_json(raw_body)
    if type(body) ~= "table" or type(body.transaction) ~= "table" then
        return nil, errors.new("provider", "beGateway notification: the body is not a transaction ("
            .. tostring(jerr or "no transaction object") .. ")")
    end
    local event, why = read(body.transaction, raw_body, body)
    if not event then return nil, errors.new("provider", "beGateway notification: " .. why) end
    return event
end

--- begateway.verify_notification(raw_body, headers, keys) -> event | nil,
-- err. Pure (no I/O). raw_body: the POST body exactly as received;
-- headers: the request's (any case; a list value is a repeated header).
-- keys: {public_key = ...} (core.pkey, PEM or the back office's base64
-- DER), or {shop_id = ..., shop_key = ...}, or {psp_id = ..., secret =
-- ...} (a client's default). With a public key the Content-Signature
-- header (base64 RSA PKCS#1 v1.5 SHA-256 over the raw body) is required
-- and final; without one the request's HTTP Basic credentials must be the
-- shop's. A test transaction comes back as an event with extra.test =
-- true: refusing it is the client's (accept_test). The event: see
-- begateway.event; raw is raw_body, extra.body the decoded body.
function begateway.verify_notification(raw_body, headers, keys)
    return notification("begateway.verify_notification", 2, raw_body, headers, keys) -- a tail call: 2 is our caller
end

--- Deprecated (until 0.3): begateway.verify_webhook is
-- begateway.verify_notification (opts were already the keys).
begateway.verify_webhook = begateway.verify_notification

--- client:notification(raw_body, headers) -> event | nil, err:
-- begateway.verify_notification with the client's public_key, or
-- shop_id/shop_key (default psp_id/secret). A test transaction (no money
-- moved) is a `provider` error (code "test_transaction", the event as
-- err.event) unless the client was built with accept_test = true.
function Client:notification(raw_body, headers)
    local keys
    if self.public_key then
        keys = { public_key = self.public_key }
    elseif self.shop_id then
        keys = { shop_id = self.shop_id, shop_key = self.shop_key }
    else
        keys = { psp_id = self.psp_id, secret = self.secret }
    end
    local event, err = notification("begateway.Client:notification", 3, raw_body, headers, keys)
    if event and event.extra.test and not self.accept_test then
        return nil, errors.new("provider", "beGateway notification: transaction" .. shown(event.provider_ref)
            .. " is a test transaction (no money moved), refused: the client was not built with accept_test = true",
            { code = "test_transaction", event = event })
    end
    return event, err
end

--- Deprecated (until 0.3): client:webhook is client:notification.
Client.webhook = Client.notification

--- client:notification_response(event, received) -> {status, headers,
-- body}: what to answer beGateway's POST. received = true (the event is
-- recorded): 200 "OK". received false or nil, or no event (a forged,
-- unreadable or refused notification): 500, for beGateway to send it
-- again. beGateway's documents say neither what it takes as received nor
-- when it sends again: 200 is the answer every sender takes as delivered,
-- and a 5xx the one a sender that retries at all retries on.
function Client:notification_response(event, received)
    return provider.notification_response("begateway.Client:notification_response", "begateway", event, received)
end

---------------------------------------------------------------------------
-- Reconciliation CSV
-- @section reconciliation_csv
---------------------------------------------------------------------------

local function number_text(v)
    if v ~= v or v == math.huge or v == -math.huge then return "" end
    if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%.0f"):format(v) end
    return ("%.17g"):format(v)
end

--- begateway.field(tx, path) -> the value at a dotted path ("gateway.type",
-- "commission.rates.psp_fee", "recipient.customer.email"); a numeric part
-- indexes an array (1-based). nil when any step is missing or null.
function begateway.field(tx, path)
    if type(path) ~= "string" then
        error("begateway.field: bad argument #2 'path' (string expected, got " .. type(path) .. ")", 2)
    end
    local v = tx
    for part in path:gmatch("[^%.]+") do
        if type(v) ~= "table" then return nil end
        local x = v[part]
        if x == nil and part:match("^%d+$") then x = v[tonumber(part)] end
        v = x
    end
    if v == http.null then return nil end
    return v
end

--- begateway.csv_cell(value) -> the RFC 4180 field: numbers exact (no
-- "3000.0"), booleans true/false, nil and null empty, tables as JSON;
-- quoted when it holds a comma, a quote, CR or LF (quotes doubled). A
-- string starting with =, +, -, @, tab or CR gets a leading ' so that a
-- spreadsheet shows it as text instead of running it as a formula (OWASP,
-- "CSV Injection"); numbers are written as numbers.
function begateway.csv_cell(v)
    local t = type(v)
    local s
    if v == nil or v == http.null then
        s = ""
    elseif t == "number" then
        s = number_text(v)
    elseif t == "boolean" then
        s = tostring(v)
    elseif t == "table" then
        s = http.encode_json(v) or ""
    else
        s = tostring(v)
        if s:find("^[=+%-@\t\r]") then s = "'" .. s end
    end
    if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
    return s
end

--- begateway.csv(iterator, fields, file) -> rows written | nil, err.
-- Writes a header line of the field paths, then one CRLF-terminated line
-- per transaction the iterator yields, streaming (one line at a time).
-- file: an open file (or anything with :write), or a path to create. An
-- error from the iterator stops the file there and is returned with
-- err.rows (the lines written) and err.resume (where the export stopped).
function begateway.csv(iterator, fields, file)
    if type(iterator) ~= "function" and not (type(iterator) == "table" and getmetatable(iterator) and getmetatable(iterator).__call) then
        error("begateway.csv: bad argument #1 'iterator' (an export iterator expected, got " .. type(iterator) .. ")", 2)
    end
    if type(fields) ~= "table" or #fields == 0 then
        error("begateway.csv: bad argument #2 'fields' (a non-empty list of paths expected)", 2)
    end
    for i, f in ipairs(fields) do
        if type(f) ~= "string" or f == "" then
            error("begateway.csv: bad argument #2 'fields' (field " .. i .. " is not a path string)", 2)
        end
    end
    local out, close = file, false
    if type(file) == "string" then
        local f, ferr = io.open(file, "wb")
        if not f then return nil, errors.new("config", "begateway.csv: cannot create the file: " .. tostring(ferr)) end
        out, close = f, true
    elseif not (type(file) == "userdata" or type(file) == "table") or not file.write then
        error("begateway.csv: bad argument #3 'file' (a file or a path expected, got " .. type(file) .. ")", 2)
    end
    local function write(line)
        local ok, werr = out:write(line)
        if not ok then return nil, errors.new("config", "begateway.csv: write failed: " .. tostring(werr)) end
        return true
    end
    local cells = {}
    for i, f in ipairs(fields) do cells[i] = begateway.csv_cell(f) end
    local ok, err = write(table.concat(cells, ",") .. "\r\n")
    local rows = 0
    while ok do
        local tx, ierr = iterator()
        if not tx then
            if ierr then
                err = ierr
                err.rows = rows
                ok = nil
            end
            break
        end
        for i, f in ipairs(fields) do cells[i] = begateway.csv_cell(begateway.field(tx, f)) end
        ok, err = write(table.concat(cells, ",") .. "\r\n")
        if ok then rows = rows + 1 end
    end
    if close then out:close() end
    if not ok then return nil, err end
    return rows
end

provider.lifetime(Client, "begateway")

return begateway
