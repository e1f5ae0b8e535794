--- luapay.trustpay.banking: TrustPay's API Banking as methods of the
-- TrustPay client (luapay.trustpay puts them on its client class): the OAuth
-- token, banking_call, accounts, transaction history, statements, payment
-- orders (the pain.001 document comes from luapay.trustpay.payment_order)
-- and refund orders. They need the client's banking = {username, password,
-- base_url} (trustpay.new).
local cjson = require "cjson.safe"
local core = require "luapay.core"
local errors = require "luapay.errors"
local http = require "luapay.http"
local pager = require "luapay.pager"
local fields = require "luapay.trustpay.fields"
local payment_order = require "luapay.trustpay.payment_order"

local banking = {}

local str, NUMERIC10, normalize = fields.str, fields.NUMERIC10, fields.normalize
local violation, invalid, validate = fields.violation, fields.invalid, fields.validate
local hundredths, decimal2 = fields.hundredths, fields.decimal2

-- The methods; luapay.trustpay copies each onto its client class.
local Client = {}
banking.methods = Client

-- The states of a payment order, as TrustPay lists them (public as
-- trustpay.order_states).
banking.order_states = {
    "Waiting", "Ready", "Rejected", "Error", "Processed", "Blocked", "Refused", "Reversed",
    "WaitingForApprove", "Reserved", "Deleted", "Canceled", "Processing",
}

---------------------------------------------------------------------------
-- The token and the calls
-- @section token_and_calls
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

-- Fetches an OAuth token: client credentials with HTTP Basic. -> token,
-- seconds it may be reused for | nil, err.
local function fetch_token(self)
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
    self.tokens_fetched = (self.tokens_fetched or 0) + 1
    return t.access_token, expires_in - token_margin(expires_in)
end

-- The token shared through the client's store (option store: a
-- luapay.store) by every worker and box: one of them fetches it under a
-- lock, the others wait for it; the store's ttl ends it shortly before it
-- expires, so no clock of any box decides. rejected: the token a 401 came
-- back for (replaced only if the store still holds it).
local SHARED_WAIT = 10 -- seconds a client waits for another's fetch before fetching itself
local function shared_token(self, rejected)
    local key = "trustpay:oauth:" .. self.banking.username
    local deadline = self.clock() + SHARED_WAIT
    while true do
        local token, err = self.store:get(key)
        if err then return nil, err end
        if token and token ~= rejected then return token end
        local lock
        lock, err = self.store:lock(key .. ":lock", SHARED_WAIT)
        if lock == nil then return nil, err end
        if lock or self.clock() > deadline then
            token = self.store:get(key)
            if not token or token == rejected then
                local ttl
                token, ttl = fetch_token(self)
                if token and ttl > 0 then self.store:set(key, token, ttl) end
                if not token then err = ttl end
            end
            if lock then self.store:unlock(key .. ":lock", lock) end
            return token, err
        end
        self.http.sleep(0.05)
    end
end

-- The OAuth token, cached until shortly before it expires: in the client,
-- or with option store in the store every worker and box shares.
function Client:access_token(force)
    if not self.banking then return no_banking() end
    if self.store then
        -- banking_call forgets self.token on a 401: the one it used is kept apart
        local token, err = shared_token(self, force and self.shared_token_used or nil)
        self.shared_token_used = token
        return token, err
    end
    if not force and self.token and self.clock() < self.token_expires then return self.token end
    self.token, self.token_expires = nil, nil
    local started = self.clock()
    local token, ttl = fetch_token(self)
    if not token then return nil, ttl end
    self.token, self.token_expires = token, started + ttl
    return token
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
    if type(method) ~= "string" then
        error("trustpay.Client:banking_call: bad argument #1 'method' (string expected, got " .. type(method) .. ")", 2)
    end
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

---------------------------------------------------------------------------
-- Accounts, transactions, statements
-- @section accounts
---------------------------------------------------------------------------

-- What an answer must hold, as TrustPay documents it: check functions for
-- banking_call, each saying what is missing.
local function object(name)
    return function(t)
        if type(t[name]) ~= "table" then return "the answer has no " .. name .. " object" end
    end
end

-- A list that holds in one C pass (core.schema: an array of objects) needs
-- no loop here: a loop in each answer's check breaks LuaJIT's trace of the
-- call. The loop words what is wrong, and takes any table of tables the
-- pass may refuse.
local function list_of_objects(name)
    local shape = core.schema{ type = "object", fields = {
        [name] = { type = "array", required = true, items = { type = "object" } } } }
    return function(t)
        if shape:validate(t) then return nil end
        local list = t[name]
        if type(list) ~= "table" then return "the answer has no " .. name .. " list" end
        for k, v in pairs(list) do
            if type(k) ~= "number" or type(v) ~= "table" then return name .. " is not a list of objects" end
        end
    end
end

-- Made once: a check made on each call is a closure created on each call,
-- which aborts LuaJIT's trace of it (NYI FNEW).
local HAS_ACCOUNT_LIST = list_of_objects("AccountList")
local HAS_ACCOUNT_DETAILS = object("AccountDetails")
local HAS_TRANSACTIONS = list_of_objects("Transactions")
local HAS_TRANSACTION_DETAILS = object("TransactionDetails")

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
local ID_KEYS = { "TransactionId", "PaymentId", "OrderId", "AccountId" }
local function decorate_transaction(tx)
    if type(tx) ~= "table" then return tx end
    for _, k in ipairs(ID_KEYS) do
        if math.tointeger and type(tx[k]) == "number" then tx[k] = math.tointeger(tx[k]) or tx[k] end
    end
    if tx.Amount ~= nil then tx.amount = hundredths(tx.Amount) end
    if tx.RefundedAmount ~= nil then tx.refunded_amount = hundredths(tx.RefundedAmount) end
    return tx
end

--- client:accounts() -> AccountList | nil, err
function Client:accounts()
    local t, err = self:banking_call("GetAccountList", {}, HAS_ACCOUNT_LIST)
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
        HAS_ACCOUNT_DETAILS)
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
    resume = { type = "object", additional = false, description = "err.resume of a failed list",
        fields = { Page = { type = "integer", required = true, min = 0 } } },
} }

local function date_order(p)
    if type(p.DateFrom) == "string" and type(p.DateTo) == "string" and p.DateFrom > p.DateTo then
        return { violation("DateTo", "range", "must not be before DateFrom") }
    end
    return {}
end

--- client:transactions{AccountId, DateFrom, DateTo, Type, Direction,
-- CounterAccount, AmountFrom, AmountTo, ClientReference, TransactionId,
-- PaymentId, OrderId, PageSize (default 100), Page (first page, default 0),
-- resume} -> iterator over every transaction of every page (luapay.pager).
-- AmountFrom/AmountTo are hundredths (two decimals, as TrustPay writes
-- them). Each transaction is TrustPay's table plus amount and
-- refunded_amount in hundredths. A failed page ends the list with nil, err
-- (false, err inside a `for`); err.resume = {Page = n} continues from that
-- page: transactions{..., resume = err.resume} (err.page, the same n, is
-- deprecated until 0.3). An invalid filter is yielded the same way, and
-- nothing is sent.
function Client:transactions(filter)
    if type(filter) ~= "table" then
        error("trustpay.Client:transactions: bad argument #1 'filter' (table expected, got " .. type(filter) .. ")", 2)
    end
    local p = normalize(filter)
    local ok, err = validate(HISTORY_SCHEMA, p, "transactions", date_order(p))
    if not ok then return pager.new(nil, nil, err) end
    local size = p.PageSize or 100
    local f = {}
    for k, v in pairs(p) do
        if k ~= "PageSize" and k ~= "Page" and k ~= "resume" then
            if k == "AmountFrom" or k == "AmountTo" then v = decimal2(v)
            elseif fields.ID_FIELDS[k] then v = to_number_id(v) end
            f[k] = v
        end
    end
    local function fetch(cursor)
        local query = { Filter = f, Paging = { Page = cursor.Page, PageSize = size } }
        local t, cerr = self:banking_call("GetTransactionHistory", query, HAS_TRANSACTIONS)
        if not t then
            cerr.page = cursor.Page -- deprecated until 0.3: transactions{..., Page = err.page}
            return nil, nil, cerr
        end
        local list = t.Transactions
        for _, tx in ipairs(list) do decorate_transaction(tx) end
        local total = tonumber(t.TotalCount)
        if #list < size or (total and (cursor.Page + 1) * size >= total) then return list, nil end
        return list, { Page = cursor.Page + 1 }
    end

    return pager.new(fetch, { Page = p.resume and p.resume.Page or p.Page or 0 })
end

local DETAILS_SCHEMA = core.schema{ type = "object", additional = false, fields = {
    TransactionId = str(10, { pattern = NUMERIC10 }),
    PaymentId = str(10, { pattern = NUMERIC10 }),
    OrderId = str(10, { pattern = NUMERIC10 }),
} }

--- client:transaction{TransactionId | PaymentId | OrderId} (exactly one)
-- -> TransactionDetails (+ Xml, the order) | nil, err
function Client:transaction(ids)
    if type(ids) ~= "table" then
        error("trustpay.Client:transaction: bad argument #1 'ids' (a table {TransactionId | PaymentId | OrderId}"
            .. " expected, got " .. type(ids) .. ")", 2)
    end
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
        HAS_TRANSACTION_DETAILS)
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
    if type(filter) ~= "table" then
        error("trustpay.Client:statement: bad argument #1 'filter' (table expected, got "
            .. type(filter) .. ")", 2)
    end
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
-- Payment and refund orders
-- @section orders
---------------------------------------------------------------------------

--- client:create_order(order) -> OrderId | nil, err. order: the fields of
-- the seed's order table (Amount in minor units); CreationDateTime defaults
-- to now (UTC), EndToEndReference to NOTPROVIDED.
function Client:create_order(order)
    local xml, err = payment_order.document(order, true)
    if not xml then return nil, err end
    local t, cerr = self:banking_call("CreateOrder", { Xml = xml }, order_id)
    if not t then return nil, cerr end
    return numeric10(t.OrderId)
end

--- client:create_orders(orders) -> {OrderId, ...} | nil, err. One pain.001
-- message (the first order's MessageId) with a payment per order.
function Client:create_orders(orders)
    local xml, err = payment_order.document(orders, false)
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

-- The documentation's example says OrderDetail, its table TransactionDetails.
local function has_order_detail(a)
    if type(a.OrderDetail) ~= "table" and type(a.OrderDetails) ~= "table" then
        return "the answer has no OrderDetail object"
    end
end

local ORDER_ID_SCHEMA = core.schema{ type = "object", additional = false,
    fields = { OrderId = str(10, { required = true, pattern = NUMERIC10 }) } }

--- client:order(id) -> OrderDetail (+ Xml) | nil, err
function Client:order(id)
    local p = normalize{ OrderId = id }
    local ok, err = validate(ORDER_ID_SCHEMA, p, "order")
    if not ok then return nil, err end
    local t, cerr = self:banking_call("GetOrderDetails", { OrderId = to_number_id(p.OrderId) }, has_order_detail)
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
    if type(params) ~= "table" then
        error("trustpay.Client:refund_payment: bad argument #1 'params' (table expected, got "
            .. type(params) .. ")", 2)
    end
    local p = normalize(params)
    local extra = {}
    if p.BeneficiaryName == nil and p.Currency ~= "CZK" then
        extra[1] = violation("BeneficiaryName", "required", "is required (except for refunds in CZK)")
    end
    local ok, err = validate(REFUND_SCHEMA, p, "refund_payment", extra)
    if not ok then return nil, err end
    local amount, aerr = fields.amount(p.Amount, p.Currency)
    if not amount then return invalid("refund_payment", { violation("Amount", "range", aerr) }) end
    local t, cerr = self:banking_call("RefundPayment", {
        PaymentId = to_number_id(p.PaymentId), Amount = amount,
        BeneficiaryName = p.BeneficiaryName, Description = p.Description,
    }, order_id)
    if not t then return nil, cerr end
    return numeric10(t.OrderId)
end

return banking
