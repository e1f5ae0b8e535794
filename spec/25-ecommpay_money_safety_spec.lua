-- ecommpay and money safety, against the fake Gate in the sandbox with real
-- lost answers: the fake carries a request out and then drops the
-- connection or answers 5xx (sandbox/lose_answer). A payment whose answer
-- was lost comes back through status, replayed, made once; a refund is sent
-- once and, unanswered, says its outcome is unknown and how to find out; an
-- answer that is not what ecommpay documents (unsigned, empty, another
-- payment's) is an error; TLS verification goes off only on loopback.
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"
local H = require "support.ecommpay"
local util = require "support.util"

local function no_sleep() end

describe("ecommpay money safety against the sandbox", function()
    local sb

    setup(function()
        sb = H.start { balance = 500000 }
    end)

    teardown(function()
        util.stop_sandbox(sb)
    end)

    -- The next Gate answer is lost after the request was carried out.
    local function lose(how, body, sign)
        local c = core.http_client {}
        local res = assert(c:request { method = "POST", body = body or "",
            url = ("%s/ecommpay/sandbox/lose_answer?how=%s%s"):format(sb.url, how, sign and "&sign=1" or "") })
        c:close()
        assert.equal(200, res.status)
    end

    -- A client on a connection of its own, retrying without waiting.
    local function fresh_gate()
        return H.gate(sb, { sleep = no_sleep })
    end

    -- A purchase the customer approved: its payment_id.
    local function paid(gate, amount)
        local id = H.unique("paid")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), amount, "EUR")))
        local redirect = assert(gate:callback(H.callbacks(sb, id, 1)[1].body))
        H.customer(redirect, "approve")
        H.callbacks(sb, id, 2)
        return id
    end

    local function refund_request(id, amount, refund_id)
        return { general = { payment_id = id }, customer = { ip_address = "198.51.100.7" },
                 payment = { amount = amount, currency = "EUR", description = "Returned goods", merchant_refund_id = refund_id } }
    end

    describe("a payment whose answer was lost", function()
        it("comes back from status with replayed = true, made once, when the connection dropped", function()
            local gate = fresh_gate()
            local id = H.unique("lost")
            lose("drop")
            local before = H.requests(sb)
            local res, err = gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 2500, "EUR"))
            assert.is_nil(err)
            assert.is_true(res.replayed)
            assert.same({ "success", id, H.PROJECT_ID }, { res.status, res.payment_id, res.project_id })
            local payment = res.payment
            assert.same({ "ecommpay", id, 2500, "EUR", "pending" },
                { payment.provider, payment.merchant_ref, payment.amount, payment.currency, payment.status })
            -- the sale, its resend (refused by ecommpay as a duplicate), the status call
            assert.equal(before + 3, H.requests(sb))
            local state = H.state(sb, id)
            assert.equal(1, #state.operations)
            assert.equal(state.operations[1].request_id, res.request_id)
            assert.equal(1, #H.callbacks(sb, id, 1))
        end)

        it("comes back the same way when the answer was a 504 after the payout was made, paid out once", function()
            local gate = fresh_gate()
            local id = H.unique("payout")
            lose("504")
            local res = assert(gate:payout("trustly", {
                general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
                payment = { amount = 4000, currency = "SEK" },
                customer = { id = "customer-9", ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
                account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
            }))
            assert.is_true(res.replayed)
            assert.same({ "payout", "succeeded", 4000 }, { res.payment.kind, res.payment.status, res.payment.amount })
            assert.equal(1, #H.state(sb, id).operations)
        end)

        -- The payment_id was used before by another payment; the new request
        -- gets a 5xx (a proxy's or ecommpay's, nothing tells which), is resent
        -- and refused as a duplicate. Whatever the status answer shows that
        -- the request did not ask for, the duplicate error stands.
        -- A sale or a payout of amount in currency for a customer (to an account).
        local function request(op, id, amount, currency, customer, account)
            local r
            if op == "payout" then
                r = {
                    general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
                    payment = { amount = amount, currency = currency },
                    customer = { ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
                    account = { clearinghouse = "SWEDEN", bank_code = "5000", number = account or "1234567890" },
                }
            else
                r = H.sale_request(id, H.callback_url(sb, id), amount, currency)
            end
            r.customer.id = customer
            return r
        end

        local sale, payout = { "sale", 1000, "EUR", "customer-1" }, { "payout", 1000, "EUR", "customer-1" }
        for _, case in ipairs {
            -- what differs; the earlier payment; the new request
            { "another amount", sale, { "sale", 2000, "EUR", "customer-1" } },
            { "the same amount in another currency", { "sale", 1000, "SEK", "customer-1" }, sale },
            { "the same amount and currency, another customer", { "sale", 1000, "EUR", "customer-7" }, sale },
            { "the same amount, currency and customer, a payout", payout, sale },
            { "the same amount, currency and customer, a sale", sale, payout },
            { "a payout to another account", payout, { "payout", 1000, "EUR", "customer-1", "9994567890" } },
        } do
            local name = "is not confused with an earlier payment under its payment_id (" .. case[1] .. ")"
            it(name .. ": the duplicate error stands", function()
                local id = H.unique("taken")
                local earlier, new = case[2], case[3]
                local gate = fresh_gate()
                assert(gate[earlier[1]](gate, "trustly", request(earlier[1], id, earlier[2], earlier[3], earlier[4])))
                lose("503")
                gate = fresh_gate()
                local res, err = gate[new[1]](gate, "trustly", request(new[1], id, new[2], new[3], new[4], new[5]))
                assert.is_nil(res)
                assert.equal("provider", err.type)
                assert.equal("1004", err.code) -- the fake's code for a payment_id it has seen
                assert.is_nil(err.replayed)
                assert.equal(2, err.attempts)
                assert.is_true(err.delivered_before)
                local state = H.state(sb, id)
                assert.same({ earlier[2], earlier[3], 1 }, { state.amount, state.currency, #state.operations })
            end)
        end

        -- A transport over real HTTP whose first attempt fails before sending
        -- (connection refused), or that never gets a status call through.
        local function faulty(first_refused, status_refused)
            local inner, n = core.http_client {}, 0
            return {
                request = function(_, req)
                    n = n + 1
                    if (first_refused and n == 1) or (status_refused and req.url:find("/payment/status", 1, true)) then
                        return nil, { type = "network", message = "connection refused", sent = false }
                    end
                    return inner:request(req)
                end,
                close = function() inner:close() end,
            }
        end

        it("is not taken for this request's when no earlier attempt was sent, though every field matches", function()
            local id = H.unique("yesterday")
            assert(fresh_gate():sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1000, "EUR")))
            local before = H.requests(sb)
            local gate = H.gate(sb, { sleep = no_sleep, transport = faulty(true) })
            local res, err = gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1000, "EUR"))
            assert.is_nil(res)
            assert.equal("1004", err.code)
            assert.equal(2, err.attempts)
            assert.is_false(err.delivered_before)
            assert.is_nil(err.replayed)
            assert.equal(before + 1, H.requests(sb)) -- the refused resend, and no status call
        end)

        it("when the status call fails too, the refusal says the outcome is unknown and how to find out", function()
            local id = H.unique("nostatus")
            assert(fresh_gate():sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1000, "EUR")))
            lose("503")
            local gate = H.gate(sb, { sleep = no_sleep, transport = faulty(false, true) })
            local res, err = gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1000, "EUR"))
            assert.is_nil(res)
            assert.equal("1004", err.code)
            assert.matches("ecommpay may have taken the sale request", err.message, 1, true)
            assert.matches('ask gate:status("' .. id .. '") or wait for ecommpay\'s callback', err.message, 1, true)
            assert.is_true(err.sent)
        end)
    end)

    describe("a refund, which ecommpay does not deduplicate", function()
        it("is sent once when its answer is lost, and the error says the outcome is unknown", function()
            local gate = fresh_gate()
            local id = paid(gate, 10000)
            lose("drop")
            local before = H.requests(sb)
            local res, err = fresh_gate():refund("trustly", refund_request(id, 3000, "r-lost"))
            assert.is_nil(res)
            assert.equal("network", err.type)
            assert.is_true(err.sent)
            assert.is_false(err.retryable)
            assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
            assert.matches('gate:status("' .. id .. '")', err.message, 1, true)
            assert.matches("callback", err.message, 1, true)
            assert.equal(before + 1, H.requests(sb)) -- never resent
            assert.equal(3000, H.state(sb, id).refunded) -- it was carried out, once
            assert.equal("partially_refunded", assert(gate:status(id)).status)
        end)

        for _, case in ipairs {
            { "500", cjson.encode { status = "error", code = "500", message = "Internal error" } },
            { "502" }, { "503" }, { "504" },
        } do
            it("answered " .. case[1] .. " after it was carried out is not retryable and says how to find out", function()
                local gate = fresh_gate()
                local id = paid(gate, 10000)
                lose(case[1], case[2])
                local before = H.requests(sb)
                local res, err = gate:refund("trustly", refund_request(id, 2500))
                assert.is_nil(res)
                assert.equal(tonumber(case[1]), err.http_status)
                assert.is_false(err.retryable)
                assert.is_true(err.sent)
                assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
                assert.matches('gate:status("' .. id .. '")', err.message, 1, true)
                assert.equal(before + 1, H.requests(sb))
                assert.equal(2500, H.state(sb, id).refunded)
            end)
        end
    end)

    describe("an answer that is not what ecommpay documents", function()
        for _, body in ipairs {
            "{}", "[]", '{"status":"success"}', "null",
            '{"status":"success","request_id":"r-1","project_id":1625,"payment_id":"someone-else"}',
            '{"status":"success","request_id":"r-1","project_id":9,"payment_id":"%s"}',
        } do
            it("a purchase answered 200 " .. body .. " is an error with no result", function()
                local gate = fresh_gate()
                local id = H.unique("odd")
                lose("200", body:format(id))
                local before = H.requests(sb)
                local res, err = gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id)))
                assert.is_nil(res)
                assert.equal("provider", err.type)
                assert.equal(200, err.http_status)
                assert.is_nil(err.status)
                assert.matches('gate:status("' .. id .. '")', err.message, 1, true)
                assert.equal(before + 1, H.requests(sb))
            end)
        end

        it("a refund answered 200 {} is an error whose outcome is unknown", function()
            local gate = fresh_gate()
            local id = paid(gate, 5000)
            lose("200", "{}")
            local _, err = gate:refund("trustly", refund_request(id, 1000))
            assert.equal("provider", err.type)
            assert.is_false(err.retryable)
            assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
        end)

        describe("a status answer", function()
            local gate, id, doc
            before_each(function()
                gate = fresh_gate()
                id = H.unique("status")
                assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1800, "EUR")))
                doc = {
                    project_id = H.PROJECT_ID,
                    payment = { id = id, type = "purchase", status = "success", sum = { amount = 1800, currency = "EUR" } },
                    operation = { id = 7, type = "sale", status = "success", sum_initial = { amount = 1800, currency = "EUR" } },
                }
            end)

            it("is signed, and verified", function()
                local event = assert(gate:status(id))
                assert.same({ id, 1800, "pending" }, { event.merchant_ref, event.amount, event.status })
            end)

            it("without a signature is refused", function()
                lose("200", cjson.encode(doc))
                local event, err = gate:status(id)
                assert.is_nil(event)
                assert.equal("provider", err.type)
                assert.matches("without a signature", err.message, 1, true)
            end)

            it("with a signature made with another secret is refused", function()
                doc.signature = ecommpay.signature(doc, "not-the-project-secret")
                lose("200", cjson.encode(doc))
                local event, err = gate:status(id)
                assert.is_nil(event)
                assert.equal("signature", err.type)
            end)

            it("signed, but about another payment or project, or about none, is refused", function()
                local other = H.unique("other")
                for _, change in ipairs {
                    function(d) d.payment.id = other end,
                    function(d) d.project_id = 1 end,
                    function(d) d.payment = nil end,
                } do
                    local d = cjson.decode(cjson.encode(doc))
                    change(d)
                    lose("200", cjson.encode(d), true)
                    local event, err = gate:status(id)
                    assert.is_nil(event)
                    assert.equal("provider", err.type)
                end
                lose("200", "{}", true)
                local _, err = gate:status(id)
                assert.equal("provider", err.type)
            end)
        end)
    end)

    describe("TLS verification", function()
        it("cannot be switched off for ecommpay's production endpoint or any other host", function()
            for _, base_url in ipairs { false, "https://gate.example", "https://user:pw@api.ecommpay.com", "https://127.0.0.1.example" } do
                local ok, err = pcall(ecommpay.new, { project_id = 1, secret = "s", verify = false, base_url = base_url or nil })
                assert.is_false(ok)
                assert.matches("ecommpay.new: verify = false is allowed only for a loopback URL", err, 1, true)
                assert.is_nil(err:find("pw", 1, true))
            end
        end)

        it("can be switched off for the sandbox on loopback", function()
            local gate = H.gate(sb, { verify = false })
            local id = H.unique("loopback")
            assert.equal("success", assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id)))).status)
            assert(ecommpay.new { project_id = 1, secret = "s", verify = false, base_url = "https://localhost:8443" })
            assert(ecommpay.new { project_id = 1, secret = "s", verify = false, base_url = "http://[::1]:8080/x" })
        end)
    end)
end)
