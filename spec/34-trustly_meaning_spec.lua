-- What a Trustly notification or answer means, as Trustly meant it: a
-- failed refund is never money received, an account without an active
-- direct-debit mandate is not an authorization, a refund Trustly did not
-- accept is an error. End to end against the sandbox's fake (the shop in
-- nginx refunds from its back office and reads the notifications with its
-- store in the shared dict), and per notification with signed bodies.
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local util = require "support.util"
local fake = require "support.trustly_fake"

local MERCHANT_PRIVATE = fake.MERCHANT_PRIVATE
local PROVIDER_PRIVATE = util.fixture("keys/provider_private.pem")
local PROVIDER_PUBLIC = fake.PROVIDER_PUBLIC
local USER, PASS = fake.USER, fake.PASS

local function new_client(extra)
    local opts = {
        username = USER, password = PASS, private_key = MERCHANT_PRIVATE,
        trustly_public_key = PROVIDER_PUBLIC, sleep = function() end,
    }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return trustly.new(opts)
end

describe("Trustly against the fake, the shop reading what Trustly meant", function()
    local sb, web, client, api_url

    setup(function()
        sb = fake.start()
        api_url = sb.url .. "/trustly/api/1"
        web = core.http_client{ timeout_ms = 10000 }
        client = new_client{ base_url = api_url }
    end)

    teardown(function()
        web:close()
        util.stop_sandbox(sb)
    end)

    local function get_json(path, method) return fake.get_json(web, sb.url, path, method) end

    local function delivered(orderid) return fake.delivered(web, sb.url, orderid) end

    local function shop(orderid) return (get_json("/shop/orders/" .. orderid)) end

    local function shop_refund(orderid, amount)
        local body, status = get_json(("/shop/refund/%s?amount=%d&currency=EUR"):format(orderid, amount), "POST")
        assert.equal(200, status)
        return body
    end

    local function credited_deposit(amount)
        local d = assert(client:deposit{
            NotificationURL = sb.url .. "/shop/notify/r8f2k1", EndUserID = "user-42",
            MessageID = "order-" .. core.hex_encode(core.random_bytes(6)),
            Attributes = {
                Currency = "EUR", Amount = amount, Firstname = "Ann", Lastname = "Ek", Country = "SE", Locale = "sv_SE",
                SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail",
            },
        })
        local _, status = get_json("/trustly/simulate/" .. d.orderid .. "/approve?repeat=none", "POST")
        assert.equal(200, status)
        delivered(d.orderid)
        assert.equal("succeeded", shop(d.orderid).state)
        return d.orderid
    end

    local function count(events, kind, status)
        local n = 0
        for _, e in ipairs(events) do
            if e.kind == kind and e.status == status then n = n + 1 end
        end
        return n
    end

    it("a refund that fails comes back as a credit: the shop sees a failed refund, not money received", function()
        local orderid = credited_deposit(10000)
        get_json("/trustly/fault?mode=refund_fails&count=1", "POST")
        local r = shop_refund(orderid, 3000)
        assert.same({ orderid = orderid, result = "1" }, r.result)
        local order = delivered(orderid)
        local last = order.deliveries[#order.deliveries]
        assert.same({ "credit", true, "OK" }, { last.method, last.verified, last.answer })

        local seen = shop(orderid)
        local e = seen.events[#seen.events]
        assert.same({ "credit", "refund", "failed", 3000, "EUR" }, { e.method, e.kind, e.status, e.amount, e.currency })
        assert.equal(1, count(seen.events, "payment", "succeeded")) -- the deposit's credit only
        assert.same({ { status = "failed", amount = 3000, currency = "EUR" } }, seen.refunds)
        assert.equal("succeeded", seen.state)
        -- the money never left: all of it can still be refunded
        assert.same({ orderid = orderid, result = "1" }, shop_refund(orderid, 10000).result)
    end)

    it("a refund that is paid out: its payout confirmation is a refund, not a payout", function()
        local orderid = credited_deposit(5000)
        assert.same({ orderid = orderid, result = "1" }, shop_refund(orderid, 2000).result)
        delivered(orderid)
        local seen = shop(orderid)
        local e = seen.events[#seen.events]
        assert.same({ "payoutconfirmation", "refund", "refunded", 2000 }, { e.method, e.kind, e.status, e.amount })
        assert.is_nil(seen.payouts)
    end)

    it("the account a deposit came from carries no direct-debit mandate: not an authorization", function()
        local orderid = credited_deposit(1000)
        local seen = shop(orderid)
        local account
        for _, e in ipairs(seen.events) do
            if e.kind == "account" then account = e end
        end
        assert.equal("0", seen.mandate)
        assert.equal("canceled", account.status)
    end)

    it("a Refund answered with result 0 is a provider error, never success data", function()
        local orderid = credited_deposit(4000)
        get_json("/trustly/fault?mode=refund_not_accepted&count=1", "POST")
        local r, err = client:refund{ OrderID = orderid, Amount = 1000, Currency = "EUR" }
        assert.is_nil(r)
        assert.equal("provider", err.type)
        assert.equal("0", err.result)
        assert.is_true(err.signed)
        assert.is_false(err.retryable)
        assert.matches('Trustly did not accept the Refund: result "0"', err.message, 1, true)
        -- through the shop too
        get_json("/trustly/fault?mode=refund_not_accepted&count=1", "POST")
        assert.equal("provider", shop_refund(orderid, 1000).error.type)
    end)
end)

describe("Trustly notifications, one by one", function()
    local function note(method, data, uuid)
        return trustly.notification(method, uuid or core.uuid4(), data, PROVIDER_PRIVATE)
    end

    local function money(method, orderid, amount, notificationid, extra)
        local data = {
            amount = amount, currency = "EUR", messageid = "m-" .. orderid, orderid = orderid, enduserid = "u",
            notificationid = notificationid, timestamp = "2024-05-01 12:34:56.789012+02", attributes = {},
        }
        for k, v in pairs(extra or {}) do data[k] = v end
        return note(method, data)
    end

    it("relate a credit to the refund it answers by order, amount and currency", function()
        local c = new_client()
        local first = assert(c:notification(money("credit", "700", "100.00", "n-1")))
        assert.same({ "payment", "succeeded" }, { first.kind, first.status })
        assert(c:record_refund("700", "100.00", "EUR")) -- refunded in full, elsewhere
        -- the deposit's credit delivered again is still the deposit's
        local again = assert(c:notification(money("credit", "700", "100.00", "n-1")))
        assert.same({ "payment", "succeeded" }, { again.kind, again.status })
        -- another credit for that amount is the refund failing
        local failed = assert(c:notification(money("credit", "700", "100.00", "n-2")))
        assert.same({ "refund", "failed", 10000 }, { failed.kind, failed.status, failed.amount })
        assert.same({ orderid = "700", amount = 10000, currency = "EUR" }, failed.refund)
        -- not for another amount, currency or order
        assert.equal("payment", assert(c:notification(money("credit", "700", "99.00", "n-3"))).kind)
        assert.equal("payment", assert(c:notification(money("credit", "701", "100.00", "n-4"))).kind)
    end)

    it("know the refunds a client made, even before its deposit's credit was seen", function()
        local c = new_client{ transport = { request = function() return nil, { type = "network", message = "down", sent = true } end } }
        local _, err = c:refund{ OrderID = "800", Amount = 2500, Currency = "EUR" }
        assert.equal("network", err.type) -- may have arrived: known all the same
        local failed = assert(c:notification(money("credit", "800", "25.00", "n-9")))
        assert.same({ "refund", "failed" }, { failed.kind, failed.status })
        local paid = assert(c:notification(money("payoutconfirmation", "800", "25.00", "n-10")))
        assert.same({ "refund", "refunded" }, { paid.kind, paid.status })
        -- a Refund through client:call is known too; one refused before sending is not
        c:call("Refund", { OrderID = "801", Amount = "7.00", Currency = "EUR" })
        assert.equal("refund", assert(c:notification(money("credit", "801", "7.00", "n-13"))).kind)
        local _, invalid = c:refund{ OrderID = "802", Amount = 700, Currency = "EUR", Attributes = { ExternalReference = true } }
        assert.equal("validation", invalid.type)
        assert.equal("payment", assert(c:notification(money("credit", "802", "7.00", "n-14"))).kind)
    end)

    it("keep the store where the caller says: two clients sharing one see each other's refunds", function()
        local store = trustly.memory_store()
        local back_office, notifications = new_client{ store = store }, new_client{ store = store }
        assert(back_office:record_refund("900", 1200, "EUR"))
        local failed = assert(notifications:notification(money("credit", "900", "12.00", "n-11")))
        assert.same({ "refund", "failed" }, { failed.kind, failed.status })
        -- the pure function takes the store too
        local e = assert(trustly.verify_notification(money("credit", "900", "12.00", "n-12"), nil,
            { trustly_public_key = PROVIDER_PUBLIC, store = store }))
        assert.same({ "refund", { orderid = "900", amount = 1200, currency = "EUR" } }, { e.kind, e.extra.refund })
        -- and so does its deprecated 0.1 form, until 0.3
        e = assert(trustly.read_notification(money("credit", "900", "12.00", "n-13"), PROVIDER_PUBLIC, store))
        assert.equal("refund", e.kind)
        assert.error_matches(function() new_client{ store = {} } end, "option 'store'")
        assert.error_matches(function() trustly.read_notification("{}", PROVIDER_PUBLIC, 1) end, "'store'")
        assert.error_matches(function()
            trustly.verify_notification("{}", nil, { trustly_public_key = PROVIDER_PUBLIC, store = 1 })
        end, "keys.store", 1, true)
    end)

    it("read a notification flagged refund = 1 as the refund's", function()
        local c = new_client()
        local expect = { pending = "pending", credit = "failed", debit = "refunded", payoutconfirmation = "refunded" }
        for method, status in pairs(expect) do
            local e = assert(c:notification(money(method, "1000", "30.00", "r-" .. method, { refund = "1" })))
            assert.same({ "refund", status, 3000 }, { e.kind, e.status, e.amount }, method)
        end
        local cancel = assert(c:notification(note("cancel", { orderid = "1000", messageid = "m", notificationid = "r-c",
            refund = "1", attributes = { reason = "", details = "" } })))
        assert.same({ "refund", "failed" }, { cancel.kind, cancel.status })
        -- without the flag, a debit is the deposit reversed
        local debit = assert(c:notification(money("debit", "1001", "30.00", "d-1")))
        assert.same({ "payment", "reversed" }, { debit.kind, debit.status })
    end)

    it("report an account as authorized only with an active direct-debit mandate", function()
        local c = new_client()
        local function account(attributes, verified)
            local e = assert(c:notification(note("account", { messageid = "m", orderid = "1", notificationid = "a",
                accountid = "4000000001", verified = verified, attributes = attributes })))
            assert.equal("account", e.kind)
            return e.status
        end
        assert.equal("authorized", account({ directdebitmandate = "1", clearinghouse = "SWEDEN" }, "1"))
        assert.equal("canceled", account({ directdebitmandate = "0", clearinghouse = "SWEDEN" }, "1"))
        assert.equal("canceled", account({ directdebitmandate = "0" }, "0"))
        assert.equal("succeeded", account({ clearinghouse = "SWEDEN" }, "1"))
        assert.equal("pending", account({}, "0"))
    end)
end)

describe("Trustly answers", function()
    local function answering(data)
        local t = { requests = 0 }
        function t.request(_, req)
            t.requests = t.requests + 1
            local doc = core.json_decode(req.body, { numbers = "lexeme" })
            return { status = 200, headers = { ["content-type"] = "application/json" },
                     body = trustly.answer(doc.method, doc.params.UUID, data, PROVIDER_PRIVATE) }
        end
        return new_client{ transport = t }
    end

    it("an AccountPayout or Refund answered with another result than 1 is a provider error", function()
        local payout = {
            NotificationURL = "https://shop.example/n", AccountID = "4000000001", EndUserID = "u", MessageID = "p-1",
            Amount = 1000, Currency = "EUR", Attributes = { ShopperStatement = "Shop" },
        }
        local refused = { { orderid = "1", result = "0" }, { orderid = "1" }, { orderid = "1", result = "0", rejected = "ERROR_X" } }
        for _, data in ipairs(refused) do
            local r, err = answering(data):account_payout(payout)
            assert.is_nil(r)
            assert.equal("provider", err.type)
            assert.matches("Trustly did not accept the AccountPayout", err.message, 1, true)
            r, err = answering(data):refund{ OrderID = "1", Amount = 100, Currency = "EUR" }
            assert.is_nil(r)
            assert.equal("provider", err.type)
            if data.rejected then assert.equal("ERROR_X", err.name) end
        end
        assert.same({ orderid = "1", result = "1" },
            answering({ orderid = "1", result = "1" }):refund{ OrderID = "1", Amount = 100, Currency = "EUR" })
        -- Charge keeps its business rejections as results
        local charge = answering({ orderid = core.null, result = "0", rejected = "ERROR_MANDATE_NOT_FOUND" }):charge{
            AccountID = "1", NotificationURL = "https://shop.example/n", EndUserID = "u", MessageID = "c-1", Amount = 100,
            Currency = "SEK", Attributes = { ShopperStatement = "Shop", Email = "a@example.com" } }
        assert.equal("ERROR_MANDATE_NOT_FOUND", charge.rejected)
    end)
end)
