-- TrustPay and money safety, against the sandbox with real lost answers:
-- the fake carries a call out and then drops the connection or answers 5xx
-- (_sandbox/lose_next), and counts on its side how often each background
-- call arrived. Refunds, captures and recurring charges are GET requests
-- that TrustPay does not deduplicate: each arrives once, and one left
-- without a clear answer says its outcome is unknown and how to find out.
-- API Banking orders likewise; reads are resent. TLS verification goes off
-- only on loopback.
--
-- "arrives once when the answer is lost on a reused connection" needs the
-- transport fix (libcurl must not resend a GET by itself, issue 12): it
-- fails on a branch without it.
local core = require "luapay.core"
local http = require "luapay.http"
local trustpay = require "luapay.trustpay"
local env = require "support.trustpay_env"

local sca, reference = env.sca, env.reference

local function no_sleep() end

describe("TrustPay money safety in the sandbox", function()
    local world

    setup(function()
        world = env.start()
    end)

    teardown(function()
        world:stop()
    end)

    -- A client with connections of its own, retrying without waiting.
    local function client(opts)
        local o = { sleep = no_sleep }
        for k, v in pairs(opts or {}) do o[k] = v end
        return world:client(o)
    end

    -- The next background or API Banking call is carried out, then its answer is lost.
    local function lose(answer)
        assert.equal(200, world:post("/trustpay/_sandbox/lose_next?answer=" .. answer).status)
    end

    -- The next background or API Banking call is carried out, then answered
    -- 200 with body, which is not what TrustPay documents.
    local function answer_next(body)
        assert.equal(200, world:post("/trustpay/_sandbox/answer_next?body=" .. http.escape(body)).status)
    end

    local function arrivals(ref)
        return world:json("/trustpay/_sandbox/arrivals?Reference=" .. ref).count
    end

    -- A card payment of `kind` paid by the customer: its PaymentRequestId.
    local function paid(tp, method, amount)
        local notify = world:box()
        local url = assert(tp[method](tp, sca{ Amount = amount, Currency = "EUR", Reference = reference("PAY"),
            NotificationUrl = notify, Url = "https://shop.example/back" }))
        local id = assert(world:open(url))
        world:pay(id)
        return id
    end

    -- Each background call on a payment made for it.
    local CALLS = {
        refund = function(tp) return paid(tp, "card_payment_url", 10000) end,
        capture = function(tp) return paid(tp, "preauthorization_url", 10000) end,
        recurring_charge = function(tp) return paid(tp, "recurring_initial_url", 10000) end,
    }

    local function payment(id)
        return world:json("/trustpay/_sandbox/payment?id=" .. id)
    end

    local function outcome_unknown(err, method)
        assert.is_true(err.sent, method)
        assert.is_false(err.retryable, method)
        assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
        assert.matches("do not resend it blindly", err.message, 1, true)
        assert.matches("notification", err.message, 1, true)
    end

    for method, make in pairs(CALLS) do
        describe(method, function()
            it("arrives once when the answer is lost on a reused connection, and says the outcome is unknown", function()
                local tp = client()
                local id = make(tp)
                -- a first call that is answered (1010: no such payment) keeps the connection alive
                local first = reference("FIRST")
                local _, ferr = tp[method](tp, { Amount = 1000, Currency = "EUR", Reference = first, PaymentRequestId = "999999999" })
                assert.equal(1010, ferr.code)
                assert.equal(1, arrivals(first))
                local ref = reference("LOST")
                lose("drop")
                local res, err = tp[method](tp, { Amount = 2000, Currency = "EUR", Reference = ref, PaymentRequestId = id })
                assert.equal(1, arrivals(ref), "the " .. method .. " reached TrustPay more than once")
                assert.is_nil(res, "a lost answer came back as a success")
                assert.equal("network", err.type)
                outcome_unknown(err, method)
                if method == "refund" then assert.equal(2000, payment(id).refunded) end
            end)

            for _, body in ipairs { '{"ResultCode":7}', '{"ResultCode":"3.5"}', '{"ResultCode":-1}',
                                    '{"ResultCode":true}', '{}' } do
                it("answered 200 with " .. body .. " after it was carried out says the outcome is unknown", function()
                    local tp = client()
                    local id = make(tp)
                    local ref = reference("SHAPE")
                    answer_next(body)
                    local params = { Amount = 1500, Currency = "EUR", Reference = ref, PaymentRequestId = id }
                    local res, err = tp[method](tp, params)
                    assert.is_nil(res, "an answer TrustPay does not document came back as a success")
                    assert.equal("provider", err.type)
                    assert.matches("ResultCode", err.message, 1, true)
                    outcome_unknown(err, method)
                    assert.equal(1, arrivals(ref))
                    if method == "refund" then assert.equal(1500, payment(id).refunded) end
                end)
            end

            for _, status in ipairs { 500, 502, 503, 504 } do
                it("answered " .. status .. " after it was carried out is not retryable and says how to find out", function()
                    local tp = client()
                    local id = make(tp)
                    local ref = reference("5XX")
                    lose(tostring(status))
                    local res, err = tp[method](tp, { Amount = 2500, Currency = "EUR", Reference = ref, PaymentRequestId = id })
                    assert.is_nil(res)
                    assert.equal(status, err.http_status)
                    outcome_unknown(err, method)
                    assert.equal(1, arrivals(ref))
                    if method == "refund" then assert.equal(2500, payment(id).refunded) end
                end)
            end
        end)
    end

    describe("API Banking", function()
        local function order()
            return {
                Amount = 12345, Currency = "EUR", MessageId = "MSG-" .. core.hex_encode(core.random_bytes(6)),
                DebtorAccount = "4107111111", DebtorName = "Shop s.r.o.", CityCode = "Bratislava",
                CreditorName = "Creditor", CreditorAccount = "SK3399520000002107425307", CreditorBankBic = "TPAYSKBX",
                CreditorBankName = "TrustPay", CreditorBankAddress = "Za kasarnou 1", CreditorBankCity = "Bratislava",
                CreditorBankCountry = "SK", RequestedExecutionDate = os.date("!%Y-%m-%d", os.time() + 86400),
            }
        end

        local function credit(tp) -- the first credit of March
            local next_credit = tp:transactions{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-31",
                Direction = "Credit" }
            return assert(next_credit())
        end

        for _, answer in ipairs { "drop", "500", "503" } do
            it("an order whose answer is lost (" .. answer .. ") is sent once and says how to find it", function()
                local tp = client()
                assert(tp:access_token())
                local before = world:stats().banking_calls
                lose(answer)
                local id, err = tp:create_order(order())
                assert.is_nil(id)
                assert.equal(before + 1, world:stats().banking_calls)
                assert.is_true(err.sent)
                assert.is_false(err.retryable)
                assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
                assert.matches("client:order(OrderId)", err.message, 1, true)
            end)
        end

        local function placed_unknown(err, what)
            assert.equal("provider", err.type)
            assert.matches(what, err.message, 1, true)
            assert.equal(200, err.http_status)
            assert.is_true(err.sent)
            assert.is_false(err.retryable)
            assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
            assert.matches("client:order(OrderId)", err.message, 1, true)
        end

        for _, body in ipairs { '{"ResultCode":"0"}', '{"OrderId":null}', '{"OrderId":"12345678901"}',
                                '{"OrderId":"12a"}', '{"OrderId":1.5}', '{"OrderId":true}', "[]" } do
            it("an order answered 200 with " .. body .. " is an error: it may have been placed", function()
                local tp = client()
                assert(tp:access_token())
                local before = world:stats().banking_calls
                answer_next(body)
                local ids = { tp:create_order(order()) }
                assert.equal(2, #ids, "create_order returned " .. #ids .. " values")
                assert.is_nil(ids[1])
                placed_unknown(ids[2], "TrustPay API Banking CreateOrder: the answer has no OrderId")
                assert.equal(before + 1, world:stats().banking_calls)
            end)

            it("a refund order answered 200 with " .. body .. " is an error: it may have been placed", function()
                local tp = client()
                local tx = credit(tp)
                local before = world:stats().banking_calls
                answer_next(body)
                local id, err = tp:refund_payment{ PaymentId = tx.PaymentId, Amount = 100, Currency = "EUR",
                                                   BeneficiaryName = "Eva" }
                assert.is_nil(id)
                assert.is_table(err, "refund_payment returned no error")
                placed_unknown(err, "TrustPay API Banking RefundPayment: the answer has no OrderId")
                assert.equal(before + 1, world:stats().banking_calls)
            end)
        end

        local function two_orders()
            local a, b = order(), order()
            a.CityCode, b.CityCode = nil, nil -- CreateOrders has none
            b.MessageId, b.Amount = a.MessageId, 500
            return { a, b }
        end

        local PER = "the answer's OrderIds does not hold one id per order: "
        for _, case in ipairs {
            { '{"ResultCode":"0"}', "the answer has no OrderIds list" },
            { '{"OrderIds":{"a":"123456789"}}', "OrderIds is not a list" },
            { '{"OrderIds":[]}', PER .. "0 for the 2 orders sent" },
            { '{"OrderIds":["123456789"]}', PER .. "1 for the 2 orders sent" },
            { '{"OrderIds":["1","2","3"]}', PER .. "3 for the 2 orders sent" },
            { '{"OrderIds":["123456789","x"]}', "the answer's OrderIds[2] is not an id (Numeric(10))" },
            { '{"OrderIds":["123456789",null]}', "the answer's OrderIds[2] is not an id (Numeric(10))" },
        } do
            it("orders answered 200 with " .. case[1] .. " are an error: they may have been placed", function()
                local tp = client()
                assert(tp:access_token())
                local before = world:stats().banking_calls
                answer_next(case[1])
                local ids, err = tp:create_orders(two_orders())
                assert.is_nil(ids, "an answer without an id per order came back as a success")
                placed_unknown(err, "TrustPay API Banking CreateOrders: " .. case[2])
                assert.equal(before + 1, world:stats().banking_calls)
            end)
        end

        it("gives an id TrustPay writes as a JSON number as its digits", function()
            local tp = client()
            assert(tp:access_token())
            answer_next('{"OrderId":123456789}')
            assert.equal("123456789", assert(tp:create_order(order())))
            answer_next('{"OrderIds":[123456790,"123456791"]}')
            assert.same({ "123456790", "123456791" }, assert(tp:create_orders(two_orders())))
        end)

        it("a refund order answered 503 is sent once and says how to find it", function()
            local tp = client()
            local tx = credit(tp)
            local before = world:stats().banking_calls
            lose("503")
            local id, err = tp:refund_payment{ PaymentId = tx.PaymentId, Amount = 100, Currency = "EUR", BeneficiaryName = "Ján Nováček" }
            assert.is_nil(id)
            assert.equal(before + 1, world:stats().banking_calls)
            assert.is_false(err.retryable)
            assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
        end)

        it("a read answered 503 is resent, and goes through", function()
            local tp = client()
            assert(tp:access_token())
            local before = world:stats().banking_calls
            lose("503")
            local list = assert(tp:accounts())
            assert.is_true(#list > 0)
            assert.equal(before + 2, world:stats().banking_calls)
        end)
    end)

    it("declares for every call whether it may be resent, and tells the transport", function()
        local real = core.http_client{ timeout_ms = 10000 }
        local seen = {}
        local recorder = { request = function(_, req)
            seen[#seen + 1] = { path = req.url:match("^https?://[^/]+/trustpay/([^?]+)"), idempotent = req.idempotent }
            return real:request(req)
        end }
        local tp = client{ transport = recorder }
        local params = { Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = "999999999" }
        for _, method in ipairs { "refund", "wire_refund", "capture", "recurring_charge" } do tp[method](tp, params) end
        tp:accounts()
        tp:order("123456789")
        tp:create_order({ Amount = 1 }) -- invalid: never sent
        local got = {}
        for _, s in ipairs(seen) do got[#got + 1] = s.path .. "=" .. tostring(s.idempotent) end
        assert.same({
            "mapi5/Card/PayPopup=false", "mapi5/wire/paypopup=false", "mapi5/Card/PayPopup=false", "mapi5/Card/PayPopup=false",
            "api/oauth2/token=true", "ApiBanking/GetAccountList=true", "ApiBanking/GetOrderDetails=true",
        }, got)
        real:close()
    end)

    describe("TLS verification", function()
        it("cannot be switched off for TrustPay's production endpoints or any other host", function()
            local cases = {
                {},                                                       -- both production defaults
                { base_url = world.sb.url .. "/trustpay" },               -- API Banking still production
                { base_url = "https://amapi.trustpay.eu.example" },
            }
            for _, o in ipairs(cases) do
                o.account_id, o.secret, o.verify = "4107111111", "s", false
                o.banking = { username = "u", password = "p" }
                local ok, err = pcall(trustpay.new, o)
                assert.is_false(ok)
                assert.matches("trustpay.new: verify = false is allowed only for a loopback URL", err, 1, true)
            end
            local ok = pcall(trustpay.new, { account_id = "4107111111", secret = "s", verify = false })
            assert.is_false(ok) -- the Merchant API alone, on its production default
        end)

        it("can be switched off for the sandbox on loopback", function()
            local tp = client{ verify = false }
            local id = paid(tp, "card_payment_url", 500)
            local refunded = assert(tp:refund{ Amount = 500, Currency = "EUR", Reference = reference("V"), PaymentRequestId = id })
            assert.equal(0, refunded.result_code)
            assert(tp:accounts())
        end)
    end)
end)
