--- A TrustPay fake for the sandbox (mounted at /trustpay/). Runs inside
-- nginx. Same wire format as the real Merchant API and API Banking:
--
--   GET|POST /trustpay/mapi5/wire/paypopup, /trustpay/mapi5/Card/PayPopup
--       PaymentType 0 1 2 3 5 9 12: the customer's pop-up; checks the
--       parameters and the signature, keeps the payment, answers an HTML
--       page (header X-Sandbox-Payment-Id) or 400 with X-Sandbox-Result-Code.
--       PaymentType 4 6 8: background calls, answered {"ResultCode": n}
--       (cards as the documentation prints it: {'ResultCode':3,'AcquirerResponseId':'000.000.000'}).
--   POST /trustpay/api/oauth2/token          client credentials (HTTP Basic)
--   POST /trustpay/ApiBanking/<Method>       bearer token; GetAccountList, GetAccountDetails,
--       GetTransactionHistory, GetTransactionDetails, GetStatement, CreateOrder, CreateOrders,
--       GetOrderDetails, RefundPayment
--
-- Sandbox controls (not TrustPay's):
--   POST /trustpay/_sandbox/pay?id=N[&card=4200000000000000][&outcome=cancel]
--       plays the customer paying payment N; answers {ResultCode, PaymentRequestId, redirect}
--       and then sends the signed notifications to the NotificationUrl
--       (wire: 2 then 0; card: 3; preauthorizations: 5). Cards follow the
--       documented test card numbers.
--   POST /trustpay/_sandbox/fail_next?ResultCode=1100[&AcquirerResponseId=...]
--       the next background call answers with that result
--   POST /trustpay/_sandbox/expire_tokens     every issued token stops working
--   GET  /trustpay/_sandbox/payment?id=N      the fake's record of a payment (JSON)
--   GET  /trustpay/_sandbox/order?id=N        an order as the fake parsed its XML (JSON)
--   GET  /trustpay/_sandbox/stats             {tokens_issued, banking_calls}
--   POST /trustpay/_sandbox/lose_next?answer=drop|<HTTP status>
--       the next background call or API Banking call (not the token) is
--       carried out as usual, then its answer is lost on the way back:
--       "drop" closes the connection without an answer, a status answers
--       with it and a proxy's HTML page
--   POST /trustpay/_sandbox/answer_next?body=TEXT[&call=token]
--       the next background call or API Banking call (with call=token: the
--       next token request) is carried out as usual, then answered 200 with
--       TEXT as its JSON body, in place of what TrustPay documents
--   GET  /trustpay/_sandbox/arrivals?Reference=R
--       {count}: how many background calls with that Reference arrived
--   GET  /trustpay/_control/fail|reset|stats   luapay.sandbox.control's failure
--       plan, over the API Banking calls that got past the token check
--
-- Settings come from config.trustpay: accounts = {["<AccountId>"] = "<secret>"}
-- (or account_id + secret), banking = {username, password}, token_ttl
-- (seconds, default 1799), notification_url (default when a request has
-- none), transactions (how many the default account has, default 25).
local M = {}

M.DEFAULTS = {
    account_id = "4107111111",
    secret = "123456",
    banking = { username = "sandbox", password = "sandbox-password" },
    token_ttl = 1799,
    transactions = 25,
    czk_account_id = "4107222222",
}

local cjson = require "cjson.safe"
local core = require "luapay.core"
local trustpay = require "luapay.trustpay"
local control = require "luapay.sandbox.control"
local journal = require "luapay.sandbox.journal"
local events = require "luapay.sandbox.events"

local function dict() return ngx.shared.luapay_sandbox end

local function settings(config)
    local c = config.trustpay or {}
    local accounts = {}
    for k, v in pairs(c.accounts or { [M.DEFAULTS.account_id] = M.DEFAULTS.secret }) do accounts[tostring(k)] = v end
    if c.account_id then accounts[tostring(c.account_id)] = c.secret end
    local b = c.banking or M.DEFAULTS.banking
    return {
        accounts = accounts,
        username = b.username or M.DEFAULTS.banking.username,
        password = b.password or M.DEFAULTS.banking.password,
        token_ttl = c.token_ttl or M.DEFAULTS.token_ttl,
        notification_url = c.notification_url,
        transactions = c.transactions or M.DEFAULTS.transactions,
    }
end

-- A planned answer (_sandbox/answer_next) or lost answer
-- (_sandbox/lose_next) takes the place of the answer to a call that was
-- carried out. True when it answered.
local function lost_answer()
    local which = ngx.ctx.trustpay_call and "call" or ngx.ctx.trustpay_token and "token"
    if not which then return false end
    local body = dict():get("tp:answer_next:" .. which)
    if body then
        dict():delete("tp:answer_next:" .. which)
        ngx.status = 200
        ngx.header["Content-Type"] = "application/json; charset=utf-8"
        ngx.print(body)
        ngx.exit(200)
        return true
    end
    if which ~= "call" then return false end
    local how = dict():get("tp:lose_next")
    if not how then return false end
    dict():delete("tp:lose_next")
    control.lose(how)
    return true
end

local function json_out(status, value, headers)
    if lost_answer() then return end
    ngx.status = status
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    for k, v in pairs(headers or {}) do ngx.header[k] = v end
    ngx.print(core.json_encode(value))
end

local function load(key)
    local s = dict():get(key)
    return s and cjson.decode(s)
end

local function save(key, value)
    assert(dict():set(key, core.json_encode(value)))
end

-- Request parameters: the query string, and a form body for POST.
local function request_args()
    local args = {}
    local function add(t)
        for k, v in pairs(t or {}) do
            if type(v) == "table" then v = v[1] end
            if type(v) == "string" and args[k] == nil then args[k] = v end
        end
    end
    add(ngx.req.get_uri_args())
    if ngx.req.get_method() == "POST" then
        ngx.req.read_body()
        local ctype = ngx.var.content_type or ""
        if ctype:find("application/x-www-form-urlencoded", 1, true) then add(ngx.req.get_post_args()) end
    end
    return args
end

-- Amount "6.00" in hundredths.
local function cents(s)
    local i, f = tostring(s or ""):match("^(%d+)%.(%d%d)$")
    return i and (tonumber(i) * 100 + tonumber(f)) or nil
end

local function two(h) return ("%d.%02d"):format(math.floor(h / 100), h % 100) end

---------------------------------------------------------------------------
-- Notifications
---------------------------------------------------------------------------

-- Sends the notifications in order, through the sandbox's journal (which
-- also forwards them): GET NotificationUrl?<signed parameters>. A merchant
-- that does not answer 200 gets each notification up to three times.
-- Cosockets: a content handler or a timer.
local function deliver(url, list)
    local http = require "luapay.http"
    for _, params in ipairs(list) do
        local delivered = false
        for _ = 1, url and 3 or 1 do
            local res = journal.deliver{
                provider = "trustpay", id = params.PaymentId or params.PaymentRequestId, method = "GET", url = url,
                event = ("%s ResultCode %s"):format(params.Type, params.ResultCode), body = http.encode_query(params),
                timeout_ms = 5000,
            }
            if res and res.status == 200 then
                delivered = true
                break
            end
            if url then ngx.sleep(0.1) end
        end
        dict():incr("tp:notifications:" .. (delivered and "delivered" or "failed"), 1, 0)
        if url and not delivered then ngx.log(ngx.WARN, "trustpay sandbox: notification to ", url, " was not accepted") end
    end
end

-- The same from a timer.
local function notify(url, list)
    if (not url and not journal.forward_target()) or #list == 0 then return end
    local ok, err = ngx.timer.at(0, function(premature)
        if not premature then deliver(url, list) end
    end)
    if not ok then ngx.log(ngx.ERR, "trustpay sandbox: cannot schedule notifications: ", err) end
end

-- A payment's state in the journal's words.
local OP_STATUS = { created = "created", announced = "pending", processing = "pending", paid = "succeeded",
                    captured = "succeeded", authorized = "authorized", failed = "failed", canceled = "canceled" }

-- Keeps a payment, and tells the sandbox's journal about it.
local function save_pay(pay)
    save("tp:pay:" .. pay.id, pay)
    local status = OP_STATUS[pay.state] or pay.state
    local paid = pay.captured or pay.amount
    if (pay.refunded or 0) > 0 then status = pay.refunded >= paid and "refunded" or "partially_refunded" end
    journal.operation{ provider = "trustpay", kind = "payment", id = pay.id, amount = pay.amount, currency = pay.Currency,
                       status = status }
end

-- A refund of a payment: kept (tp:refund:<id>/refund/<n>) and journaled.
local function save_refund(refund)
    save("tp:refund:" .. refund.id, refund)
    journal.operation{ provider = "trustpay", kind = "refund", id = refund.id, parent = tostring(refund.payment),
                       amount = refund.amount, currency = refund.Currency, status = refund.status }
end

local function new_refund(pay, amount, reference)
    return { id = pay.id .. "/refund/" .. dict():incr("tp:refunds:" .. pay.id, 1, 0), payment = pay.id,
             AccountId = pay.AccountId, amount = amount, Currency = pay.Currency, Reference = reference or pay.Reference,
             method = pay.method, status = "refunded" }
end

local function signed(secret, kind, fields)
    local sig = assert(trustpay.sign(secret, kind, fields))
    local p = {}
    for k, v in pairs(fields) do p[k] = v end
    p.Signature = sig
    return p
end

local function wire_notification(secret, pay, code, extra)
    local f = {
        AccountId = pay.AccountId, Amount = two(pay.amount), Currency = pay.Currency, Type = "CRDT",
        ResultCode = tostring(code), PaymentId = tostring(pay.id), Reference = pay.Reference,
        CounterAccount = "SK3399520000002107425307", CounterAccountName = "Ján Nováček",
    }
    for k, v in pairs(extra or {}) do f[k] = v end
    return signed(secret, "wire_notification", f)
end

local function card_notification(secret, pay, code, extra)
    local f = {
        AccountId = pay.AccountId, Amount = two(pay.amount), Currency = pay.Currency, Type = "CRDT",
        ResultCode = tostring(code), PaymentRequestId = tostring(pay.id), Reference = pay.Reference,
        CardMask = pay.CardMask, CardExpiration = pay.CardExpiration, AuthNumber = pay.AuthNumber,
        CardId = pay.CardId,
    }
    for k, v in pairs(extra or {}) do f[k] = v end
    return signed(secret, "card_notification", f)
end

---------------------------------------------------------------------------
-- Merchant API
---------------------------------------------------------------------------

local CARD_KINDS = {
    [0] = "card_purchase", [1] = "card_on_file_register", [2] = "card_on_file_purchase", [3] = "recurring_initial",
    [4] = "recurring_subsequent", [5] = "preauthorization", [6] = "capture", [8] = "refund",
    [9] = "card_on_file_preauthorization", [12] = "recurring_initial_preauthorization",
}
local WIRE_KINDS = { [0] = "wire_purchase", [8] = "refund" }
local BACKGROUND = { [4] = true, [6] = true, [8] = true }
local PREAUTH = { [5] = true, [9] = true, [12] = true }
local SCA_FIELDS = { "CardHolder", "BillingStreet", "BillingCity", "BillingPostcode", "BillingCountry", "Email" }

-- Test cards (seed: "Test cards v02"): the last four digits decide.
local TEST_CARDS = {
    ["0000"] = true, ["1234"] = true, ["5555"] = true,
    ["0001"] = "100.100.303", ["0002"] = "800.100.162", ["0003"] = "100.380.401", ["0004"] = "800.100.155",
    ["0005"] = "100.100.600", ["0006"] = "800.100.157", ["0007"] = "800.100.161",
}

local function background_answer(method, code, acquirer)
    if lost_answer() then return end
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json; charset=utf-8"
    if method == "card" then
        -- as the documentation prints it (not strict JSON)
        ngx.print(("{'ResultCode':%d,'AcquirerResponseId':'%s'}"):format(code, acquirer or "000.000.000"))
    else
        ngx.print(core.json_encode({ ResultCode = code }))
    end
end

local function setup_error(code, why)
    ngx.status = 400
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["X-Sandbox-Result-Code"] = tostring(code)
    ngx.print("<html><body><h1>TrustPay sandbox</h1><p>ResultCode ", code, ": ", why, "</p></body></html>")
end

local function new_id()
    return dict():incr("tp:seq", 1, 846000)
end

-- A background call (refund, capture, subsequent recurring payment).
local function background(s, method, pt, args, secret)
    local forced = load("tp:next_result")
    if forced then
        dict():delete("tp:next_result")
        return background_answer(method, forced.ResultCode, forced.AcquirerResponseId)
    end
    local original = load("tp:pay:" .. args.PaymentRequestId)
    if not original or original.AccountId ~= args.AccountId then return background_answer(method, 1010) end
    local amount = cents(args.Amount)
    if amount == nil or amount < 1 or original.method ~= method or original.Currency ~= args.Currency then
        return background_answer(method, 1011)
    end
    if pt == 8 then
        local available
        if original.state == "paid" or original.state == "captured" then
            available = (original.captured or original.amount) - (original.refunded or 0)
        elseif original.state == "authorized" then
            available = original.amount - (original.refunded or 0)
        end
        if not available or amount > available then return background_answer(method, 1011) end
        original.refunded = (original.refunded or 0) + amount
        save_pay(original)
        save_refund(new_refund(original, amount, args.Reference))
        local refund = { id = original.id, AccountId = original.AccountId, amount = amount, Currency = original.Currency,
            Reference = args.Reference }
        local n = method == "wire" and wire_notification(secret, refund, 0, { Type = "DBIT" })
            or card_notification(secret, refund, 0, { Type = "DBIT" })
        notify(args.NotificationUrl or original.NotificationUrl or s.notification_url, { n })
        return background_answer(method, 0)
    end
    if pt == 6 then
        if not PREAUTH[original.PaymentType] or original.state ~= "authorized" or amount > original.amount then
            return background_answer(method, 1011)
        end
        original.state, original.captured = "captured", amount
        save_pay(original)
        local captured = {}
        for k, v in pairs(original) do captured[k] = v end
        captured.amount = amount
        notify(args.NotificationUrl or original.NotificationUrl or s.notification_url, { card_notification(secret, captured, 3) })
        return background_answer(method, 3)
    end
    -- 4: a subsequent recurring payment on the initial one's card
    if (original.PaymentType ~= 3 and original.PaymentType ~= 12) or (original.state ~= "paid" and original.state ~= "authorized"
        and original.state ~= "captured") then
        return background_answer(method, 1011)
    end
    local pay = {
        id = new_id(), method = "card", PaymentType = 4, AccountId = args.AccountId, amount = amount,
        Amount = args.Amount, Currency = args.Currency, Reference = args.Reference, state = "paid",
        NotificationUrl = original.NotificationUrl, CardMask = original.CardMask,
        CardExpiration = original.CardExpiration, AuthNumber = tostring(100000 + new_id() % 900000),
        initial = original.id,
    }
    save_pay(pay)
    notify(pay.NotificationUrl or s.notification_url, { card_notification(secret, pay, 3) })
    return background_answer(method, 3)
end

local function mapi(s, method)
    local args = request_args()
    local pt = tonumber(args.PaymentType or "")
    local kind = pt and (method == "card" and CARD_KINDS or WIRE_KINDS)[pt]
    local is_background = pt and BACKGROUND[pt]
    local function fail(code, why)
        if is_background then return background_answer(method, code) end
        return setup_error(code, why)
    end
    if not kind then return fail(1001, "unknown PaymentType") end
    for _, k in ipairs({ "AccountId", "Amount", "Currency", "Reference", "Signature" }) do
        if not args[k] or args[k] == "" then return fail(1001, k .. " is missing") end
    end
    if not cents(args.Amount) then return fail(1001, "Amount must have two decimals") end
    if #args.Reference > 35 or args.Reference:find("[<>]") then return fail(1001, "invalid Reference") end
    if is_background and not (args.PaymentRequestId or ""):match("^%d+$") then return fail(1001, "PaymentRequestId is missing") end
    local secret = s.accounts[args.AccountId]
    if not secret then return fail(1002, "unknown account") end
    if not trustpay.verify(secret, kind, args, args.Signature) then return fail(1004, "invalid signature") end
    -- 002 seed: Refund and Capture take "the same parameters as standard
    -- Purchase", so their NotificationUrl (unsigned) overrides the payment's.
    if is_background then
        dict():incr("tp:arrivals:" .. args.Reference, 1, 0)
        ngx.ctx.trustpay_call = true -- carried out from here on: its answer may be lost
        return background(s, method, pt, args, secret)
    end

    if method == "card" then
        for _, k in ipairs(SCA_FIELDS) do
            if not args[k] or args[k] == "" then return fail(1001, k .. " is required since 1 October 2020") end
        end
        if pt == 9 and not args.CardId then return fail(1001, "CardId is required") end
        if args.CardId and not dict():get("tp:card:" .. args.CardId) then return fail(1001, "unknown CardId") end
        -- 002 seed, "API update 2020 - SCA": CardHolder Varchar(100), at least 3 characters
        local chars = select(2, args.CardHolder:gsub("[^\128-\191]", ""))
        if chars < 3 or chars > 100 then return fail(1001, "invalid CardHolder") end
    elseif args.Currency ~= "EUR" and args.Currency ~= "CZK" then
        return fail(1001, "unsupported currency")
    elseif args.Country and args.Country ~= "CZ" and args.Country ~= "SK" then
        return fail(1001, "unsupported country") -- 002 seed, "Supported countries" of instant bank transfers
    end
    local amount = cents(args.Amount)
    if amount == 0 and pt ~= 12 then return fail(1001, "Amount must be positive") end
    local pay = {
        id = new_id(), method = method, PaymentType = pt, kind = kind, AccountId = args.AccountId,
        amount = amount, Amount = args.Amount, Currency = args.Currency, Reference = args.Reference,
        state = "created", CardId = args.CardId,
        NotificationUrl = args.NotificationUrl, ReturnUrl = args.ReturnUrl or args.Url,
        CancelUrl = args.CancelUrl or args.Url, ErrorUrl = args.ErrorUrl or args.Url,
        IsRedirect = args.IsRedirect,
    }
    save_pay(pay)
    ngx.status = 200
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["X-Sandbox-Payment-Id"] = tostring(pay.id)
    ngx.print("<html><body><h1>TrustPay sandbox</h1><p>Payment ", pay.id, " of ", args.Amount, " ", args.Currency,
        " is waiting for the customer.</p></body></html>")
end

local function redirect_url(base, params)
    if not base then return nil end
    local http = require "luapay.http"
    return base .. (base:find("?", 1, true) and "&" or "?") .. http.encode_query(params)
end

-- The customer pays (or not) payment `id`.
local function simulate(s)
    local args = request_args()
    local pay = load("tp:pay:" .. (args.id or ""))
    if not pay then return json_out(404, { error = "no such payment" }) end
    if pay.state ~= "created" then return json_out(409, { error = "payment is " .. pay.state }) end
    local secret = s.accounts[pay.AccountId]
    local answer = { PaymentRequestId = tostring(pay.id) }
    if args.outcome == "cancel" then
        pay.state = "canceled"
        save_pay(pay)
        answer.ResultCode = 1005
        answer.redirect = redirect_url(pay.CancelUrl,
            { Reference = pay.Reference, ResultCode = "1005", PaymentRequestId = tostring(pay.id) })
        return json_out(200, answer)
    end
    local url = pay.NotificationUrl or s.notification_url
    if pay.method == "wire" then
        pay.state = "paid"
        save_pay(pay)
        answer.ResultCode = 0
        answer.redirect = redirect_url(pay.ReturnUrl, { Reference = pay.Reference, ResultCode = "0", PaymentRequestId = tostring(pay.id) })
        json_out(200, answer)
        return notify(url, {
            wire_notification(secret, pay, 2),
            wire_notification(secret, pay, 0, { OrderId = tostring(200000 + pay.id % 100000) }),
        })
    end
    local card = args.card or "4200000000000000"
    local outcome = TEST_CARDS[card:sub(-4)]
    if not card:match("^420000000000%d%d%d%d$") then outcome = nil end
    if outcome ~= true then
        local acquirer = outcome or "100.100.700"
        pay.state = "failed"
        save_pay(pay)
        answer.ResultCode, answer.AcquirerResponseId = 1014, acquirer
        answer.redirect = redirect_url(pay.ErrorUrl, { Reference = pay.Reference, ResultCode = "1014",
            AcquirerResponseId = acquirer, PaymentRequestId = tostring(pay.id) })
        return json_out(200, answer)
    end
    local code = PREAUTH[pay.PaymentType] and 5 or 3
    pay.state = code == 5 and "authorized" or "paid"
    pay.CardMask = "420000******" .. card:sub(-4)
    pay.CardExpiration = "1230"
    pay.AuthNumber = tostring(100000 + (pay.id * 7919) % 900000)
    if pay.PaymentType == 1 then
        pay.CardId = core.hex_encode(core.random_bytes(16))
        dict():set("tp:card:" .. pay.CardId, pay.id)
    end
    save_pay(pay)
    answer.ResultCode, answer.AcquirerResponseId = code, "000.000.000"
    answer.redirect = redirect_url(pay.ReturnUrl, { Reference = pay.Reference, ResultCode = tostring(code),
        AcquirerResponseId = "000.000.000", PaymentRequestId = tostring(pay.id) })
    json_out(200, answer)
    return notify(url, { card_notification(secret, pay, code) })
end

---------------------------------------------------------------------------
-- API Banking
---------------------------------------------------------------------------

local function banking_error(status, message)
    return json_out(status, { Message = message })
end

local function token(s)
    if ngx.req.get_method() ~= "POST" then return banking_error(405, "POST only") end
    local auth = ngx.var.http_authorization or ""
    local b64 = auth:match("^[Bb]asic%s+(%S+)$")
    local pair = b64 and core.base64_decode(b64)
    local user, pass = (pair or ""):match("^([^:]*):(.*)$")
    if user ~= s.username or pass ~= s.password then
        return json_out(401, { error = "invalid_client" })
    end
    local args = request_args()
    if args.grant_type ~= "client_credentials" then return json_out(400, { error = "unsupported_grant_type" }) end
    local tok = core.hex_encode(core.random_bytes(24))
    dict():set("tp:token:" .. tok, true, s.token_ttl)
    dict():incr("tp:tokens_issued", 1, 0)
    ngx.ctx.trustpay_token = true -- issued: its answer may be replaced (answer_next)
    return json_out(200, { access_token = tok, token_type = "Bearer", expires_in = s.token_ttl })
end

local function accounts(s)
    local list = {}
    for id in pairs(s.accounts) do list[#list + 1] = id end
    table.sort(list)
    local out = {}
    for _, id in ipairs(list) do
        out[#out + 1] = {
            AccountId = tonumber(id), IBAN = "SK10995200000" .. ("%011d"):format(tonumber(id)),
            AccountName = "Sandbox " .. id, AccountOwnerName = "Sandbox Merchant s.r.o.", AccountType = "Merchant",
            CanCreateInternalOrder = false, CanCreateBankWireOrder = true, CurrencyCode = "EUR",
            AccountingBalance = "15684.05", DisposableBalance = "15654.05", FeeBalance = "0.00", MinimalBalance = "30.00",
        }
    end
    out[#out + 1] = {
        AccountId = tonumber(M.DEFAULTS.czk_account_id), IBAN = "", AccountName = "Sandbox CZK",
        AccountOwnerName = "Sandbox Merchant s.r.o.", AccountType = "Individual", CanCreateInternalOrder = false,
        CanCreateBankWireOrder = true, CurrencyCode = "CZK", AccountingBalance = "121696.89",
        DisposableBalance = "121410.89", FeeBalance = "256.00", MinimalBalance = "30.00",
    }
    return out
end

-- The accounts' transaction history: generated, the same every time.
local NAMES = { "Ján Nováček", "Eva Černá", "Müller & Söhne GmbH", "Jiří Dvořák", "O'Brien Ltd" }
local function history(s)
    local list = {}
    local function add(account, currency, i, day)
        local credit = i % 3 ~= 0
        local h = credit and (1000 * i + 25 * (i % 7)) or -(350 * i + 37)
        list[#list + 1] = {
            AccountId = account,
            TransactionId = 652800 + #list + 1, PaymentId = 325800 + #list + 1, OrderId = 125800 + #list + 1,
            Date = day, CounterAccount = ("SK36995200000021078%05d"):format(i),
            CounterAccountName = NAMES[i % #NAMES + 1], Description = "sandbox transaction " .. i,
            PayerReference = "e2e-" .. i, ClientReference = i % 4 == 0 and core.null or ("REF-" .. i),
            Amount = h / 100, Currency = currency, RefundedAmount = 0,
            Type = i % 5 == 0 and "Internal" or "External", cents = h,
        }
    end
    local first = tonumber(M.DEFAULTS.account_id)
    for i = 1, s.transactions do
        local day = os.date("!%Y-%m-%d", os.time{ year = 2024, month = 3, day = 1, hour = 12 } + ((i - 1) % 28) * 86400)
        add(first, "EUR", i, day)
    end
    for i = 1, 3 do add(tonumber(M.DEFAULTS.czk_account_id), "CZK", i, ("2024-03-%02d"):format(i)) end
    return list
end

local function public(tx)
    local t = {}
    for k, v in pairs(tx) do
        if k ~= "AccountId" and k ~= "Type" and k ~= "cents" then t[k] = v end
    end
    return t
end

local function find_tx(s, field, value)
    for _, tx in ipairs(history(s)) do
        if tostring(tx[field]) == tostring(value) then return tx end
    end
end

local function matches(tx, f)
    if tostring(tx.AccountId) ~= tostring(f.AccountId) then return false end
    if tx.Date < f.DateFrom or tx.Date > f.DateTo then return false end
    if f.Direction == "Credit" and tx.cents < 0 then return false end
    if f.Direction == "Debit" and tx.cents > 0 then return false end
    if f.Type and f.Type ~= "Any" and f.Type ~= tx.Type then return false end
    if f.CounterAccount and f.CounterAccount ~= tx.CounterAccount then return false end
    local function signed_cents(v)
        v = tostring(v)
        local c = cents((v:gsub("^%-", ""))) or 0
        return v:sub(1, 1) == "-" and -c or c
    end
    if f.AmountFrom and tx.cents < signed_cents(f.AmountFrom) then return false end
    if f.AmountTo and tx.cents > signed_cents(f.AmountTo) then return false end
    if f.ClientReference and f.ClientReference ~= tx.ClientReference then return false end
    for _, k in ipairs({ "TransactionId", "PaymentId", "OrderId" }) do
        if f[k] and tostring(f[k]) ~= tostring(tx[k]) then return false end
    end
    return true
end

local function date_ok(d) return type(d) == "string" and d:match("^%d%d%d%d%-%d%d%-%d%d$") end

-- Just enough XML to read a pain.001 order back: elements, attributes,
-- text and the predefined and numeric entities. Anything malformed (a raw
-- '<' or '&' in text, a mismatched tag) is an error, as for a real parser.
local function utf8_char(n)
    if n < 0x80 then return string.char(n) end
    if n < 0x800 then return string.char(0xC0 + math.floor(n / 64), 0x80 + n % 64) end
    if n < 0x10000 then return string.char(0xE0 + math.floor(n / 4096), 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64) end
    return string.char(0xF0 + math.floor(n / 262144), 0x80 + math.floor(n / 4096) % 64, 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
local function unescape_xml(s)
    local parts, pos = {}, 1
    while true do
        local a = s:find("&", pos, true)
        if not a then
            parts[#parts + 1] = s:sub(pos)
            return table.concat(parts)
        end
        parts[#parts + 1] = s:sub(pos, a - 1)
        local name, e = s:match("^&([#%w]+);()", a)
        if not name then return nil end
        local v = ENTITIES[name]
        local n = name:match("^#(%d+)$")
        if n then v = utf8_char(tonumber(n)) end
        n = name:match("^#x(%x+)$")
        if n then v = utf8_char(tonumber(n, 16)) end
        if not v then return nil end
        parts[#parts + 1] = v
        pos = e
    end
end

local function parse_xml(s)
    s = s:gsub("^%s*<%?xml.-%?>", "", 1)
    local root = { children = {} }
    local stack = { root }
    local i = 1
    while i <= #s do
        local lt = s:find("<", i, true)
        local text = s:sub(i, (lt or #s + 1) - 1)
        if text:find("%S") then
            local decoded = unescape_xml(text)
            if not decoded then return nil, "bad character reference in text" end
            local cur = stack[#stack]
            if cur == root then return nil, "text outside the root element" end
            cur.text = (cur.text or "") .. decoded
        end
        if not lt then break end
        if s:sub(lt, lt + 1) == "</" then
            local name, e = s:match("^</([%w:_%.%-]+)%s*>()", lt)
            if not name or name ~= stack[#stack].qname then return nil, "mismatched end tag at " .. lt end
            stack[#stack] = nil
            i = e
        else
            local name, attrs, close, e = s:match("^<([%w:_%.%-]+)([^<>]-)(/?)>()", lt)
            if not name then return nil, "malformed tag at " .. lt end
            local node = { qname = name, name = (name:gsub("^.*:", "")), attrs = {}, children = {} }
            local rest = attrs:gsub("%s*([%w:_%.%-]+)%s*=%s*([\"'])(.-)%2", function(k, _, v)
                node.attrs[k] = unescape_xml(v) or false
                return ""
            end)
            if rest:find("%S") then return nil, "malformed attributes at " .. lt end
            for _, v in pairs(node.attrs) do
                if v == false then return nil, "bad character reference in an attribute" end
            end
            local parent = stack[#stack]
            parent.children[#parent.children + 1] = node
            if close == "" then stack[#stack + 1] = node end
            i = e
        end
    end
    if #stack ~= 1 or #root.children ~= 1 then return nil, "unclosed elements" end
    return root.children[1]
end

local function child(node, name)
    if not node then return nil end
    for _, c in ipairs(node.children) do if c.name == name then return c end end
end
local function children(node, name)
    local out = {}
    for _, c in ipairs(node and node.children or {}) do if c.name == name then out[#out + 1] = c end end
    return out
end
local function at(node, path)
    for name in path:gmatch("[^/]+") do node = child(node, name) end
    return node
end
local function text(node, path)
    local n = at(node, path)
    return n and n.text
end

-- Reads a pain.001.001.03 document into its payments.
local function read_orders(xml)
    if type(xml) ~= "string" then return nil, "Xml is required" end
    local doc, err = parse_xml(xml)
    if not doc then return nil, "Xml is not well-formed: " .. err end
    if doc.name ~= "Document" or doc.attrs.xmlns ~= "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" then
        return nil, "Xml is not a pain.001.001.03 Document"
    end
    local init = child(doc, "CstmrCdtTrfInitn")
    local msg_id = text(init, "GrpHdr/MsgId")
    if not msg_id then return nil, "GrpHdr/MsgId is missing" end
    local out = { MessageId = msg_id, payments = {} }
    for _, pmt in ipairs(children(init, "PmtInf")) do
        for _, txi in ipairs(children(pmt, "CdtTrfTxInf")) do
            local amt = at(txi, "Amt/InstdAmt")
            local strd = {}
            for _, s in ipairs(children(child(txi, "RmtInf"), "Strd")) do
                strd[#strd + 1] = text(s, "AddtlRmtInf") or text(s, "CdtrRefInf/Ref")
            end
            out.payments[#out.payments + 1] = {
                DebtorAccount = text(pmt, "DbtrAcct/Id/Othr/Id"), DebtorName = text(pmt, "Dbtr/Nm"),
                RequestedExecutionDate = text(pmt, "ReqdExctnDt"),
                EndToEndId = text(txi, "PmtId/EndToEndId"),
                Amount = amt and amt.text, Currency = amt and amt.attrs.Ccy,
                CreditorName = text(txi, "Cdtr/Nm"), CreditorAddress = text(txi, "Cdtr/PstlAdr/AdrLine"),
                CreditorBankBic = text(txi, "CdtrAgt/FinInstnId/BIC"),
                CreditorBankName = text(txi, "CdtrAgt/FinInstnId/Nm"),
                CreditorAccount = text(txi, "CdtrAcct/Id/IBAN") or text(txi, "CdtrAcct/Id/Othr/Id"),
                Description = text(txi, "RmtInf/Ustrd"), Structured = strd,
            }
        end
    end
    local n = tonumber(text(init, "GrpHdr/NbOfTxs") or "")
    if #out.payments == 0 or n ~= #out.payments then return nil, "GrpHdr/NbOfTxs does not match the payments" end
    return out
end

local function store_order(s, p, xml, msg_id)
    if not s.accounts[tostring(p.DebtorAccount)] and tostring(p.DebtorAccount) ~= M.DEFAULTS.czk_account_id then
        return nil, "DebtorAccount is not an account of this user"
    end
    if not cents(p.Amount) or not p.Currency then return nil, "Amt/InstdAmt is invalid" end
    local id = dict():incr("tp:order_seq", 1, 123456788)
    save("tp:order:" .. id, {
        OrderDetail = {
            Amount = cents(p.Amount) / 100, Created = os.date("!%Y-%m-%dT%H:%M:%S") .. ".0000000Z", Currency = p.Currency,
            DestinationAccount = p.CreditorAccount, SourceAccount = tostring(p.DebtorAccount), State = "Waiting",
        },
        Xml = xml, parsed = p, MessageId = msg_id,
    })
    return tostring(id)
end

local BANKING = {}

function BANKING.GetAccountList(s) return json_out(200, { AccountList = accounts(s) }) end

function BANKING.GetAccountDetails(s, body)
    for _, a in ipairs(accounts(s)) do
        if tostring(a.AccountId) == tostring(body.AccountId) then return json_out(200, { AccountDetails = a }) end
    end
    return banking_error(400, "Account not found")
end

function BANKING.GetTransactionHistory(s, body)
    local f, paging = body.Filter, body.Paging
    if type(f) ~= "table" or type(paging) ~= "table" then return banking_error(400, "Filter and Paging are required") end
    if not f.AccountId or not date_ok(f.DateFrom) or not date_ok(f.DateTo) then
        return banking_error(400, "AccountId, DateFrom and DateTo are required")
    end
    local page, size = tonumber(paging.Page), tonumber(paging.PageSize)
    if not page or page < 0 or not size or size < 1 or size > 999 then return banking_error(400, "Paging is invalid") end
    local hits = {}
    for _, tx in ipairs(history(s)) do
        if matches(tx, f) then hits[#hits + 1] = public(tx) end
    end
    local out = setmetatable({}, core.array_mt)
    for i = page * size + 1, math.min(#hits, (page + 1) * size) do out[#out + 1] = hits[i] end
    return json_out(200, { Transactions = out, TotalCount = #hits, Paging = { Page = page, PageSize = size } })
end

function BANKING.GetTransactionDetails(s, body)
    local given = {}
    for _, k in ipairs({ "TransactionId", "PaymentId", "OrderId" }) do
        if body[k] ~= nil then given[#given + 1] = k end
    end
    if #given ~= 1 then return banking_error(400, "Exactly one of TransactionId, PaymentId, OrderId must be provided") end
    local tx = find_tx(s, given[1], body[given[1]])
    if not tx then return banking_error(400, "Transaction not found") end
    local xml = tx.cents < 0 and ('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.05">...</Document>') or core.null
    return json_out(200, { TransactionDetails = public(tx), Xml = xml })
end

function BANKING.GetStatement(s, body)
    local f = body.Filter
    if type(f) ~= "table" or not date_ok(f.DateFrom) or not date_ok(f.DateTo) then return banking_error(400, "Filter is invalid") end
    local rows = {}
    for _, tx in ipairs(history(s)) do
        if matches(tx, f) then rows[#rows + 1] = tx end
    end
    local out
    if f.FileFormat == "Csv" then
        local lines = { "TransactionId;Date;Amount;Currency;CounterAccount;CounterAccountName" }
        for _, tx in ipairs(rows) do
            local amount = ("%s%s"):format(tx.cents < 0 and "-" or "", two(math.abs(tx.cents)))
            lines[#lines + 1] = table.concat({ tx.TransactionId, tx.Date, amount,
                tx.Currency, tx.CounterAccount, tx.CounterAccountName }, ";")
        end
        out = table.concat(lines, "\r\n") .. "\r\n"
    elseif f.FileFormat == "Html" then
        out = "<html><body><table>" .. ("<tr></tr>"):rep(#rows) .. "</table></body></html>"
    elseif f.FileFormat == "Camt53V2" or f.FileFormat == "Camt53V4" then
        out = ('<?xml version="1.0" encoding="utf-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.0%s">'
            .. '<BkToCstmrStmt>%s</BkToCstmrStmt></Document>'):format(f.FileFormat:sub(-1), ("<Ntry/>"):rep(#rows))
    else
        return banking_error(400, "FileFormat is invalid")
    end
    return json_out(200, { StatementBytes = core.base64_encode(out) })
end

local function create(s, body, single)
    local doc, err = read_orders(body.Xml)
    if not doc then return banking_error(400, err) end
    if single and #doc.payments ~= 1 then return banking_error(400, "CreateOrder takes one payment") end
    if not dict():add("tp:msgid:" .. doc.MessageId, true) then return banking_error(400, "MessageId was already used") end
    local ids = setmetatable({}, core.array_mt)
    for i, p in ipairs(doc.payments) do
        local id, serr = store_order(s, p, body.Xml, doc.MessageId)
        if not id then return banking_error(400, ("payment %d: %s"):format(i, serr)) end
        ids[i] = id
    end
    if single then return json_out(200, { OrderId = ids[1] }) end
    return json_out(200, { OrderIds = ids })
end

function BANKING.CreateOrder(s, body) return create(s, body, true) end
function BANKING.CreateOrders(s, body) return create(s, body, false) end

function BANKING.GetOrderDetails(_, body)
    local o = load("tp:order:" .. tostring(body.OrderId))
    if not o then return banking_error(400, "Order not found") end
    return json_out(200, { OrderDetail = o.OrderDetail, Xml = o.Xml })
end

function BANKING.RefundPayment(s, body)
    local tx = body.PaymentId and find_tx(s, "PaymentId", body.PaymentId)
    if not tx or tx.cents <= 0 then return banking_error(400, "Payment not found") end
    local amount = type(body.Amount) == "string" and cents(body.Amount)
    if not amount or amount < 1 or amount > tx.cents then return banking_error(400, "Amount is invalid") end
    if tx.Currency ~= "CZK" and (type(body.BeneficiaryName) ~= "string" or body.BeneficiaryName == "") then
        return banking_error(400, "BeneficiaryName is required")
    end
    local id = dict():incr("tp:order_seq", 1, 123456788)
    save("tp:order:" .. id, {
        OrderDetail = { Amount = amount / 100, Created = os.date("!%Y-%m-%dT%H:%M:%S") .. ".0000000Z", Currency = tx.Currency,
            DestinationAccount = tx.CounterAccount, SourceAccount = tostring(tx.AccountId), State = "Waiting" },
        Xml = core.null, refund = { PaymentId = tx.PaymentId, BeneficiaryName = body.BeneficiaryName, Description = body.Description },
    })
    return json_out(200, { OrderId = tostring(id) })
end

local function banking(s, method)
    if ngx.req.get_method() ~= "POST" then return banking_error(405, "POST only") end
    dict():incr("tp:banking_calls", 1, 0)
    local auth = ngx.var.http_authorization or ""
    local tok = auth:match("^[Bb]earer%s+(%S+)$")
    if not tok or not dict():get("tp:token:" .. tok) then
        return banking_error(401, "Authorization has been denied for this request.")
    end
    local handler = BANKING[method]
    if not handler then return banking_error(404, "No such method") end
    ngx.req.read_body()
    if control.before("trustpay", ngx.req.get_body_data()) then return end -- a planned failure (_control/fail)
    local body = cjson.decode(ngx.req.get_body_data() or "")
    if type(body) ~= "table" then return banking_error(400, "The request body must be JSON") end
    ngx.ctx.trustpay_call = true -- carried out from here on: its answer may be lost
    return handler(s, body)
end

---------------------------------------------------------------------------
-- luapay trigger (POST /_sandbox/trigger)
---------------------------------------------------------------------------

M.EVENTS = events.list {
    { "announced", "payment", "payment pending", "wire notification, CRDT, ResultCode 2 (Announced)" },
    { "processing", "payment", "payment pending", "wire notification, CRDT, ResultCode 4 (Processing)" },
    { "credit", "payment", "payment succeeded",
      "CRDT, ResultCode 0 (wire: Success) or 3 (card: Authorized, i.e. captured): the money is the merchant's",
      "approve" },
    { "authorized", "payment", "payment authorized", "card notification, CRDT, ResultCode 5 (AuthorizedOnly)" },
    { "declined", "payment", "payment failed", "card notification, CRDT, ResultCode 1014 (Rejected transaction)",
      "decline" },
    { "debit", "refund", "refund refunded", "DBIT, ResultCode 0: a refund left the merchant's account" },
}

-- The payment events: the method they need (nil: either), the state the
-- payment moves to, and the result code (wire, card).
local MOVES = {
    announced = { "wire", "announced", 2 }, processing = { "wire", "processing", 4 },
    credit = { nil, "paid", 0, 3 }, authorized = { "card", "authorized", 5 }, declined = { "card", "failed", 1014 },
}

local function trigger_payment(s, req, method)
    local account = next(s.accounts)
    local amount = req.amount or 10000
    local pay = {
        id = new_id(), method = method, PaymentType = 0, AccountId = account, amount = amount, Amount = two(amount),
        Currency = req.currency or "EUR", Reference = "sandbox-" .. dict():incr("tp:trigger", 1, 0), state = "created",
        NotificationUrl = req.url,
    }
    if method == "card" then
        pay.CardMask, pay.CardExpiration = "420000******0000", "1230"
        pay.AuthNumber = tostring(100000 + (pay.id * 7919) % 900000)
    end
    save_pay(pay)
    return pay
end

--- M.trigger(event, req, config) -> id | nil, status, message: sends the
-- event's notification now (luapay.sandbox.journal's /_sandbox/trigger).
function M.trigger(event, req, config)
    local s = settings(config)
    local pay, refund
    if req.id then
        local pay_id = req.id:match("^(%d+)/refund/%d+$")
        if pay_id then
            refund = load("tp:refund:" .. req.id)
            if not refund or event.on ~= "refund" then return nil, 404, "no TrustPay " .. event.on .. " " .. req.id end
        end
        pay = load("tp:pay:" .. (pay_id or req.id))
        if not pay then return nil, 404, "no TrustPay payment " .. req.id end
    end
    local move = MOVES[event.name]
    local list
    if move then
        pay = pay or trigger_payment(s, req, move[1] or "wire")
        if move[1] and pay.method ~= move[1] then
            return nil, 409, ("%s is a %s payment: TrustPay sends %s for %s payments"):format(pay.id, pay.method,
                event.name, move[1])
        end
        if pay.state ~= "created" and pay.state ~= "announced" and pay.state ~= "processing" and pay.state ~= "authorized" then
            return nil, 409, ("payment %s is %s already"):format(pay.id, pay.state)
        end
        pay.state = move[2]
        save_pay(pay)
        local secret = s.accounts[pay.AccountId]
        if pay.method == "wire" then
            list = { wire_notification(secret, pay, move[3], move[3] == 0 and { OrderId = tostring(200000 + pay.id % 100000) }
                or nil) }
        else
            list = { card_notification(secret, pay, move[4] or move[3]) }
        end
    else -- debit: a refund
        if not pay then
            pay = trigger_payment(s, req, "wire")
            pay.state = "paid"
        end
        if not refund then
            local left = (pay.captured or pay.amount) - (pay.refunded or 0)
            local amount = math.min(req.amount or left, left)
            if (pay.state ~= "paid" and pay.state ~= "captured") or amount < 1 then
                return nil, 409, ("payment %s is %s: nothing to refund"):format(pay.id, pay.state)
            end
            pay.refunded = (pay.refunded or 0) + amount
            refund = new_refund(pay, amount)
            save_refund(refund)
        end
        save_pay(pay)
        local secret = s.accounts[pay.AccountId]
        local n = { id = pay.id, AccountId = pay.AccountId, amount = refund.amount, Currency = pay.Currency,
                    Reference = refund.Reference }
        list = { pay.method == "wire" and wire_notification(secret, n, 0, { Type = "DBIT" })
            or card_notification(secret, n, 0, { Type = "DBIT" }) }
    end
    deliver(req.url or pay.NotificationUrl or s.notification_url, list)
    return refund and refund.id or pay.id
end

---------------------------------------------------------------------------
-- Controls and routing
---------------------------------------------------------------------------

local CONTROLS = {}

CONTROLS.pay = simulate

function CONTROLS.fail_next()
    local args = request_args()
    save("tp:next_result", { ResultCode = tonumber(args.ResultCode), AcquirerResponseId = args.AcquirerResponseId })
    return json_out(200, { ok = true })
end

function CONTROLS.lose_next()
    dict():set("tp:lose_next", request_args().answer or "drop")
    return json_out(200, { ok = true })
end

function CONTROLS.answer_next()
    local args = request_args()
    dict():set("tp:answer_next:" .. (args.call == "token" and "token" or "call"), args.body or "")
    return json_out(200, { ok = true })
end

function CONTROLS.arrivals()
    return json_out(200, { count = dict():get("tp:arrivals:" .. (request_args().Reference or "")) or 0 })
end

function CONTROLS.expire_tokens()
    local keys = dict():get_keys(0)
    for _, k in ipairs(keys) do
        if k:sub(1, 9) == "tp:token:" then dict():delete(k) end
    end
    return json_out(200, { ok = true })
end

function CONTROLS.payment()
    local pay = load("tp:pay:" .. (request_args().id or ""))
    if not pay then return json_out(404, { error = "no such payment" }) end
    return json_out(200, pay)
end

function CONTROLS.order()
    local o = load("tp:order:" .. (request_args().id or ""))
    if not o then return json_out(404, { error = "no such order" }) end
    return json_out(200, { parsed = o.parsed or core.null, refund = o.refund or core.null, MessageId = o.MessageId or core.null })
end

function CONTROLS.stats()
    return json_out(200, {
        tokens_issued = dict():get("tp:tokens_issued") or 0,
        banking_calls = dict():get("tp:banking_calls") or 0,
        notifications_delivered = dict():get("tp:notifications:delivered") or 0,
        notifications_failed = dict():get("tp:notifications:failed") or 0,
    })
end

function M.handle(path, config)
    local s = settings(config)
    local lower = path:lower()
    if lower == "mapi5/wire/paypopup" then return mapi(s, "wire") end
    if lower == "mapi5/card/paypopup" then return mapi(s, "card") end
    if lower == "api/oauth2/token" then return token(s) end
    local method = path:match("^ApiBanking/(%w+)$")
    if method then return banking(s, method) end
    if control.handle("trustpay", path) then return end
    local name = path:match("^_sandbox/([%w_]+)$")
    if name and CONTROLS[name] then return CONTROLS[name](s) end
    ngx.status = 404
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("no TrustPay sandbox endpoint ", path)
end

return M
