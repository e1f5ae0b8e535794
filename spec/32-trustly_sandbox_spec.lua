-- Trustly's flows against the sandbox's fake: a merchant (this process,
-- luapay.trustly over libcurl) calls the API; the fake signs its answers
-- and, once the "customer" acts, posts signed notifications to a shop route
-- in the same nginx (spec/support/trustly_merchant.lua, luapay inside
-- nginx), checking every signed answer the shop gives.
local cjson = require "cjson"
local core = require "luapay.core"
local trustly = require "luapay.trustly"
local util = require "support.util"
local fake = require "support.trustly_fake"

local MERCHANT_PRIVATE = fake.MERCHANT_PRIVATE
local PROVIDER_PUBLIC = fake.PROVIDER_PUBLIC
local USER, PASS = fake.USER, fake.PASS

local function days_from_now(n)
    return os.date("!%Y-%m-%d", os.time() + n * 86400)
end

describe("Trustly against the sandbox", function()
    local sb, web, client, api_url

    local function new_client(extra)
        local opts = {
            username = USER, password = PASS, private_key = MERCHANT_PRIVATE, environment = "test",
            trustly_public_key = PROVIDER_PUBLIC, base_url = api_url, sleep = function() end,
        }
        for k, v in pairs(extra or {}) do opts[k] = v end
        return trustly.new(opts)
    end

    setup(function()
        sb = fake.start()
        api_url = sb.url .. "/trustly/api/1"
        web = core.http_client{ timeout_ms = 10000 }
        client = new_client()
    end)

    teardown(function()
        web:close()
        util.stop_sandbox(sb)
    end)

    local function get_json(path, method) return fake.get_json(web, sb.url, path, method) end

    local function simulate(orderid, action, query)
        local body, status = get_json(("/trustly/simulate/%s/%s%s"):format(orderid, action, query or ""), "POST")
        assert.equal(200, status, cjson.encode(body))
        return body
    end

    local function delivered(orderid) return fake.delivered(web, sb.url, orderid) end

    local function shop(orderid) return (get_json("/shop/orders/" .. orderid)) end

    local function deposit_data(overrides)
        local data = {
            NotificationURL = sb.url .. "/shop/notify/a2b63j23dj23883jhfhfh",
            EndUserID = "user-42",
            MessageID = "order-" .. core.hex_encode(core.random_bytes(6)),
            Attributes = {
                Currency = "EUR", Amount = 10050, Firstname = "Ann", Lastname = "Ek",
                Country = "SE", Locale = "sv_SE", Email = "ann@example.com",
                SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail",
            },
        }
        for k, v in pairs(overrides or {}) do data[k] = v end
        return data
    end

    local function credited_deposit(amount)
        local data = deposit_data()
        data.Attributes.Amount = amount
        local d = assert(client:deposit(data))
        simulate(d.orderid, "approve", "?repeat=none")
        delivered(d.orderid)
        return d, data
    end

    local function unique(list, field)
        local seen, n = {}, 0
        for _, x in ipairs(list) do
            if not seen[x[field]] then n = n + 1 end
            seen[x[field]] = true
        end
        return n
    end

    describe("a deposit", function()
        -- 001 seed, "Pay by invoice": "Build an integration to Accept one-time payments. In the Deposit API calls,
        -- include an invoice ID in attribute ExternalReference."
        it("001 seed, Pay by invoice: sends the invoice ID in Attributes.ExternalReference; the fake keeps it", function()
            local data = deposit_data()
            data.Attributes.ExternalReference = "INV-2024-0042"
            local d = assert(client:deposit(data))
            local order = get_json("/trustly/orders/" .. d.orderid)
            assert.equal("INV-2024-0042", order.external_reference)
            for _, bad in ipairs({ "", 42, { "INV" } }) do
                local again = deposit_data()
                again.Attributes.ExternalReference = bad
                local none, err = client:deposit(again)
                assert.is_nil(none)
                assert.equal("validation", err.type)
                assert.equal("Attributes.ExternalReference", err.fields[1].path)
            end
        end)

        -- 001 seed, deposit steps: "Integrate Trustly Express. See Trustly Express API." The seed names no
        -- attribute of it, so none is checked: what that API documents is sent and signed as given.
        it("001 seed, Trustly Express: attributes the seed does not list are sent as given", function()
            local data = deposit_data()
            data.Attributes.ExpressExample = "1"
            assert(client:deposit(data))
        end)

        it("is credited: checkout URL and OrderID, then pending, account and credit in any order, one delivered twice", function()
            local data = deposit_data()
            local d, err = client:deposit(data)
            assert.is_nil(err)
            assert.matches("^%d+$", d.orderid)
            assert.matches("^" .. sb.url:gsub("%p", "%%%0") .. "/trustly/checkout/" .. d.orderid, d.url)
            local page = assert(web:request{ url = d.url })
            assert.equal(200, page.status)
            assert.matches("Trustly sandbox checkout", page.body)

            local sim = simulate(d.orderid, "approve")
            assert.equal(4, #sim.notifications)
            local order = delivered(d.orderid)
            assert.equal("100.50", order.amount) -- sent as 10050 minor units
            assert.equal(4, #order.deliveries)
            assert.equal(3, unique(order.deliveries, "notificationid"))
            for i, delivery in ipairs(order.deliveries) do
                assert.equal(sim.notifications[i], delivery.method)
                assert.equal(200, delivery.http_status)
                assert.is_true(delivery.verified, delivery.error)
                assert.equal("OK", delivery.answer)
            end

            local seen = shop(d.orderid)
            assert.equal("succeeded", seen.state)
            assert.equal(3, #seen.events)
            assert.equal(1, seen.duplicates)
            assert.matches("^%d+$", seen.accountid)
            for _, e in ipairs(seen.events) do
                assert.equal(data.MessageID, e.merchant_ref)
                assert.equal(d.orderid, e.provider_ref)
                if e.method == "credit" then
                    assert.same({ kind = "payment", status = "succeeded", amount = 10050, currency = "EUR" },
                        { kind = e.kind, status = e.status, amount = e.amount, currency = e.currency })
                end
            end
        end)

        it("ends credited whatever the order: credit first, account last, pending repeated", function()
            local d = assert(client:deposit(deposit_data()))
            local sim = simulate(d.orderid, "approve", "?order=credit,pending,pending,account")
            assert.same({ "credit", "pending", "pending", "account" }, sim.notifications)
            delivered(d.orderid)
            local seen = shop(d.orderid)
            assert.equal("succeeded", seen.state) -- a late pending does not undo the credit
            assert.equal(1, seen.duplicates)
            assert.same({ "credit", "pending", "account" }, { seen.events[1].method, seen.events[2].method, seen.events[3].method })
        end)

        it("is cancelled by the customer: one cancel notification, no credit", function()
            local d = assert(client:deposit(deposit_data()))
            local sim = simulate(d.orderid, "cancel")
            assert.equal("cancel", sim.notifications[1])
            local order = delivered(d.orderid)
            assert.equal("canceled", order.status)
            for _, delivery in ipairs(order.deliveries) do assert.is_true(delivery.verified) end
            local seen = shop(d.orderid)
            assert.equal("canceled", seen.state)
            assert.equal(1, #seen.events)
            assert.equal("cancel", seen.events[1].method)
            -- a cancelled order cannot be approved afterwards
            local _, status = get_json("/trustly/simulate/" .. d.orderid .. "/approve", "POST")
            assert.equal(409, status)
        end)

        it("is credited and later debited: the debit reverses it", function()
            local d = credited_deposit(2500)
            simulate(d.orderid, "debit")
            local order = delivered(d.orderid)
            assert.equal("debited", order.status)
            local seen = shop(d.orderid)
            assert.equal("reversed", seen.state)
            local debit = seen.events[#seen.events]
            assert.same({ "debit", "reversed", 2500, "EUR" }, { debit.method, debit.status, debit.amount, debit.currency })
        end)
    end)

    describe("refunds", function()
        it("refund part, then the rest; more than what is left fails", function()
            local d = credited_deposit(10000)
            local r, err = client:refund{ OrderID = d.orderid, Amount = 3000, Currency = "EUR" }
            assert.is_nil(err)
            assert.same({ orderid = d.orderid, result = "1" }, r)

            r, err = client:refund{ OrderID = d.orderid, Amount = "70.01", Currency = "EUR" }
            assert.is_nil(r)
            assert.equal("provider", err.type)
            assert.equal(615, err.code)
            assert.equal("ERROR_INVALID_AMOUNT", err.name)

            assert.same({ orderid = d.orderid, result = "1" },
                assert(client:refund{ OrderID = d.orderid, Amount = "70.00", Currency = "EUR" }))
            err = select(2, client:refund{ OrderID = d.orderid, Amount = 1, Currency = "EUR" })
            assert.equal(615, err.code)

            local order = delivered(d.orderid)
            assert.equal("100.00", order.refunded)
            local confirmations = 0
            for _, delivery in ipairs(order.deliveries) do
                if delivery.method == "payoutconfirmation" then
                    confirmations = confirmations + 1
                    assert.is_true(delivery.verified)
                end
            end
            assert.equal(2, confirmations)
            assert.equal(2, shop(d.orderid).payouts)
        end)

        it("refund all of it at once; in another currency or for an unknown order it fails", function()
            local d = credited_deposit(4999)
            local _, err = client:refund{ OrderID = d.orderid, Amount = 4999, Currency = "SEK" }
            assert.equal(622, err.code)
            _, err = client:refund{ OrderID = "999999999", Amount = 100, Currency = "EUR" }
            assert.equal(623, err.code)
            assert.same({ orderid = d.orderid, result = "1" },
                assert(client:refund{ OrderID = d.orderid, Amount = 4999, Currency = "EUR" }))
            _, err = client:refund{ OrderID = d.orderid, Amount = 1, Currency = "EUR" }
            assert.equal(615, err.code)
        end)
    end)

    describe("direct debit", function()
        local function mandate()
            local sa, err = client:select_account{
                NotificationURL = sb.url .. "/shop/notify/sa", EndUserID = "user-77",
                MessageID = "sa-" .. core.hex_encode(core.random_bytes(6)),
                Attributes = {
                    Firstname = "Steve", Lastname = "Smith", Country = "SE", Locale = "sv_SE",
                    Email = "steve@example.com", RequestDirectDebitMandate = "1",
                    SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail",
                },
            }
            assert.is_nil(err)
            assert.matches("/trustly/checkout/" .. sa.orderid, sa.url)
            simulate(sa.orderid, "approve")
            delivered(sa.orderid)
            local seen = shop(sa.orderid)
            assert.equal("1", seen.mandate)
            return seen.accountid
        end

        local function charge_data(accountid, payment_date)
            return {
                AccountID = accountid, NotificationURL = sb.url .. "/shop/notify/charge", EndUserID = "user-77",
                MessageID = "charge-" .. core.hex_encode(core.random_bytes(6)), Amount = 1995, Currency = "SEK",
                Attributes = { ShopperStatement = "MyBrand.com", Email = "steve@example.com", PaymentDate = payment_date },
            }
        end

        it("SelectAccount registers a mandate; a Charge for a future date is cancelled with CancelCharge", function()
            local accountid = mandate()
            local ch, err = client:charge(charge_data(accountid, days_from_now(10)))
            assert.is_nil(err)
            assert.equal("1", ch.result)
            assert.equal(core.null, ch.rejected)
            delivered(ch.orderid)
            assert.equal("pending", shop(ch.orderid).state)

            local cancel = assert(client:cancel_charge{ OrderID = ch.orderid })
            assert.same({ result = "1", rejected = core.null }, cancel)
            delivered(ch.orderid)
            local seen = shop(ch.orderid)
            assert.equal("canceled", seen.state)
            assert.equal("cancel", seen.events[#seen.events].method)
        end)

        it("a Charge due today is credited and can no longer be cancelled", function()
            local accountid = mandate()
            local ch = assert(client:charge(charge_data(accountid, nil)))
            local order = delivered(ch.orderid)
            assert.same({ "pending", "credit" }, { order.deliveries[1].method, order.deliveries[2].method })
            local seen = shop(ch.orderid)
            assert.equal("succeeded", seen.state)
            assert.equal(1995, seen.events[2].amount)
            local cancel = assert(client:cancel_charge{ OrderID = ch.orderid })
            assert.same({ result = "0", rejected = "ERROR_CHARGE_ALREADY_PROCESSED" }, cancel)
        end)

        it("a Charge without a mandate or account is a business rejection, not an error", function()
            local d = credited_deposit(1000)
            local account_without_mandate = shop(d.orderid).accountid
            local r = assert(client:charge(charge_data(account_without_mandate, nil)))
            assert.same({ "0", "ERROR_MANDATE_NOT_FOUND" }, { r.result, r.rejected })
            r = assert(client:charge(charge_data("1", nil)))
            assert.same({ "0", "ERROR_ACCOUNT_NOT_FOUND" }, { r.result, r.rejected })
        end)
    end)

    it("AccountPayout pays to a known account and a payoutconfirmation follows", function()
        local d = credited_deposit(1000)
        local accountid = shop(d.orderid).accountid
        local before = assert(client:balance())
        local p, err = client:account_payout{
            NotificationURL = sb.url .. "/shop/notify/payout", AccountID = accountid, EndUserID = "user-42",
            MessageID = "payout-" .. core.hex_encode(core.random_bytes(6)), Amount = 80000, Currency = "EUR",
            Attributes = { ShopperStatement = "MyBrand.com", SenderInformation = {
                Partytype = "PERSON", Firstname = "Steve", Lastname = "Smith", CountryCode = "ES",
                CustomerID = "123456789", Address = "Street 1, 12345 Barcelona", DateOfBirth = "1990-03-31" } },
        }
        assert.is_nil(err)
        assert.equal("1", p.result)
        local order = delivered(p.orderid)
        assert.equal("payoutconfirmation", order.deliveries[1].method)
        assert.is_true(order.deliveries[1].verified)
        assert.equal(1, shop(p.orderid).payouts)
        local after = assert(client:balance())
        local function eur(list)
            for _, b in ipairs(list) do if b.currency == "EUR" then return core.to_minor(b.balance, "EUR") end end
        end
        assert.equal(eur(before) - 80000, eur(after))
    end)

    it("Balance lists each currency and follows credits", function()
        local before = assert(client:balance())
        assert.equal(core.array_mt, getmetatable(before))
        local currencies = {}
        for i, b in ipairs(before) do
            currencies[i] = b.currency
            assert.matches("^%-?%d+%.%d%d$", b.balance)
        end
        assert.same({ "EUR", "SEK" }, currencies)
        credited_deposit(12345)
        local after = assert(client:balance())
        assert.equal(core.to_minor(before[1].balance, "EUR") + 12345, core.to_minor(after[1].balance, "EUR"))
        assert.equal(before[2].balance, after[2].balance)
    end)

    describe("errors", function()
        it("a MessageID used before gives 637", function()
            local data = deposit_data()
            assert(client:deposit(data))
            local r, err = client:deposit(data)
            assert.is_nil(r)
            assert.equal("provider", err.type)
            assert.equal(637, err.code)
            assert.equal("ERROR_DUPLICATE_MESSAGE_ID", err.name)
            assert.is_nil(err.replayed) -- a new request, not a resent one
        end)

        it("wrong credentials give a signed 616, and the password appears nowhere", function()
            local bad = new_client{ password = "not-the-password" }
            local r, err = bad:deposit(deposit_data())
            assert.is_nil(r)
            assert.equal("provider", err.type)
            assert.equal(616, err.code)
            assert.is_true(err.signed)
            assert.not_matches("not%-the%-password", tostring(err))
            assert.not_matches("not%-the%-password", tostring(bad))
            for _, v in pairs(err) do
                if type(v) == "string" then assert.not_matches("not%-the%-password", v) end
            end
        end)

        it("a request signed with another key gives 636", function()
            local other = new_client{ private_key = util.fixture("keys/provider_private.pem") }
            local _, err = other:balance()
            assert.equal(636, err.code)
            assert.equal("ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE", err.name)
        end)

        it("an answer whose signature does not verify is rejected, never a result", function()
            get_json("/trustly/fault?mode=bad_signature&count=1", "POST")
            local r, err = client:deposit(deposit_data())
            assert.is_nil(r)
            assert.equal("signature", err.type)
            assert.matches("failed verification", err.message)
            -- and with Trustly's real key, the fake's (valid) answers are rejected too
            local real = new_client{ trustly_public_key = trustly.keys.test }
            r, err = real:balance()
            assert.is_nil(r)
            assert.equal("signature", err.type)
        end)

        it("an answer carrying another uuid is rejected", function()
            get_json("/trustly/fault?mode=foreign_uuid&count=1", "POST")
            local r, err = client:balance()
            assert.is_nil(r)
            assert.equal("signature", err.type)
            assert.matches("uuid", err.message)
        end)
    end)

    describe("retries", function()
        -- A transport that records every request it passes on.
        local function recording()
            local inner = core.http_client{ timeout_ms = 10000 }
            local t = { bodies = {} }
            function t:request(req)
                self.bodies[#self.bodies + 1] = req.body
                return inner:request(req)
            end
            function t.close() inner:close() end
            return t
        end

        it("resend the same UUID and MessageID after a lost answer; Trustly answers as the first time", function()
            local t = recording()
            local c = new_client{ transport = t }
            local data = deposit_data()
            get_json("/trustly/fault?mode=drop&count=1", "POST")
            local d, err = c:deposit(data)
            assert.is_nil(err)
            assert.equal(2, #t.bodies)
            assert.equal(t.bodies[1], t.bodies[2])
            local sent = core.json_decode(t.bodies[1])
            assert.equal(data.MessageID, sent.params.Data.MessageID)
            -- one order only: the MessageID is taken by it
            local _, dup = c:deposit(data)
            assert.equal(637, dup.code)
            assert.matches("^%d+$", d.orderid)
        end)

        it("report 637 on a resend after an attempt that may have reached Trustly as a replay", function()
            local c = new_client{ transport = recording() }
            get_json("/trustly/fault?mode=drop_forget&count=1", "POST")
            local r, err = c:deposit(deposit_data())
            assert.is_nil(r)
            assert.equal(637, err.code)
            assert.is_true(err.replayed)
            assert.equal(2, err.attempts)
            assert.is_true(err.delivered_before)
            assert.matches("may have reached Trustly", err.message)
        end)

        it("never resend a Refund that may have arrived", function()
            local d = credited_deposit(5000)
            local t = recording()
            local c = new_client{ transport = t }
            get_json("/trustly/fault?mode=drop&count=1", "POST")
            local r, err = c:refund{ OrderID = d.orderid, Amount = 1000, Currency = "EUR" }
            assert.is_nil(r)
            assert.equal("network", err.type)
            assert.equal(1, #t.bodies)
            assert.is_false(err.retryable)
            -- it did arrive: only 40.00 is left to refund
            local _, over = client:refund{ OrderID = d.orderid, Amount = 4001, Currency = "EUR" }
            assert.equal(615, over.code)
        end)

        -- Only Trustly's signed answer says what became of a request. The fake
        -- carries the request out, then answers what a proxy might.
        for _, case in ipairs {
            { "html_200", "a 200 HTML page", 200 },
            { "not_rpc_200", "a 200 JSON that is no JSON-RPC answer", 200 },
            { "unsigned_502", "a 502 with an unsigned JSON error", 502,
              "an unsigned error that proves nothing: upstream timed out" },
        } do
            it("a Refund answered with " .. case[2] .. ": outcome unknown, no refusal, not resent", function()
                local d = credited_deposit(5000)
                local t = recording()
                local c = new_client{ transport = t }
                get_json("/trustly/fault?mode=" .. case[1] .. "&count=1", "POST")
                local r, err = c:refund{ OrderID = d.orderid, Amount = 1000, Currency = "EUR" }
                assert.is_nil(r)
                assert.equal("http", err.type)
                assert.equal(case[3], err.http_status)
                assert.is_true(err.sent)
                assert.is_false(err.retryable)
                assert.not_matches("Trustly refused", err.message, 1, true)
                if case[4] then assert.matches(case[4], err.message, 1, true) end
                assert.matches("its outcome is unknown: do not resend it blindly", err.message, 1, true)
                assert.matches("check order " .. d.orderid .. " in Trustly's back office", err.message, 1, true)
                assert.equal("Refund", err.method)
                assert.equal(1, #t.bodies)
                -- it was carried out: only 40.00 is left to refund
                local _, over = client:refund{ OrderID = d.orderid, Amount = 4001, Currency = "EUR" }
                assert.equal(615, over.code)
            end)
        end

        it("a Deposit answered with a 200 HTML page is of unknown outcome; the error names its MessageID", function()
            local data = deposit_data()
            get_json("/trustly/fault?mode=html_200&count=1", "POST")
            local r, err = client:deposit(data)
            assert.is_nil(r)
            assert.equal("http", err.type)
            assert.is_true(err.sent)
            assert.equal(data.MessageID, err.message_id)
            assert.matches("Trustly may have taken the Deposit request: send it again with the same MessageID \""
                .. data.MessageID .. "\"", err.message, 1, true)
            -- it was: Trustly took the MessageID
            local _, dup = client:deposit(data)
            assert.equal(637, dup.code)
        end)

        it("a 637 after attempts that were never sent is another request's MessageID, not a replay", function()
            local data = deposit_data()
            assert(client:deposit(data))
            -- the first attempt is refused before sending; the resend meets the MessageID taken
            local inner, n = core.http_client{ timeout_ms = 10000 }, 0
            local c = new_client{ transport = { request = function(_, req)
                n = n + 1
                if n == 1 then return nil, { type = "network", message = "connection refused", sent = false } end
                return inner:request(req)
            end, close = function() inner:close() end } }
            local r, err = c:deposit(data)
            assert.is_nil(r)
            assert.equal(637, err.code)
            assert.equal(2, err.attempts)
            assert.is_nil(err.replayed)
            assert.not_matches("reached Trustly", err.message, 1, true)
            assert.is_false(err.delivered_before)
            c:close()
        end)

        it("a server error on an idempotent call is retried and succeeds", function()
            local t = recording()
            local c = new_client{ transport = t }
            get_json("/trustly/fault?mode=http_503&count=1", "POST")
            local b = assert(c:balance())
            assert.equal(2, #t.bodies)
            assert.equal("EUR", b[1].currency)
        end)
    end)

    describe("notifications", function()
        local function notify(body)
            local res = assert(web:request{ method = "POST", url = sb.url .. "/trustly/notify", body = cjson.encode(body),
                                            headers = { ["Content-Type"] = "application/json" } })
            assert.equal(200, res.status, res.body)
            return cjson.decode(res.body)
        end

        local function credit_data()
            return {
                amount = "10.00", currency = "EUR", messageid = "m-n", orderid = "1999999999",
                enduserid = "u", notificationid = tostring(os.time()) .. core.hex_encode(core.random_bytes(2)),
                timestamp = "2024-05-01 12:34:56.789012+02", attributes = {},
            }
        end

        it("a tampered notification is rejected and answered with nothing signed", function()
            local before = get_json("/shop/rejected").rejected
            local entry = notify{ url = sb.url .. "/shop/notify/x", method = "credit", data = credit_data(), tamper = true }
            assert.equal(400, entry.http_status)
            assert.is_false(entry.verified)
            assert.is_nil(core.json_decode(entry.body or ""))
            assert.not_matches('"signature"', entry.body)
            assert.equal(before + 1, get_json("/shop/rejected").rejected)
            assert.equal(0, #shop("1999999999").events)

            -- the same notification untouched is accepted
            entry = notify{ url = sb.url .. "/shop/notify/x", method = "credit", data = credit_data() }
            assert.equal(200, entry.http_status)
            assert.is_true(entry.verified)
            assert.equal("OK", entry.answer)
            assert.equal("succeeded", shop("1999999999").state)
        end)
    end)
end)
