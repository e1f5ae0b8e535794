-- The Trustly client without a network: construction, validation before
-- anything is sent, the request it signs, and how it judges answers. A
-- scripted transport plays Trustly, signing with the test provider key.
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local util = require "support.util"

local MERCHANT_PRIVATE = util.fixture("keys/merchant_private.pem")
local MERCHANT_PUBLIC = util.fixture("keys/merchant_public.pem")
local PROVIDER_PRIVATE = util.fixture("keys/provider_private.pem")
local PROVIDER_PUBLIC = util.fixture("keys/provider_public.pem")
local PASSWORD = "s3cret-Pa55word"

-- Plays Trustly: answer(doc, req) -> body text (or a response table).
local function scripted(answer)
    local t = { requests = {} }
    function t:request(req)
        self.requests[#self.requests + 1] = req
        local doc = core.json_decode(req.body, { numbers = "lexeme" })
        local out = answer(doc, req)
        if type(out) == "table" then return out end
        return { status = 200, headers = { ["content-type"] = "application/json" }, body = out }
    end
    return t
end

local function signed_ok(data)
    return function(doc)
        return trustly.answer(doc.method, doc.params.UUID, data or { orderid = "1", url = "https://t/x" }, PROVIDER_PRIVATE)
    end
end

local function never()
    return scripted(function() error("nothing may be sent") end)
end

local function client(opts)
    local o = {
        username = "merchant_username", password = PASSWORD, private_key = MERCHANT_PRIVATE,
        trustly_public_key = PROVIDER_PUBLIC, sleep = function() end,
    }
    for k, v in pairs(opts or {}) do o[k] = v end
    return trustly.new(o)
end

local function deposit()
    return {
        NotificationURL = "https://shop.example/trustly/notify/k3j2h4", EndUserID = "user-42", MessageID = "order-1001",
        Attributes = {
            Currency = "SEK", Amount = 10300, Firstname = "John", Lastname = "Doe", Country = "SE", Locale = "sv_SE",
            SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail",
        },
    }
end

local function paths(err)
    local out = {}
    for i, f in ipairs(err.fields) do out[i] = f.path .. ":" .. f.code end
    return out
end

describe("trustly.new", function()
    it("needs credentials and a private key, naming the option", function()
        local base = { username = "u", password = "p", private_key = MERCHANT_PRIVATE }
        local function without(name, value)
            local o = {}
            for k, v in pairs(base) do o[k] = v end
            o[name] = value
            return o
        end
        assert.error_matches(function() trustly.new() end, "trustly.new: bad argument #1 'opts'")
        assert.error_matches(function() trustly.new(without("username", nil)) end, "option 'username'")
        assert.error_matches(function() trustly.new(without("password", "")) end, "option 'password'")
        assert.error_matches(function() trustly.new(without("private_key", nil)) end, "option 'private_key' is required")
        assert.error_matches(function() trustly.new(without("private_key", "junk")) end,
            "option 'private_key' cannot be read: pkey: no PEM block")
        assert.error_matches(function() trustly.new(without("private_key", MERCHANT_PUBLIC)) end, "must be a private key")
        assert.error_matches(function() trustly.new(without("environment", "prod")) end, "option 'environment'")
        assert.error_matches(function() trustly.new(without("trustly_public_key", "junk")) end, "option 'trustly_public_key'")
        assert.error_matches(function() trustly.new(without("base_url", "ftp://x")) end, "option 'base_url'")
    end)

    it("takes the key as PEM, as an encrypted PEM with its passphrase, or as a core.pkey", function()
        assert(trustly.new{ username = "u", password = "p", private_key = assert(core.pkey(MERCHANT_PRIVATE)) })
        assert(trustly.new{ username = "u", password = "p", private_key = util.fixture("keys/merchant_private_encrypted.pem"),
                            private_key_passphrase = "correct horse" })
    end)

    it("refuses verify = false and plain http in live mode, allows them in test", function()
        local o = { username = "u", password = "p", private_key = MERCHANT_PRIVATE, environment = "live", verify = false }
        assert.error_matches(function() trustly.new(o) end, "option 'verify' cannot be false in the live environment")
        o.verify, o.base_url = nil, "http://api.trustly.com/1"
        assert.error_matches(function() trustly.new(o) end, "option 'base_url' must be an https URL in the live environment")
        local t = trustly.new{ username = "u", password = "p", private_key = MERCHANT_PRIVATE, verify = false,
                               base_url = "http://127.0.0.1:1/api/1" }
        assert.equal("http://127.0.0.1:1/api/1", t.url)
        local live = trustly.new{ username = "u", password = "p", private_key = MERCHANT_PRIVATE, environment = "live" }
        assert.equal("https://api.trustly.com/1", live.url)
        assert.equal("https://test.trustly.com/api/1", trustly.new{ username = "u", password = "p", private_key = MERCHANT_PRIVATE }.url)
    end)

    it("keeps the password and key out of its string form and its fields", function()
        local c = client()
        assert.not_matches(PASSWORD, tostring(c))
        for _, v in pairs(c) do
            if type(v) == "string" then
                assert.not_matches(PASSWORD, v)
                assert.not_matches("PRIVATE", v)
            end
        end
    end)
end)

describe("a Trustly request", function()
    it("is signed over Data with the credentials inside, and sent as JSON-RPC 1.1", function()
        local t = scripted(signed_ok())
        local data = assert(client{ transport = t }:deposit(deposit()))
        assert.same({ orderid = "1", url = "https://t/x" }, data)
        local req = t.requests[1]
        assert.equal("POST", req.method)
        assert.equal("https://test.trustly.com/api/1", req.url)
        assert.equal("application/json; charset=utf-8", req.headers["Content-Type"])
        local doc = core.json_decode(req.body)
        assert.equal("Deposit", doc.method)
        assert.equal("1.1", doc.version)
        assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", doc.params.UUID)
        local D = doc.params.Data
        assert.equal("merchant_username", D.Username)
        assert.equal(PASSWORD, D.Password)
        assert.equal("103.00", D.Attributes.Amount) -- 10300 minor units of SEK
        assert.equal("order-1001", D.MessageID)
        assert.equal(344, #doc.params.Signature)
        assert.is_true(trustly.verify("Deposit", doc.params.UUID, D, doc.params.Signature, MERCHANT_PUBLIC))
        -- the caller's table is left as it was
        local mine = deposit()
        client{ transport = scripted(signed_ok()) }:deposit(mine)
        assert.equal(10300, mine.Attributes.Amount)
        assert.is_nil(mine.Username)
    end)

    it("gets a fresh UUID each call and a MessageID when the caller gives none", function()
        local t = scripted(signed_ok())
        local c = client{ transport = t }
        local d = deposit()
        d.MessageID = nil
        c:deposit(d)
        c:deposit(d)
        local a, b = core.json_decode(t.requests[1].body).params, core.json_decode(t.requests[2].body).params
        assert.are_not.equal(a.UUID, b.UUID)
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", a.Data.MessageID)
        assert.are_not.equal(a.Data.MessageID, b.Data.MessageID)
    end)

    it("sends a Refund without Attributes as \"Attributes\": null, and signs that", function()
        local t = scripted(signed_ok({ orderid = "1187741486", result = "1" }))
        assert.same({ orderid = "1187741486", result = "1" },
            assert(client{ transport = t }:refund{ OrderID = "1187741486", Amount = 3000, Currency = "EUR" }))
        assert.matches('"Attributes":null', t.requests[1].body)
        local p = core.json_decode(t.requests[1].body).params
        assert.matches("Amount30%.00AttributesCurrencyEUR", trustly.serialize(p.Data))
    end)

    it("passes any method through call(), with credentials and a signature", function()
        local t = scripted(signed_ok({ withdrawals = setmetatable({}, core.array_mt) }))
        local r = assert(client{ transport = t }:call("GetWithdrawals", { OrderID = "123" }))
        assert.equal(core.array_mt, getmetatable(r.withdrawals))
        local p = core.json_decode(t.requests[1].body)
        assert.equal("GetWithdrawals", p.method)
        assert.equal("123", p.params.Data.OrderID)
        assert.equal(PASSWORD, p.params.Data.Password)
        assert.error_matches(function() client():call("Bad Method", {}) end, "method name")
        assert.error_matches(function() client():deposit("x") end, "trustly.prepare: bad argument #2 'data'")
    end)

    describe("validation", function()
        it("lists every bad field of a Deposit and sends nothing", function()
            local d = deposit()
            d.NotificationURL = "https://shop.example/notify?order=1"
            d.EndUserID = { "x" }
            d.Attributes.Amount = 103.5
            d.Attributes.Locale = "sv-SE"
            d.Attributes.Country = "XX"
            d.Attributes.SuccessURL = "not a url"
            d.Attributes.Firstname = nil
            d.Attributes.Email = "no-at-sign"
            local r, err = client{ transport = never() }:deposit(d)
            assert.is_nil(r)
            assert.equal("validation", err.type)
            assert.same({
                "Attributes.Amount:type", "Attributes.Country:format", "Attributes.Email:format",
                "Attributes.Firstname:required", "Attributes.Locale:format", "Attributes.SuccessURL:format",
                "EndUserID:type", "NotificationURL:forbidden",
            }, paths(err))
            assert.matches("minor units", err.fields[1].message)
        end)

        it("checks amounts: minor units convert exactly, and zero, negatives, floats and wrong decimals fail", function()
            local c = client{ transport = never() }
            local cases = {
                { 0, "range" }, { -5, "range" }, { 1.5, "type" }, { "103.5", "decimals" }, { "0.00", "range" },
                { "-1.00", "decimals" }, { "1,00", "decimals" }, { 9007199254740994, "range" },
            }
            for _, case in ipairs(cases) do
                local _, err = c:refund{ OrderID = "1", Amount = case[1], Currency = "EUR" }
                assert.equal("validation", err.type, tostring(case[1]))
                assert.equal("Amount", err.fields[1].path)
                if case[2] ~= "decimals" then assert.equal(case[2], err.fields[1].code, tostring(case[1])) end
            end
            local _, err = c:refund{ OrderID = "1", Amount = 500, Currency = "JPY" } -- no 2 decimals in JPY
            assert.same({ "Amount:decimals" }, paths(err))
            _, err = c:refund{ OrderID = "1", Amount = 500, Currency = "XYZ" }
            assert.same({ "Amount:format", "Currency:format" }, paths(err))
            local t = scripted(signed_ok({ orderid = "1", result = "1" }))
            assert(client{ transport = t }:refund{ OrderID = "1", Amount = 9007199254740992, Currency = "EUR" })
            assert.equal("90071992547409.92", core.json_decode(t.requests[1].body).params.Data.Amount)
        end)

        it("checks Charge's ShopperStatement characters, PaymentDate and required fields", function()
            local _, err = client{ transport = never() }:charge{
                AccountID = "1234567890", NotificationURL = "https://shop.example/n", EndUserID = 12345,
                Amount = "10.00", Currency = "SEK",
                Attributes = { ShopperStatement = "Shop*Brand!", PaymentDate = "2024-02-30", Email = "a@b.se" },
            }
            assert.same({ "Attributes.PaymentDate:format", "Attributes.ShopperStatement:pattern" }, paths(err))
            local t = scripted(signed_ok({ orderid = "9", result = "1" }))
            assert(client{ transport = t }:charge{
                AccountID = "1234567890", NotificationURL = "https://shop.example/n", EndUserID = 12345,
                Amount = "10.00", Currency = "SEK",
                Attributes = { ShopperStatement = "My Brand-1.com_x", PaymentDate = "2024-02-29", Email = "a@b.se" },
            })
            -- EndUserID goes out as the JSON integer it was given
            assert.matches('"EndUserID":12345,', t.requests[1].body)
        end)

        it("wants Email with a direct debit mandate in SelectAccount", function()
            local _, err = client{ transport = never() }:select_account{
                NotificationURL = "https://shop.example/n", EndUserID = "u",
                Attributes = { Firstname = "A", Lastname = "B", Country = "SE", Locale = "sv_SE",
                               SuccessURL = "https://s/ok", FailURL = "https://s/fail", RequestDirectDebitMandate = "1" },
            }
            assert.same({ "Attributes.Email:required" }, paths(err))
        end)

        it("refuses booleans and values that cannot be signed, anywhere in Data", function()
            local _, err = client{ transport = never() }:call("Anything", {
                Flag = true, Nested = { { Deep = false } }, Fn = print, Mixed = { 1, x = 2 } })
            assert.same({ "Flag:type", "Fn:type", "Mixed:type", "Nested[1].Deep:type" }, paths(err))
            assert.matches('"1" or "0"', err.fields[1].message)
        end)

        it("never shows the password, even when it is the problem", function()
            local _, err = client{ transport = never() }:deposit({})
            assert.not_matches(PASSWORD, tostring(err))
            for _, f in ipairs(err.fields) do assert.not_matches(PASSWORD, f.message) end
        end)
    end)
end)

describe("a Trustly answer", function()
    local function answering(fn) return client{ transport = scripted(fn) } end

    it("for another uuid or method, or badly signed, is a signature error", function()
        local cases = {
            function(doc) return trustly.answer(doc.method, core.uuid4(), { orderid = "1" }, PROVIDER_PRIVATE) end,
            function(doc) return trustly.answer("Refund", doc.params.UUID, { orderid = "1" }, PROVIDER_PRIVATE) end,
            function(doc) return trustly.answer(doc.method, doc.params.UUID, { orderid = "1" }, MERCHANT_PRIVATE) end,
            function(doc)
                return (trustly.answer(doc.method, doc.params.UUID, { orderid = "1" }, PROVIDER_PRIVATE):gsub('"1"', '"2"'))
            end,
            function(doc)
                local text = trustly.answer(doc.method, doc.params.UUID, { orderid = "1" }, PROVIDER_PRIVATE)
                return (text:gsub('"signature":"[^"]*"', '"signature":""'))
            end,
            function(doc)
                return trustly.error_answer(doc.method, core.uuid4(), 616, "ERROR_INVALID_CREDENTIALS", PROVIDER_PRIVATE)
            end,
        }
        for i, fn in ipairs(cases) do
            local r, err = answering(fn):deposit(deposit())
            assert.is_nil(r, "case " .. i)
            assert.equal("signature", err.type, "case " .. i)
            assert.matches("^%x+%-", err.request_id)
        end
    end)

    it("keeps the text of numbers when checking the signature", function()
        -- signed over "amount100.0": a decoder that made 100.0 into 100 would fail
        local c = answering(function(doc)
            local data = { amount = core.json_number("100.0"), big = core.json_number("12345678901234567890") }
            return trustly.answer(doc.method, doc.params.UUID, data, PROVIDER_PRIVATE)
        end)
        local r = assert(c:balance())
        assert.equal(100, r.amount)
    end)

    it("that is a signed error carries Trustly's code and message", function()
        for code, name in pairs(trustly.ERRORS) do
            local c = answering(function(doc)
                return trustly.error_answer(doc.method, doc.params.UUID, code, name, PROVIDER_PRIVATE)
            end)
            local r, err = c:balance()
            assert.is_nil(r)
            assert.equal("provider", err.type)
            assert.equal(code, err.code)
            assert.equal(name, err.name)
            assert.is_true(err.signed)
            assert.is_false(err.retryable)
            assert.matches(name, tostring(err))
        end
    end)

    it("that is not JSON-RPC is an HTTP error with the status", function()
        local c = answering(function()
            return { status = 502, headers = { ["content-type"] = "text/html" }, body = "<h1>bad gateway</h1>" }
        end)
        local r, err = c:call("Anything", {})
        assert.is_nil(r)
        assert.equal("http", err.type)
        assert.equal(502, err.http_status)
        c = answering(function() return "{}" end)
        r, err = c:balance()
        assert.is_nil(r)
        assert.equal("http", err.type)
    end)

    it("that is an unsigned protocol error is reported as unsigned", function()
        local c = answering(function()
            return '{"version":"1.1","error":{"name":"JSONRPCError","code":620,"message":"ERROR_UNKNOWN",'
                .. '"error":{"uuid":null,"method":null,"signature":null,"data":{"code":620,"message":"ERROR_UNKNOWN"}}}}'
        end)
        local _, err = c:balance()
        assert.equal("provider", err.type)
        assert.equal(620, err.code)
        assert.is_false(err.signed)
        assert.is_true(err.sent)
        assert.matches("an unsigned error answer to Balance, which proves nothing: ERROR_UNKNOWN (620)",
            err.message, 1, true)
        assert.matches("Trustly may have taken the Balance request: sending it again is safe", err.message, 1, true)
    end)

    it("that is not Trustly's signed answer leaves a Refund's outcome unknown, whatever it says", function()
        local unsigned_rpc = '{"version":"1.1","error":{"name":"JSONRPCError","code":620,"message":"ERROR_UNKNOWN",'
            .. '"error":{"uuid":null,"method":null,"signature":null,"data":{"code":620,"message":"ERROR_UNKNOWN"}}}}'
        local function answer(status, ctype, body)
            return function() return { status = status, headers = { ["content-type"] = ctype }, body = body } end
        end
        for _, case in ipairs {
            { "200 HTML", answer(200, "text/html", "<html>gateway hiccup</html>") },
            { "200 JSON, no JSON-RPC", answer(200, "application/json", '{"version":"1.1"}') },
            { "502 unsigned JSON error", answer(502, "application/json", '{"error":{"message":"upstream timeout"}}') },
            { "502 HTML", answer(502, "text/html", "<html>bad gateway</html>") },
            { "400 unsigned JSON error", answer(400, "application/json", '{"error":{"message":"no such order"}}') },
            { "200 unsigned protocol error", answer(200, "application/json", unsigned_rpc) },
            { "200 result signed with another key", function(doc)
                return trustly.answer(doc.method, doc.params.UUID, { orderid = "123", result = "1" }, MERCHANT_PRIVATE)
            end },
        } do
            local t = scripted(case[2])
            local r, err = client{ transport = t }:refund{ OrderID = "123", Amount = 1000, Currency = "EUR" }
            assert.is_nil(r, case[1])
            assert.is_true(err.sent, case[1])
            assert.is_false(err.retryable, case[1])
            assert.not_matches("Trustly refused", err.message, 1, true)
            assert.matches("its outcome is unknown: do not resend it blindly; check order 123 in Trustly's back office",
                err.message, 1, true)
            assert.equal(1, #t.requests, case[1])
        end
    end)

    it("lost after sending says how to find out what became of the call", function()
        local t = { request = function()
            return nil, { type = "network", message = "connection reset", sent = true }
        end }
        local _, err = client{ transport = t, retries = 1 }:deposit(deposit())
        assert.is_true(err.sent)
        assert.equal("order-1001", err.message_id)
        assert.matches('Trustly may have taken the Deposit request: send it again with the same MessageID "order-1001"',
            err.message, 1, true)
        _, err = client{ transport = t }:refund{ OrderID = "77", Amount = 100, Currency = "EUR" }
        assert.is_false(err.retryable)
        assert.matches("its outcome is unknown: do not resend it blindly; check order 77 in Trustly's back office",
            err.message, 1, true)
    end)

    it("is waited for again only where resending is safe", function()
        local function lost()
            return scripted(function() return nil end)
        end
        local function attempts(method, data)
            local t = lost()
            t.request = function(self, req)
                self.requests[#self.requests + 1] = req
                return nil, { type = "network", message = "connection reset", sent = true }
            end
            local _, err = client{ transport = t, retries = 2 }:call(method, data)
            assert.equal("network", err.type)
            return #t.requests
        end
        assert.equal(3, attempts("Deposit", deposit()))
        assert.equal(3, attempts("Balance", {}))
        assert.equal(3, attempts("CancelCharge", { OrderID = "1" }))
        assert.equal(1, attempts("Refund", { OrderID = "1", Amount = "1.00", Currency = "EUR" }))
        assert.equal(1, attempts("GetWithdrawals", { OrderID = "1" }))
        assert.equal(3, attempts("Withdraw", { MessageID = "w-1" }))
    end)
end)

describe("client:notification", function()
    local c = client()
    local data = {
        amount = "49.90", currency = "SEK", messageid = "deposit-0001", orderid = "1234567890",
        enduserid = "12345", notificationid = "9876543210", timestamp = "2024-05-01 12:34:56.789012+02", attributes = {},
    }

    it("maps every method to the common event", function()
        local expect = {
            pending = { "payment", "pending", 4990 }, credit = { "payment", "succeeded", 4990 },
            debit = { "payment", "reversed", 4990 }, payoutconfirmation = { "payout", "succeeded", 4990 },
        }
        for method, e in pairs(expect) do
            local note = assert(c:notification(trustly.notification(method, core.uuid4(), data, PROVIDER_PRIVATE)))
            assert.same(e, { note.kind, note.status, note.amount })
            assert.same({ "trustly", "SEK", "deposit-0001", "1234567890" },
                { note.provider, note.currency, note.merchant_ref, note.provider_ref })
        end
        local cancel = assert(c:notification(trustly.notification("cancel", "u-1", {
            messageid = "m", orderid = "1", enduserid = "e", notificationid = "n", timestamp = "t" }, PROVIDER_PRIVATE)))
        assert.same({ "payment", "canceled" }, { cancel.kind, cancel.status })
        assert.is_nil(cancel.amount)
        local account = assert(c:notification(trustly.notification("account", "u-2", {
            messageid = "m", orderid = "1", notificationid = "n2", accountid = "4000000001", verified = "1",
            attributes = { directdebitmandate = "1", clearinghouse = "SWEDEN" } }, PROVIDER_PRIVATE)))
        assert.same({ "account", "authorized", "4000000001", "1" },
            { account.kind, account.status, account.extra.data.accountid, account.extra.data.attributes.directdebitmandate })
        assert.equal("u-2", account.extra.uuid)
        assert.equal("n2", account.extra.notificationid)
    end)

    it("gives events in the contract's shape: raw the body string, Trustly's words under extra", function()
        local provider = require "luapay.provider"
        local kinds, statuses = {}, {}
        for _, k in ipairs(provider.KINDS) do kinds[k] = true end
        for _, st in ipairs(provider.STATUSES) do statuses[st] = true end
        for _, method in ipairs(trustly.NOTIFICATION_METHODS) do
            local raw = trustly.notification(method, core.uuid4(), data, PROVIDER_PRIVATE)
            local note = assert(c:notification(raw, { ["Content-Type"] = "application/json" }))
            assert.is_true(kinds[note.kind], method)
            assert.is_true(statuses[note.status], method)
            assert.equal(raw, note.raw)
            assert.same({ method, "9876543210", "1234567890", "deposit-0001", "12345" }, { note.extra.method,
                note.extra.notificationid, note.extra.orderid, note.extra.messageid, note.extra.enduserid })
            for _, k in ipairs { "method", "uuid", "notificationid", "orderid", "messageid", "enduserid", "data" } do
                assert.is_nil(rawget(note, k), k) -- only under extra
            end
            local tampered = raw:gsub("49%.90", "49.99")
            local none, err = c:notification(tampered)
            assert.is_nil(none)
            assert.equal("signature", err.type)
        end
    end)

    it("verifies, but does not map, methods it does not know", function()
        local note, err = c:notification(trustly.notification("kyc", "u-3", { orderid = "1" }, PROVIDER_PRIVATE))
        assert.is_nil(note)
        assert.equal("validation", err.type)
        assert.equal("kyc", err.method)
        -- Trustly signed it: it can still be acknowledged
        local answer = c:notification_response(err, true)
        assert.equal(200, answer.status)
        assert.equal("u-3", core.json_decode(answer.body).result.uuid)
        err = select(2, c:notification(trustly.notification("kyc", "u-3", { orderid = "1" }, MERCHANT_PRIVATE)))
        assert.equal("signature", err.type)
        -- a signature error carries method and uuid too, but nothing is signed for it
        assert.same({ status = 400, headers = { ["Content-Type"] = "text/plain" }, body = "ERROR" },
            c:notification_response(err, true))
    end)

    it("answers a recorded notification with HTTP 200 and the merchant's signed OK", function()
        local note = assert(c:notification(trustly.notification("credit", "u-4", data, PROVIDER_PRIVATE)))
        local answer = c:notification_response(note, true)
        assert.same({ 200, { ["Content-Type"] = "application/json" } }, { answer.status, answer.headers })
        assert.equal(trustly.notification_response("credit", "u-4", "OK", MERCHANT_PRIVATE), answer.body)
        local doc = core.json_decode(answer.body)
        assert.same({ "credit", "u-4", "OK", "1.1" }, { doc.result.method, doc.result.uuid, doc.result.data.status, doc.version })
        assert.is_true(trustly.verify("credit", "u-4", { status = "OK" }, doc.result.signature, MERCHANT_PUBLIC))
    end)

    it("answers what is not recorded with nothing signed, so that Trustly sends it again", function()
        local note = assert(c:notification(trustly.notification("credit", "u-5", data, PROVIDER_PRIVATE)))
        local answer = c:notification_response(note, false)
        assert.same({ status = 500, headers = { ["Content-Type"] = "text/plain" },
            body = "ERROR" }, answer)
        -- no verified event: 400, and nothing signed whatever received says
        for _, received in ipairs { true, false } do
            for _, event in ipairs { {}, { method = "credit", uuid = "u-5" } } do
                assert.equal(400, c:notification_response(event, received).status)
            end
            assert.equal(400, c:notification_response(nil, received).status)
        end
    end)

    it("keeps the deprecated notification_response(note, \"OK\" | \"FAILED\") -> JSON text until 0.3", function()
        local note = assert(c:notification(trustly.notification("credit", "u-6", data, PROVIDER_PRIVATE)))
        for _, status in ipairs({ "OK", "FAILED" }) do
            local doc = core.json_decode(c:notification_response(note, status))
            assert.same({ "credit", "u-6", status, "1.1" }, { doc.result.method, doc.result.uuid, doc.result.data.status, doc.version })
            assert.is_true(trustly.verify("credit", "u-6", { status = status }, doc.result.signature, MERCHANT_PUBLIC))
        end
        assert.has_error(function() c:notification_response(note, "ok") end,
            "trustly.Client:notification_response: bad argument #2 'status' (\"OK\" or \"FAILED\" expected)")
        assert.error_matches(function() c:notification_response({}, "OK") end, "method and uuid")
        assert.has_error(function() c:notification(nil) end,
            "trustly.verify_notification: bad argument #1 'raw_body' (string expected, got nil)")
    end)
end)
