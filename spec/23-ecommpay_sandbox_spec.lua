-- ecommpay's Trustly scenarios against the fake Gate in the sandbox: the
-- merchant's requests, ecommpay's synchronous answers, and the signed
-- callbacks the merchant endpoint receives and verifies.
local H = require "support.ecommpay"
local util = require "support.util"

describe("ecommpay Trustly against the sandbox", function()
    local sb, gate

    setup(function()
        sb = H.start { balance = 500000 } -- 5,000.00 per currency on the merchant balance
        gate = H.gate(sb)
    end)

    teardown(function()
        util.stop_sandbox(sb)
    end)

    -- The callbacks of a channel, verified by the merchant's client.
    local function events(name, n)
        local list = H.callbacks(sb, name, n)
        local out = {}
        for i, cb in ipairs(list) do
            assert.equal(200, cb.answered) -- the merchant endpoint accepted it
            out[i] = assert(gate:notification(cb.body))
        end
        return out
    end

    it("purchase: redirect callback, the customer approves at Trustly, then success", function()
        local id = H.unique("sale")
        local res = assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 2500, "EUR")))
        assert.equal("success", res.status)
        assert.equal(id, res.payment_id)
        assert.equal(H.PROJECT_ID, res.project_id)
        assert.is_string(res.request_id)

        local first = events(id, 1)[1]
        assert.same({ "payment", "sale" }, { first.kind, first.extra.operation_type })
        assert.equal("pending", first.status)
        assert.equal("awaiting redirect result", first.extra.payment_status)
        assert.equal("POST", first.extra.redirect.method)
        assert.matches("^http://127%.0%.0%.1:%d+/ecommpay/customer/", first.extra.redirect.url)

        local page = H.customer(first, "approve")
        assert.equal(302, page.status)
        assert.equal("https://shop.example/ok", page.headers.location)

        local final = events(id, 2)[2]
        assert.same({ "ecommpay", "payment", "succeeded", id, 2500, "EUR" },
            { final.provider, final.kind, final.status, final.merchant_ref, final.amount, final.currency })
        assert.is_nil(final.extra.redirect)
        -- operation IDs beyond 2^53 come through exactly, under LuaJIT too
        assert.matches("^41%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d$", final.provider_ref)
        assert.are_not.equal(first.provider_ref, final.provider_ref)

        local status = assert(gate:status(id))
        assert.equal("succeeded", status.status)
        assert.equal(final.provider_ref, status.provider_ref)
    end)

    it("purchase declined by the customer", function()
        local id = H.unique("decline")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id))))
        local page = H.customer(events(id, 1)[1], "decline")
        assert.equal("https://shop.example/no", page.headers.location)
        local final = events(id, 2)[2]
        assert.equal("failed", final.status)
        assert.equal("decline", final.extra.payment_status)
        assert.equal("20101", final.extra.code)
        assert.equal("20101", final.extra.errors[1].code)
        assert.equal("failed", assert(gate:status(id)).status)
    end)

    it("registers OneClick with the first purchase, then pays with recurring_id and no customer", function()
        local id = H.unique("first")
        local req = H.sale_request(id, H.callback_url(sb, id), 3000, "SEK")
        req.recurring_register = true
        assert(gate:sale("trustly", req))
        H.customer(events(id, 1)[1], "approve")
        local list = events(id, 3) -- redirect, success, then the repeated success with the registration
        assert.equal("succeeded", list[2].status)
        assert.is_nil(list[2].extra.recurring)
        local recurring = list[3].extra.recurring
        assert.equal("C", recurring.type)
        assert.is_number(recurring.id)

        local oneclick = H.unique("oneclick")
        assert(gate:sale_saved("trustly", {
            general = { payment_id = oneclick, merchant_callback_url = H.callback_url(sb, oneclick) },
            payment = { amount = 1200, currency = "SEK" },
            customer = { id = "customer-1", ip_address = "198.51.100.7" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
            recurring_id = recurring.id,
        }))
        local event = events(oneclick, 1)[1]
        assert.same({ "payment", "succeeded", 1200, "SEK" }, { event.kind, event.status, event.amount, event.currency })
        assert.is_nil(event.extra.redirect)

        -- an unknown recurring_id is declined
        local stranger = H.unique("oneclick")
        assert(gate:sale_saved("trustly", {
            general = { payment_id = stranger, merchant_callback_url = H.callback_url(sb, stranger) },
            payment = { amount = 1200, currency = "SEK" },
            customer = { id = "customer-1", ip_address = "198.51.100.7" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
            recurring_id = 999999,
        }))
        assert.equal("failed", events(stranger, 1)[1].status)
    end)

    it("registers regular payments by account verification, then charges with recurring", function()
        local id = H.unique("verify")
        local res = assert(gate:account_verification("trustly", {
            general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
            payment = { amount = 0, currency = "EUR" },
            customer = { id = "customer-7", ip_address = "203.0.113.9" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
            recurring_register = true,
            recurring = {
                type = "R", time = "10:00:00", expiry_year = "2030", expiry_month = "12", expiry_day = "31",
                interval = 1, amount = 990, period = "M", scheduled_payment_id = id .. "-schedule",
                start_date = "01-01-2027",
            },
        }))
        assert.equal("success", res.status)
        local first = events(id, 1)[1]
        assert.same({ "account", "account verification" }, { first.kind, first.extra.operation_type })
        assert.equal("pending", first.status)
        H.customer(first, "approve")
        local final = events(id, 2)[2]
        assert.equal("succeeded", final.status)
        assert.equal(0, final.amount)
        assert.equal("R", final.extra.recurring.type)

        local charge = H.unique("regular")
        assert(gate:recurring("trustly", {
            general = { payment_id = charge, merchant_callback_url = H.callback_url(sb, charge) },
            payment = { amount = 990, currency = "EUR" },
            customer = { id = "customer-7", ip_address = "203.0.113.9" },
            recurring_id = final.extra.recurring.id,
        }))
        local event = events(charge, 1)[1]
        assert.same({ "payment", "succeeded", 990, "EUR" }, { event.kind, event.status, event.amount, event.currency })
    end)

    it("refunds part, then the rest; a refund above what is left is declined", function()
        local id = H.unique("refund")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 10000, "EUR")))
        H.customer(events(id, 1)[1], "approve")
        assert.equal("succeeded", events(id, 2)[2].status)

        local function refund(amount, refund_id)
            local req = {
                general = { payment_id = id },
                payment = { description = "Returned goods", merchant_refund_id = refund_id },
                customer = { ip_address = "198.51.100.7" },
            }
            if amount then req.payment.amount, req.payment.currency = amount, "EUR" end
            return gate:refund("trustly", req)
        end

        assert.equal("success", assert(refund(3000, "r1")).status)
        local partial = events(id, 3)[3]
        assert.same({ "refund", "partially_refunded", 3000, "EUR" },
            { partial.kind, partial.status, partial.amount, partial.currency })
        assert.equal(7000, partial.extra.payment_amount)

        assert(refund(8000, "r2")) -- more than the 70.00 left
        local declined = events(id, 4)[4]
        assert.same({ "refund", "failed", "20106" }, { declined.kind, declined.status, declined.extra.code })

        assert(refund(nil, "r3")) -- a full refund: what is left
        local full = events(id, 5)[5]
        assert.same({ "refund", "refunded", 7000 }, { full.kind, full.status, full.amount })
        assert.equal(0, full.extra.payment_amount)
        assert.equal("refunded", assert(gate:status(id)).status)
    end)

    it("pays out; a payout above the merchant balance is declined; the bank reverses one", function()
        local function payout(id, amount)
            return gate:payout("trustly", {
                general = { payment_id = id, merchant_callback_url = H.callback_url(sb, id) },
                payment = { amount = amount, currency = "SEK" },
                customer = { id = "customer-9", ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
                account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
                additional_data = { sender = { party_type = "ORGANISATION", first_name = "Shop AB",
                                               address = "Drottninggatan 1, Stockholm", country = "SE" } },
            })
        end
        local ok_id = H.unique("payout")
        assert.equal("success", assert(payout(ok_id, 4000)).status)
        local paid = events(ok_id, 1)[1]
        assert.same({ "payout", "succeeded", 4000, "SEK" }, { paid.kind, paid.status, paid.amount, paid.currency })

        local big_id = H.unique("payout")
        assert(payout(big_id, 900000)) -- the balance is 5,000.00 SEK
        local declined = events(big_id, 1)[1]
        assert.same({ "payout", "failed", "20105" }, { declined.kind, declined.status, declined.extra.code })
        assert.equal("Insufficient funds on merchant balance", declined.extra.message)

        assert.equal(200, H.post(sb, ("/ecommpay/sandbox/bank_reject/%d/%s"):format(H.PROJECT_ID, ok_id)).status)
        local reversed = events(ok_id, 2)[2]
        assert.same({ "reversal", "reversed", 4000, "payout" },
            { reversed.kind, reversed.status, reversed.amount, reversed.extra.payment_type })
        assert.equal("reversed", assert(gate:status(ok_id)).status)
    end)

    it("polls the status while the customer is away, and after", function()
        local id = H.unique("poll")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id))))
        local pending = assert(gate:status(id))
        assert.equal("pending", pending.status)
        assert.equal(id, pending.merchant_ref)
        assert.equal(2000, pending.amount)
        H.customer(events(id, 1)[1], "approve")
        events(id, 2)
        assert.equal("succeeded", assert(gate:status(id)).status)

        local _, err = gate:status(H.unique("nowhere"))
        assert.equal("provider", err.type)
        assert.equal("1005", err.code)
    end)

    it("sends nothing when the request fails validation", function()
        local before = H.requests(sb)
        local id = H.unique("invalid")
        local req = H.sale_request(id, H.callback_url(sb, id), 50, "USD")
        req.customer.email = "not-an-email"
        local res, err = gate:sale("trustly", req)
        assert.is_nil(res)
        assert.equal("validation", err.type)
        local paths = {}
        for _, f in ipairs(err.fields) do paths[#paths + 1] = f.path .. " " .. f.code end
        assert.same({ "customer.email format", "payment.currency enum" }, paths)
        assert.equal(before, H.requests(sb))
        assert.equal(404, (require("luapay.core").http_client {}):request {
            url = ("%s/ecommpay/sandbox/payment/%d/%s"):format(sb.url, H.PROJECT_ID, id) }.status)
    end)

    it("refuses a payment_id it has seen, as ecommpay does", function()
        local id = H.unique("dup")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id))))
        local res, err = gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id)))
        assert.is_nil(res)
        assert.equal("provider", err.type)
        assert.equal(400, err.http_status)
        assert.equal("1004", err.code)
        assert.equal(id, err.payment_id)
        events(id, 1) -- only the first one's callback
    end)

    it("checks the signature of every request", function()
        local wrong = H.gate(sb, { secret = "not-the-project-secret" })
        local _, err = wrong:sale("trustly", H.sale_request(H.unique("forged")))
        assert.equal("provider", err.type)
        assert.equal("1003", err.code)
        assert.equal("Wrong signature", err.message)
        assert.is_nil(tostring(err):find("not-the-project-secret", 1, true))
        _, err = wrong:status("anything")
        assert.equal("1003", err.code)
    end)

    it("answers ecommpay's error format for a request it finds invalid", function()
        -- A client without local checks: a signed body with fields missing.
        local ecommpay = require "luapay.ecommpay"
        local http = require "luapay.http"
        local body = { general = { project_id = H.PROJECT_ID, payment_id = H.unique("raw") },
                       payment = { amount = 100, currency = "EUR" } }
        body.general.signature = ecommpay.signature(body, H.SECRET)
        local res = assert(http.new {}:request { method = "POST", json = body,
            url = sb.url .. "/ecommpay/v2/payment/online-banking/trustly/sale" })
        assert.equal(400, res.status)
        assert.equal("error", res.json.status)
        assert.equal("1001", res.json.code)
        local fields = {}
        for _, e in ipairs(res.json.errors) do fields[#fields + 1] = e.field end
        table.sort(fields)
        assert.same({ "customer.country", "customer.email", "customer.first_name", "customer.id",
                      "customer.ip_address", "customer.language", "customer.last_name",
                      "return_url.decline", "return_url.success" }, fields)
    end)

    it("rejects a tampered callback, and the merchant endpoint answers 400", function()
        local id = H.unique("tamper")
        assert(gate:sale("trustly", H.sale_request(id, H.callback_url(sb, id), 1500)))
        local raw = H.callbacks(sb, id, 1)[1].body
        assert(gate:notification(raw))
        local tampered = raw:gsub('"amount":1500', '"amount":150000')
        assert.are_not.equal(raw, tampered)
        local event, err = gate:notification(tampered)
        assert.is_nil(event)
        assert.equal("signature", err.type)
        assert.is_nil(tostring(err):find(H.SECRET, 1, true))

        -- posted to the merchant endpoint, it is refused
        local core = require "luapay.core"
        local c = core.http_client {}
        local res = assert(c:request { method = "POST", url = H.callback_url(sb, id), body = tampered,
                                       headers = { ["Content-Type"] = "application/json" } })
        c:close()
        assert.equal(400, res.status)
        assert.equal(400, H.callbacks(sb, id, 2)[2].answered)
    end)
end)
