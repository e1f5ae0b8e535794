-- TrustPay payments end to end against the sandbox: the merchant builds the
-- pop-up URL, the customer pays (the fake plays the customer), TrustPay
-- posts signed notifications to the merchant's notification URL (a real
-- endpoint in the sandbox), and the merchant verifies them, refunds,
-- captures and charges again with background calls.
local core = require "luapay.core"
local trustpay = require "luapay.trustpay"
local env = require "support.trustpay_env"
local util = require "support.util"

local sca, reference = env.sca, env.reference

describe("TrustPay payments in the sandbox", function()
    local world, tp

    setup(function()
        world = env.start()
        tp = world:client()
    end)

    teardown(function()
        world:stop()
    end)

    -- Builds the URL, opens it, pays, and returns the fake's answer and the box.
    local function checkout(method, params, pay_query)
        local notify, box = world:box()
        params.NotificationUrl = params.NotificationUrl or notify
        params.Url = params.Url or "https://shop.example/back" -- every outcome returns here
        local url = assert(tp[method](tp, params))
        local id, code = world:open(url)
        assert.is_string(id, "the pop-up refused the payment with result code " .. tostring(code))
        return world:pay(id, pay_query), box, id
    end

    local function events(box, n)
        local out = {}
        for i, q in ipairs(world:received(box, n)) do out[i] = assert(tp:notification(q)) end
        return out
    end

    describe("an instant bank transfer", function()
        it("announces the payment (2), then confirms it (0), both signed", function()
            local ref = reference("W")
            local paid, box, id = checkout("wire_payment_url", { Amount = 1234, Currency = "EUR", Reference = ref })
            assert.equal(0, paid.ResultCode)
            local ev = events(box, 2)
            assert.equal(2, ev[1].extra.result_code)
            assert.equal("pending", ev[1].status)
            assert.equal(0, ev[2].extra.result_code)
            assert.equal("succeeded", ev[2].status)
            for _, e in ipairs(ev) do
                assert.equal("wire", e.extra.method)
                assert.equal(ref, e.merchant_ref)
                assert.equal(id, e.provider_ref)
                assert.equal(1234, e.amount)
                assert.equal("EUR", e.currency)
                assert.equal("Ján Nováček", e.extra.params.CounterAccountName)
            end
            assert.is_nil(ev[1].extra.params.OrderId) -- optional fields come and go; the signature follows
            assert.is_string(ev[2].extra.params.OrderId)
            assert.matches("^https://shop%.example/back%?", paid.redirect)
            local back = tp:redirect_result(paid.redirect)
            assert.is_false(back.verified)
            assert.equal(ref, back.Reference)
            assert.equal(0, back.ResultCode)
        end)

        it("takes CZK and refuses other currencies before anything is sent", function()
            local paid = checkout("wire_payment_url", { Amount = 50000, Currency = "CZK", Reference = reference("W") })
            assert.equal(0, paid.ResultCode)
            local url, err = tp:wire_payment_url{ Amount = 100, Currency = "USD", Reference = "r" }
            assert.is_nil(url)
            assert.equal("Currency", err.fields[1].path)
        end)

        -- 002 seed, "Supported countries": CZ and SK for instant bank transfers.
        it("002 seed, Supported countries: takes Country CZ or SK, refuses others (the client before sending, the fake too)", function()
            local _, err = tp:wire_payment_url{ Amount = 100, Currency = "EUR", Reference = reference("W"), Country = "DE" }
            assert.equal("Country", err.fields[1].path)
            local url = assert(tp:wire_payment_url{ Amount = 100, Currency = "EUR", Reference = reference("W"), Country = "SK" })
            assert.is_string((world:open(url)))
            local id, code = world:open((url:gsub("Country=SK", "Country=DE"))) -- Country is not signed
            assert.is_nil(id)
            assert.equal(1001, code)
        end)

        -- 002 seed, "API update 2020 - SCA": CardHolder Varchar(100), at least 3 characters.
        it("002 seed, API update 2020 - SCA: CardHolder up to 100 characters", function()
            local ok = assert(tp:card_payment_url(sca{ Amount = 100, Currency = "EUR", Reference = reference("C"),
                CardHolder = ("Č"):rep(100) }))
            assert.is_string((world:open(ok)))
            local _, err = tp:card_payment_url(sca{ Amount = 100, Currency = "EUR", Reference = reference("C"),
                CardHolder = ("a"):rep(101) })
            assert.equal("CardHolder", err.fields[1].path)
            assert.equal("max_len", err.fields[1].code)
        end)

        it("sends the customer who cancels back with 1005", function()
            local paid = checkout("wire_payment_url", { Amount = 100, Currency = "EUR", Reference = reference("W") }, "outcome=cancel")
            assert.equal(1005, paid.ResultCode)
            local back = tp:redirect_result(paid.redirect)
            assert.equal("canceled", back.status)
            assert.equal("User cancel", back.result.name)
            assert.equal("canceled", world:json("/trustpay/_sandbox/payment?id=" .. paid.PaymentRequestId).state)
        end)

        it("refunds a bank transfer with a background call to the wire endpoint", function()
            local paid, box = checkout("wire_payment_url", { Amount = 2000, Currency = "EUR", Reference = reference("W") })
            events(box, 2)
            local res = assert(tp:wire_refund{ Amount = 500, Currency = "EUR", Reference = reference("WR"),
                PaymentRequestId = paid.PaymentRequestId })
            assert.equal(0, res.result_code)
            local refund = events(box, 3)[3]
            assert.equal("refund", refund.kind)
            assert.equal("refunded", refund.status)
            assert.equal(500, refund.amount)
        end)
    end)

    describe("the merchant's answer (client:notification_response)", function()
        -- Pays by card with the notification going to the merchant's handler
        -- in box mode-<random>; returns TrustPay's calls once there are n.
        local function calls(mode, n)
            local box = mode .. "-" .. reference("B")
            checkout("card_payment_url", sca{ Amount = 700, Currency = "EUR", Reference = reference("A"),
                NotificationUrl = world.sb.url .. "/shop/answer/" .. box })
            local list = world:received(box, n)
            local out = {}
            for i, text in ipairs(list) do out[i] = assert(require("luapay.http").decode_json(text)) end
            return out, box
        end

        it("200 OK for a recorded event: TrustPay calls once; raw is the query it called with", function()
            local list, box = calls("ok", 1)
            assert.same({ "payment", "succeeded", "CRDT", 200 }, { list[1].kind, list[1].status, list[1].type, list[1].answered })
            assert.equal(list[1].args, list[1].raw)
            core.sleep(0.5) -- the fake calls again within 0.1 s when it is not answered 200
            assert.equal("1", world:get("/shop/attempts/" .. box).body)
        end)

        it("500 when the event could not be recorded, 400 for a notification that does not verify: TrustPay calls again", function()
            for _, mode in ipairs({ "busy", "forged" }) do
                local list, box = calls(mode, 3) -- the fake's three attempts
                for _, c in ipairs(list) do assert.equal(mode == "busy" and 500 or 400, c.answered) end
                assert.equal(mode == "busy" and "payment" or false, list[1].kind)
                assert.equal("3", world:get("/shop/attempts/" .. box).body)
            end
        end)
    end)

    describe("a card payment", function()
        it("is authorized and captured (3) with the SCA fields, then partly refunded", function()
            local ref = reference("C")
            local paid, box, id = checkout("card_payment_url", sca{ Amount = 2500, Currency = "EUR", Reference = ref })
            assert.equal(3, paid.ResultCode)
            local ev = events(box, 1)[1]
            assert.equal("card", ev.extra.method)
            assert.equal("succeeded", ev.status)
            assert.equal(id, ev.provider_ref)
            assert.equal(2500, ev.amount)
            assert.equal("420000******0000", ev.extra.card.CardMask)
            assert.equal("1230", ev.extra.card.CardExpiration)
            assert.matches("^%d+$", ev.extra.card.AuthNumber)
            assert.is_nil(ev.extra.card.CardId)

            local res = assert(tp:refund{ Amount = 1000, Currency = "EUR", Reference = ref .. "-R1", PaymentRequestId = id })
            assert.equal(0, res.result_code)
            assert.equal("Success", res.result.name)
            assert.equal("000.000.000", res.acquirer_response_id)
            local refund = events(box, 2)[2]
            assert.equal("refunded", refund.status)
            assert.equal(1000, refund.amount)

            -- only 15.00 is left to refund
            local none, err = tp:refund{ Amount = 1501, Currency = "EUR", Reference = ref .. "-R2", PaymentRequestId = id }
            assert.is_nil(none)
            assert.equal("provider", err.type)
            assert.equal(1011, err.code)
            assert(tp:refund{ Amount = 1500, Currency = "EUR", Reference = ref .. "-R2", PaymentRequestId = id })
        end)

        local failing = {
            ["4200000000000001"] = "Rejected - card expired",
            ["4200000000000002"] = "Rejected - card limit exceeded",
            ["4200000000000003"] = "Rejected - failed 3DS authentication",
            ["4200000000000004"] = "Rejected - insufficient funds",
            ["4200000000000005"] = "Rejected - invalid CVV",
            ["4200000000000006"] = "Rejected - invalid expiry date",
            ["4200000000000007"] = "Rejected - too many invalid tries",
            ["5555555555554444"] = "Rejected - invalid card number",
        }
        for card, why in pairs(failing) do
            it("fails with the test card " .. card .. " (" .. why .. ")", function()
                local paid = checkout("card_payment_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("F"),
                    ErrorUrl = "https://shop.example/sorry" }, "card=" .. card)
                assert.equal(1014, paid.ResultCode)
                assert.matches("^https://shop%.example/sorry%?", paid.redirect)
                local back = tp:redirect_result(paid.redirect)
                assert.is_false(back.verified)
                assert.equal("failed", back.status)
                assert.equal("Rejected transaction", back.result.name)
                assert.equal(why, back.acquirer)
                assert.equal("failed", world:json("/trustpay/_sandbox/payment?id=" .. paid.PaymentRequestId).state)
            end)
        end

        it("succeeds with each of the documented good test cards", function()
            for _, card in ipairs({ "4200000000000000", "4200000000001234", "4200000000005555" }) do
                local paid, box = checkout("card_payment_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("G") },
                    "card=" .. card)
                assert.equal(3, paid.ResultCode)
                assert.equal("420000******" .. card:sub(-4), events(box, 1)[1].extra.card.CardMask)
            end
        end)

        it("is refused by the pop-up when signed with the wrong secret (1004)", function()
            local other = world:client{ secret = "not-the-secret" }
            local id, code = world:open(assert(other:card_payment_url(sca{ Amount = 100, Currency = "EUR", Reference = "r" })))
            assert.is_nil(id)
            assert.equal(1004, code)
            local other_account = world:client{ account_id = "4107000001" }
            id, code = world:open(assert(other_account:wire_payment_url{ Amount = 100, Currency = "EUR", Reference = "r" }))
            assert.is_nil(id)
            assert.equal(1002, code)
        end)
    end)

    describe("card on file", function()
        it("registers a card, then pays and preauthorizes with its CardId", function()
            local paid, box = checkout("card_on_file_register_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("COF") })
            assert.equal(3, paid.ResultCode)
            local reg = events(box, 1)[1]
            local card_id = reg.extra.card.CardId
            assert.matches("^%x+$", card_id)

            local again, box2 = checkout("card_on_file_purchase_url",
                sca{ Amount = 4200, Currency = "EUR", Reference = reference("COF"), CardId = card_id })
            assert.equal(3, again.ResultCode)
            local ev = events(box2, 1)[1]
            assert.equal(card_id, ev.extra.card.CardId)
            assert.equal("succeeded", ev.status)

            local pre, box3, id = checkout("card_on_file_preauthorization_url",
                sca{ Amount = 9900, Currency = "EUR", Reference = reference("COF"), CardId = card_id })
            assert.equal(5, pre.ResultCode)
            assert.equal("authorized", events(box3, 1)[1].status)
            local captured = assert(tp:capture{ Amount = 9900, Currency = "EUR", Reference = reference("CAP"), PaymentRequestId = id })
            assert.equal(3, captured.result_code)
        end)

        it("refuses a CardId TrustPay never issued", function()
            local url = assert(tp:card_on_file_purchase_url(sca{ Amount = 100, Currency = "EUR", Reference = "r", CardId = "ffff" }))
            local id, code = world:open(url)
            assert.is_nil(id)
            assert.equal(1001, code)
        end)
    end)

    describe("a preauthorization", function()
        it("reserves the amount (5), captures part of it (3) and notifies the capture", function()
            local ref = reference("P")
            local paid, box, id = checkout("preauthorization_url", sca{ Amount = 10000, Currency = "EUR", Reference = ref })
            assert.equal(5, paid.ResultCode)
            local first = events(box, 1)[1]
            assert.equal("authorized", first.status)
            assert.equal(5, first.extra.result_code)
            assert.equal("AuthorizedOnly", first.extra.result.name)

            local res = assert(tp:capture{ Amount = 8000, Currency = "EUR", Reference = ref, PaymentRequestId = id })
            assert.equal(3, res.result_code)
            assert.equal("Authorized", res.result.name)
            local captured = events(box, 2)[2]
            assert.equal("succeeded", captured.status)
            assert.equal(8000, captured.amount)
            assert.equal(id, captured.provider_ref)

            local twice, err = tp:capture{ Amount = 100, Currency = "EUR", Reference = ref, PaymentRequestId = id }
            assert.is_nil(twice)
            assert.equal(1011, err.code)
            assert.equal("Unsupported transaction", err.result.result.name)
        end)

        -- 002 seed, Capture and Refund: "Parameters are the same as for standard Purchase, but these additional
        -- parameters have to be added": the billing fields, NotificationUrl and Description are taken too.
        it("002 seed, Capture/Refund: take the standard Purchase's parameters; their NotificationUrl gets the notification", function()
            local ref = reference("P")
            local paid, box, id = checkout("preauthorization_url", sca{ Amount = 10000, Currency = "EUR", Reference = ref })
            assert.equal(5, paid.ResultCode)
            events(box, 1)
            local other_url, other = world:box()
            local res = assert(tp:capture(sca{ Amount = 8000, Currency = "EUR", Reference = ref, PaymentRequestId = id,
                NotificationUrl = other_url, Description = "Capture of order 42", Localization = "de", Country = "AT",
                Url = "https://shop.example/back" }))
            assert.equal(3, res.result_code)
            local captured = assert(tp:notification(world:received(other, 1)[1]))
            assert.equal(8000, captured.amount)
            assert.equal("succeeded", captured.status)
            res = assert(tp:refund(sca{ Amount = 1000, Currency = "EUR", Reference = ref .. "R1", PaymentRequestId = id,
                NotificationUrl = other_url, Description = "Refund 1" }))
            assert.equal(0, res.result_code)
            local refunded = assert(tp:notification(world:received(other, 2)[2]))
            assert.equal("refunded", refunded.status)
            assert.equal(1000, refunded.amount)
        end)

        it("cannot capture a plain purchase or more than was reserved", function()
            local paid = checkout("card_payment_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("P") })
            local _, err = tp:capture{ Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = paid.PaymentRequestId }
            assert.equal(1011, err.code)
            local pre = checkout("preauthorization_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("P") })
            _, err = tp:capture{ Amount = 101, Currency = "EUR", Reference = "r", PaymentRequestId = pre.PaymentRequestId }
            assert.equal(1011, err.code)
        end)
    end)

    describe("recurring payments", function()
        it("charges again in the background after an initial payment", function()
            local paid, box, initial = checkout("recurring_initial_url",
                sca{ Amount = 999, Currency = "EUR", Reference = reference("SUB") })
            assert.equal(3, paid.ResultCode)
            assert.equal("succeeded", events(box, 1)[1].status)
            local ref = reference("SUB-2")
            local res = assert(tp:recurring_charge{ Amount = 999, Currency = "EUR", Reference = ref, PaymentRequestId = initial })
            assert.equal(3, res.result_code)
            local charge = events(box, 2)[2]
            assert.equal(ref, charge.merchant_ref)
            assert.equal("succeeded", charge.status)
            assert.are_not.equal(initial, charge.provider_ref)
        end)

        it("starts with a 0.00 preauthorization and charges later", function()
            local paid, box, initial = checkout("recurring_initial_preauthorization_url",
                sca{ Amount = 0, Currency = "EUR", Reference = reference("RIP") })
            assert.equal(5, paid.ResultCode)
            local ev = events(box, 1)[1]
            assert.equal(0, ev.amount)
            assert.equal("authorized", ev.status)
            assert.equal(3, assert(tp:recurring_charge(sca{ Amount = 1500, Currency = "EUR", Reference = reference("RIP-2"),
                PaymentRequestId = initial })).result_code)
            assert.equal(1500, events(box, 2)[2].amount)
        end)

        it("cannot charge a payment that was not a recurring initial one", function()
            local paid = checkout("card_payment_url", sca{ Amount = 100, Currency = "EUR", Reference = reference("N") })
            local _, err = tp:recurring_charge{ Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = paid.PaymentRequestId }
            assert.equal(1011, err.code)
        end)
    end)

    describe("background call result codes", function()
        local params = { Amount = 100, Currency = "EUR", Reference = "r", PaymentRequestId = "999999999" }

        it("1010: the transaction does not exist", function()
            local _, err = tp:refund(params)
            assert.equal("provider", err.type)
            assert.equal(1010, err.code)
            assert.equal("Transaction not found", err.result.result.name)
        end)

        it("1004: the signature does not verify", function()
            local _, err = world:client{ secret = "wrong" }:refund(params)
            assert.equal(1004, err.code)
        end)

        it("1002: the account is unknown", function()
            local _, err = world:client{ account_id = "4107000001" }:capture(params)
            assert.equal(1002, err.code)
        end)

        it("1001: a parameter is missing (a request the client would never build)", function()
            local q = { AccountId = env.ACCOUNT, Amount = "1.00", Currency = "EUR", Reference = "r", PaymentType = "8" }
            q.Signature = trustpay.sign(env.SECRET, "refund", q)
            local res = world:get("/trustpay/mapi5/Card/PayPopup?" .. require("luapay.http").encode_query(q))
            assert.equal(1001, trustpay.parse_result(res.body).result_code)
        end)

        for code, r in pairs(trustpay.result_codes) do
            if code >= 1000 then
                it(("%d: %s, as TrustPay answers it"):format(code, r.name), function()
                    world:post(("/trustpay/_sandbox/fail_next?ResultCode=%d&AcquirerResponseId=800.100.155"):format(code))
                    local res, err = tp:recurring_charge(params)
                    assert.is_nil(res)
                    assert.equal("provider", err.type)
                    assert.equal(code, err.code)
                    assert.equal(r.name, err.result.result.name)
                    assert.equal("Rejected - insufficient funds", err.result.acquirer)
                end)
            end
        end

        it("accepts each success code a background call can answer", function()
            for _, code in ipairs({ 0, 1, 3, 4, 5 }) do
                world:post(("/trustpay/_sandbox/fail_next?ResultCode=%d"):format(code))
                local res = assert(tp:capture(params))
                assert.equal(code, res.result_code)
                assert.equal(trustpay.result_codes[code].name, res.result.name)
            end
        end)
    end)
end)

describe("examples/trustpay_card.lua", function()
    it("runs against its own sandbox and shows the payment, the notification and the refund", function()
        local lua, build = util.LUA, util.PLAIN_BUILD
        local p = io.popen(("env -u LD_PRELOAD -u ASAN_OPTIONS LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;'"
            .. " %s examples/trustpay_card.lua 2>&1; echo \"exit=$?\""):format(build, lua))
        local out = p:read("*a")
        p:close()
        assert.matches("exit=0", out, 1, true)
        assert.matches("notification, verified by the shop%s+ORD%-1001 succeeded 25%.00 EUR, card ", out)
        assert.matches("refund notification%s+refund refunded 10%.00 EUR\n", out)
        assert.matches("1011 Unsupported transaction", out, 1, true)
    end)
end)
