-- beGateway notifications mean what beGateway meant (issue 12): a test
-- transaction (seed 003: "test | boolean | If true, the transaction is a test
-- one.") is never reported like money received, and a transaction that
-- cannot be read as one of the documented types and statuses is an error,
-- never a success. Notifications are signed here with the fake's key, and
-- delivered over loopback by the sandbox's fake to its stand-in shop.
local core = require "luapay.core"
local http = require "luapay.http"
local util = require "support.util"
local sandbox = require "luapay.sandbox"
local begateway = require "luapay.begateway"
local dataset = require "luapay.sandbox.dataset"

local PSP, SECRET = "1", "begateway-dwh-secret"
local LIVE_DWH = "https://dwh.example.com" -- a shop's client: no I/O in these specs
local PUBLIC_PEM = util.fixture("keys/provider_public.pem")
local provider_key = assert(core.pkey(util.fixture("keys/provider_private.pem")))

local function body_of(tx)
    return assert(core.json_encode{ transaction = tx })
end

local function signed(body)
    return { ["Content-Type"] = "application/json", ["Content-Signature"] = core.base64_encode(provider_key:sign(body, "sha256")) }
end

local function shop_client(extra)
    local opts = { psp_id = PSP, secret = SECRET, dwh_url = LIVE_DWH, public_key = PUBLIC_PEM }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return begateway.new(opts)
end

local ds = dataset.new()

-- The first data-set transaction (live or test) with these fields.
local function find(test, want)
    for i = test and ds.bg_live + 1 or 1, test and ds.bg_total or ds.bg_live do
        local c = ds:bg_core(i)
        local ok = true
        for k, v in pairs(want or {}) do ok = ok and c[k] == v end
        if ok then return i, c end
    end
    error("no such transaction in the data set")
end

describe("beGateway test transactions", function()
    local test_i, test_c = find(true, { type = "payment", status = "successful" })
    local live_i = find(false, { type = "payment", status = "successful" })
    local test_body = body_of(ds:begateway(test_i))
    local live_body = body_of(ds:begateway(live_i))

    it("come back from begateway.verify_notification with extra.test = true, live ones with extra.test = false", function()
        assert.is_true(ds:begateway(test_i).test)
        local event = assert(begateway.verify_notification(test_body, signed(test_body), { public_key = PUBLIC_PEM }))
        assert.is_true(event.extra.test)
        assert.equal("payment", event.kind)
        assert.equal("succeeded", event.status)
        assert.equal(test_c.uid, event.provider_ref)
        event = assert(begateway.verify_notification(live_body, signed(live_body), { public_key = PUBLIC_PEM }))
        assert.is_false(event.extra.test)
    end)

    it("are refused by a live shop's client:notification as a provider error, whatever the credentials", function()
        local basic = "Basic " .. core.base64_encode("361:shop-key")
        for _, case in ipairs({
            { shop_client(), signed(test_body) },
            { begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = LIVE_DWH, shop_id = "361", shop_key = "shop-key" },
              { Authorization = basic } },
            { shop_client{ accept_test = false }, signed(test_body) },
        }) do
            local event, err = case[1]:notification(test_body, case[2])
            assert.is_nil(event)
            assert.equal("provider", err.type)
            assert.equal("test_transaction", err.code)
            assert.equal("beGateway notification: transaction '" .. test_c.uid
                .. "' is a test transaction (no money moved), refused: the client was not built with accept_test = true", err.message)
            assert.is_true(err.event.extra.test) -- authentic, for the log
            assert.not_matches("shop%-key", tostring(err))
        end
        local event = assert(shop_client():notification(live_body, signed(live_body)))
        assert.is_false(event.extra.test)
        assert.equal("succeeded", event.status)
    end)

    it("are taken, marked extra.test = true, by a client built with accept_test = true", function()
        local event = assert(shop_client{ accept_test = true }:notification(test_body, signed(test_body)))
        assert.is_true(event.extra.test)
        assert.equal("succeeded", event.status)
        assert.is_false(assert(shop_client{ accept_test = true }:notification(live_body, signed(live_body))).extra.test)
    end)

    it("need a test flag that is a boolean, and accept_test must be one", function()
        for _, v in ipairs({ "true", "false", 1, {} }) do
            local tx = ds:begateway(live_i)
            tx.test = v
            local body = body_of(tx)
            local event, err = shop_client{ accept_test = true }:notification(body, signed(body))
            assert.is_nil(event)
            assert.equal("provider", err.type)
            assert.equal("beGateway notification: transaction.test is not a boolean", err.message)
        end
        local tx = ds:begateway(live_i)
        tx.test = nil
        local body = body_of(tx)
        assert.is_false(assert(shop_client():notification(body, signed(body))).extra.test)
        assert.has_error(function() shop_client{ accept_test = "yes" } end, "begateway.new: option 'accept_test' must be a boolean")
    end)
end)

describe("beGateway transaction types and statuses", function()
    local client = shop_client()

    local function webhook(tx)
        local body = body_of(tx)
        return client:notification(body, signed(body))
    end

    local function tx(type_, status)
        return { uid = "6f1c7f7e-4b43-4d6e-9a55-0f1e1d2c3b4a", type = type_, status = status, amount = 1250,
                 currency = "EUR", tracking_id = "order-7", test = false }
    end

    it("map every documented type, successful, to what the money did", function()
        local want = {
            payment = "succeeded", capture = "succeeded", authorization = "authorized", tokenization = "succeeded",
            payout = "succeeded", credit = "succeeded", void = "canceled", refund = "refunded", chargeback = "reversed",
        }
        for _, t in ipairs(begateway.TYPES) do
            local event = assert(webhook(tx(t, "successful")))
            assert.equal(t, event.extra.type)
            assert.equal(want[t], event.status, t)
            assert.equal(1250, event.amount)
            assert.equal("order-7", event.merchant_ref)
        end
    end)

    it("map every other documented status the same for every type", function()
        local want = { failed = "failed", error = "failed", pending = "pending", incomplete = "pending", expired = "canceled" }
        for _, t in ipairs(begateway.TYPES) do
            for s, status in pairs(want) do
                local event = assert(webhook(tx(t, s)))
                assert.equal(t, event.extra.type)
                assert.equal(status, event.status, t .. "/" .. s)
            end
        end
    end)

    it("report a failed refund as a failed refund, never a received payment", function()
        for _, s in ipairs({ "failed", "error" }) do
            local event = assert(webhook(tx("refund", s)))
            assert.equal("refund", event.kind)
            assert.equal("failed", event.status)
        end
        local event = assert(webhook(tx("refund", "successful")))
        assert.same({ "refund", "refunded" }, { event.kind, event.status })
    end)

    it("report a chargeback as a reversal", function()
        local event = assert(webhook(tx("chargeback", "successful")))
        assert.same({ "chargeback", "reversed" }, { event.kind, event.status })
    end)

    describe("call a transaction they cannot read a provider error naming the field, never a success", function()
        local cases = {
            { "no type", { type = http.null }, "transaction.type is missing" },
            { "a type beGateway does not document", { type = "sale" },
              "transaction.type 'sale' is not one beGateway documents (authorization, payment, tokenization, payout, "
              .. "capture, void, refund, credit, chargeback)" },
            { "a type that is not a string", { type = 1 }, "transaction.type is not one beGateway documents" },
            { "a type in another case", { type = "Payment" }, "transaction.type 'Payment' is not one" },
            { "no status", { status = http.null }, "transaction.status is missing" },
            { "a status beGateway does not document", { status = "approved" },
              "transaction.status 'approved' is not one beGateway documents (successful, failed, incomplete, error, pending, expired)" },
            { "a status that is not a string", { status = true }, "transaction.status is not one beGateway documents" },
            { "a success without an amount", { amount = http.null }, "transaction.amount is not a whole number of minor units" },
            { "a success with a fractional amount", { amount = 12.5 }, "transaction.amount is not a whole number of minor units" },
            { "a success with an amount as text", { amount = "1250" }, "transaction.amount is not a whole number of minor units" },
            { "a success without a currency", { currency = http.null }, "transaction.currency is missing" },
        }
        for _, case in ipairs(cases) do
            it(case[1], function()
                local t = tx("payment", "successful")
                for k, v in pairs(case[2]) do t[k] = v ~= http.null and v or nil end
                local event, err = webhook(t)
                assert.is_nil(event)
                assert.equal("provider", err.type)
                assert.equal("beGateway notification: " .. case[3], err.message:sub(1, #case[3] + 24))
                event, err = begateway.event(t)
                assert.is_nil(event)
                assert.equal("provider", err.type)
                assert.equal("beGateway transaction: " .. case[3], err.message:sub(1, #case[3] + 23))
            end)
        end
    end)
end)

describe("beGateway notifications delivered by the sandbox's fake", function()
    local sb, fetch
    local SHOP_KEY = require("luapay.sandbox.begateway").DEFAULTS.shop_key

    setup(function()
        sb = assert(sandbox.start{ routes = { ["/begateway/"] = "luapay.sandbox.begateway" } })
        fetch = http.new{ retries = 0 }
    end)
    teardown(function() util.stop_sandbox(sb) end)

    -- Asks the fake to notify the stand-in shop `inbox`; returns what arrived.
    local function deliver(inbox, i, set)
        local url = sb.url .. "/begateway/inbox/" .. inbox
        local res = assert(fetch:request{ method = "POST", url = sb.url .. "/begateway/notify",
            json = { url = url, i = i, set = set } })
        assert.equal(200, res.status, res.body)
        assert.same({ http_status = 200, body = "OK" }, res.json)
        local list = assert(fetch:request{ url = url }).json
        local got = list[#list]
        return got.body, { ["Content-Signature"] = got.content_signature, Authorization = got.authorization }
    end

    it("carry the data set's test flag, and a live shop refuses the test one", function()
        local live_i, live_c = find(false, { type = "payment", status = "successful" })
        local test_i, test_c = find(true, { type = "payment", status = "successful" })
        local live_body, live_headers = deliver("test-flag", live_i)
        local test_body, test_headers = deliver("test-flag", test_i)
        assert.is_false(core.json_decode(live_body).transaction.test)
        assert.is_true(core.json_decode(test_body).transaction.test)

        -- by the signature, or by the shop's Basic credentials (both are sent)
        local by_key = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway", public_key = PUBLIC_PEM }
        local by_basic = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway",
            shop_id = test_c.shop_id, shop_key = SHOP_KEY }
        local event = assert(by_key:notification(live_body, live_headers))
        assert.same({ live_c.uid, "succeeded", false }, { event.provider_ref, event.status, event.extra.test })
        for _, c in ipairs({ by_key, by_basic }) do
            local none, err = c:notification(test_body, test_headers)
            assert.is_nil(none)
            assert.equal("test_transaction", err.code)
        end
        local sandbox_shop = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway",
            public_key = PUBLIC_PEM, accept_test = true }
        event = assert(sandbox_shop:notification(test_body, test_headers))
        assert.same({ test_c.uid, "succeeded", true }, { event.provider_ref, event.status, event.extra.test })
    end)

    it("say a failed refund, a chargeback and a type-less transaction as beGateway meant them", function()
        local c = begateway.new{ psp_id = PSP, secret = SECRET, dwh_url = sb.url .. "/begateway", public_key = PUBLIC_PEM }
        local event = assert(c:notification(deliver("meaning", (find(false, { type = "refund", status = "failed" })))))
        assert.same({ "refund", "failed" }, { event.kind, event.status })
        event = assert(c:notification(deliver("meaning", (find(false, { type = "chargeback", status = "successful" })))))
        assert.same({ "chargeback", "reversed" }, { event.kind, event.status })
        local none, err = c:notification(deliver("meaning", (find(false)), { type = http.null }))
        assert.is_nil(none)
        assert.equal("provider", err.type)
        assert.equal("beGateway notification: transaction.type is missing", err.message)
    end)
end)
