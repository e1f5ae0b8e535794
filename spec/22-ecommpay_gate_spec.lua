-- The ecommpay Gate client without a network: what each Trustly operation
-- requires before anything is sent (the Trustly documentation, operation by
-- operation), the signed body it sends and where, retries, and how answers
-- and errors come back.
local cjson = require "cjson"
local core = require "luapay.core"
local ecommpay = require "luapay.ecommpay"

local SECRET = "gate-spec-secret-91c2"

-- A transport that records each request and answers from a list (the last
-- answer repeats; {ok = true} is a success: ecommpay's documented answer
-- for the request's payment).
local function recorder(answers)
    local t = { sent = {} }
    function t.request(_, req)
        t.sent[#t.sent + 1] = req
        local a = answers and (answers[#t.sent] or answers[#answers])
        if a == nil or a.ok then
            local general = cjson.decode(req.body).general
            return { status = 200, headers = { ["content-type"] = "application/json" }, body = cjson.encode {
                status = "success", request_id = "req-1", project_id = general.project_id, payment_id = general.payment_id } }
        end
        if a.network then return nil, { type = "network", message = "connection reset", sent = true } end
        return { status = a.status, headers = { ["content-type"] = a.ctype or "application/json" }, body = a.body }
    end
    return t
end

local function new_gate(transport, opts)
    local o = { project_id = 200, secret = SECRET, transport = transport, sleep = function() end, retries = 2 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return ecommpay.new(o)
end

local function paths_of(err)
    local out = {}
    for _, f in ipairs(err.fields) do out[#out + 1] = f.path .. " " .. f.code end
    return out
end

local function customer(extra)
    local c = { id = "c-1", ip_address = "198.51.100.7" }
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
end

local function valid_callback_vector()
    for _, v in ipairs(require("support.util").json_fixture("vectors/ecommpay.json").callback_vectors) do
        if v.expected_valid then return v end
    end
end

local RETURN_URL = { success = "https://shop.example/ok", decline = "https://shop.example/no" }

describe("ecommpay.new", function()
    it("raises on missing or wrong options, naming the option and never the secret", function()
        local cases = {
            { {}, "option 'project_id' must be a positive integer" },
            { { project_id = "200", secret = "x" }, "option 'project_id' must be a positive integer" },
            { { project_id = 1.5, secret = "x" }, "option 'project_id' must be a positive integer" },
            { { project_id = 200 }, "option 'secret' must be a non-empty string" },
            { { project_id = 200, secret = "" }, "option 'secret' must be a non-empty string" },
            { { project_id = 200, secret = "x", base_url = "ftp://x" }, "option 'base_url' must be an http(s) URL" },
            { { project_id = 200, secret = "x", callback_url = 5 }, "option 'callback_url' must be an http(s) URL" },
        }
        for _, c in ipairs(cases) do
            local ok, err = pcall(ecommpay.new, c[1])
            assert.is_false(ok)
            assert.matches(c[2], err, 1, true)
        end
        assert.has_error(function() ecommpay.new() end, "ecommpay.new: bad argument #1 'opts' (table expected, got nil)")
    end)

    it("keeps the secret out of the client table and its string form", function()
        local gate = new_gate(recorder())
        assert.equal("luapay.ecommpay client (test, project 200, https://api.ecommpay.com)", tostring(gate))
        for k, v in pairs(gate) do
            assert.are_not.equal(SECRET, v, k)
        end
        assert.is_nil(cjson.encode { gate.project_id, gate.base_url, gate.payment_page_base }:find(SECRET, 1, true))
    end)
end)

describe("ecommpay Gate requests", function()
    it("sends a purchase signed, to the method's endpoint, with project_id and callback URL filled in", function()
        local t = recorder()
        local gate = new_gate(t, { base_url = "https://gate.example/", callback_url = "https://shop.example/cb" })
        local req = {
            general = { payment_id = "order-42" },
            payment = { amount = 2500, currency = "EUR", description = "Order 42" },
            customer = customer { first_name = "Åsa", last_name = "Berg", email = "asa@example.se", country = "SE", language = "sv" },
            return_url = RETURN_URL,
        }
        local res = assert(gate:sale("trustly", req))
        assert.same({ status = "success", request_id = "req-1", project_id = 200, payment_id = "order-42" }, res)
        assert.equal(1, #t.sent)
        local sent = t.sent[1]
        assert.equal("POST", sent.method)
        assert.equal("https://gate.example/v2/payment/online-banking/trustly/sale", sent.url)
        assert.matches("^application/json", sent.headers["Content-Type"])
        local body = cjson.decode(sent.body)
        assert.equal(200, body.general.project_id)
        assert.equal("https://shop.example/cb", body.general.merchant_callback_url)
        local sig = body.general.signature
        body.general.signature = nil
        assert.equal(sig, ecommpay.signature(body, SECRET))
        -- the caller's table is left as it was
        assert.same({ payment_id = "order-42" }, req.general)
    end)

    it("uses each operation's endpoint, for Trustly and other methods of the group", function()
        local t = recorder()
        local gate = new_gate(t)
        local base = { general = { payment_id = "p" }, payment = { amount = 100, currency = "EUR" }, customer = customer() }
        local function with(extra)
            local r = {}
            for k, v in pairs(base) do r[k] = v end
            for k, v in pairs(extra) do r[k] = v end
            return r
        end
        assert(gate:sale_saved("trustly", with { return_url = RETURN_URL, recurring_id = 5 }))
        assert(gate:recurring("trustly", with { recurring_id = 5 }))
        assert(gate:refund("trustly", { general = { payment_id = "p" }, payment = { description = "d" },
                                        customer = { ip_address = "198.51.100.7" } }))
        assert(gate:sale("ideal", base)) -- another method: only the fields every request needs
        local urls = {}
        for i, s in ipairs(t.sent) do urls[i] = s.url:gsub("^https://api%.ecommpay%.com", "") end
        assert.same({
            "/v2/payment/online-banking/trustly/sale/saved", "/v2/payment/online-banking/trustly/recurring",
            "/v2/payment/online-banking/trustly/refund", "/v2/payment/online-banking/ideal/sale",
        }, urls)
        assert.has_error(function() gate:sale("../x", base) end)
        assert.has_error(function() gate:sale("trustly", "not a table") end,
            "ecommpay.Client:sale: bad argument #2 'request' (table expected, got string)")
    end)

    describe("checks what the Trustly documentation requires, before sending", function()
        local t, gate
        before_each(function()
            t = recorder()
            gate = new_gate(t)
        end)
        after_each(function()
            assert.equal(0, #t.sent) -- nothing went out
        end)

        it("a purchase: payment, customer with names, e-mail, country, language, IP; return URLs", function()
            local _, err = gate:sale("trustly", { general = {} })
            assert.equal("validation", err.type)
            assert.same({ "customer required", "general.payment_id required", "payment required", "return_url required" },
                paths_of(err))
            _, err = gate:sale("trustly", { general = { payment_id = "p" }, payment = { amount = 99, currency = "EUR" },
                                           customer = {}, return_url = {} })
            assert.same({ "customer.country required", "customer.email required", "customer.first_name required",
                          "customer.id required", "customer.ip_address required", "customer.language required",
                          "customer.last_name required", "payment.amount range", "return_url.decline required",
                          "return_url.success required" }, paths_of(err))
            assert.equal("payment.amount: a Trustly purchase is at least 1.00 EUR", err.fields[8].message)
        end)

        it("the Trustly currencies (BGN included) and integer minor units", function()
            local function sale(amount, currency)
                return gate:sale("trustly", { general = { payment_id = "p" }, payment = { amount = amount, currency = currency },
                    customer = customer { first_name = "A", last_name = "B", email = "a@b.se", country = "SE", language = "sv" },
                    return_url = RETURN_URL })
            end
            local _, err = sale(1000, "USD")
            assert.same({ "payment.currency enum" }, paths_of(err))
            _, err = sale(10.5, "EUR")
            assert.same({ "payment.amount type" }, paths_of(err))
            _, err = sale(50, "SEK") -- the minimum is stated in EUR only
            assert.is_nil(err)
            for _, c in ipairs(ecommpay.TRUSTLY_CURRENCIES) do
                assert.is_nil(select(2, sale(100, c)), c)
            end
            t.sent = {}
        end)

        it("a beneficiary: party type PERSON or ORGANISATION, a first name for a person", function()
            local _, err = gate:sale("trustly", { general = { payment_id = "p" }, payment = { amount = 1000, currency = "EUR" },
                customer = customer { first_name = "A", last_name = "B", email = "a@b.se", country = "SE", language = "sv" },
                return_url = RETURN_URL,
                additional_data = { beneficiary = { party_type = "COMPANY", last_name = "X", country = "XX" } } })
            assert.same({ "additional_data.beneficiary.country format", "additional_data.beneficiary.party_type enum" },
                paths_of(err))
            _, err = gate:sale("trustly", { general = { payment_id = "p" }, payment = { amount = 1000, currency = "EUR" },
                customer = customer { first_name = "A", last_name = "B", email = "a@b.se", country = "SE", language = "sv" },
                return_url = RETURN_URL,
                additional_data = { beneficiary = { party_type = "PERSON", last_name = "X", country = "SE" } } })
            assert.same({ "additional_data.beneficiary.first_name required" }, paths_of(err))
        end)

        it("OneClick and regular payments: recurring_id, customer ID and IP", function()
            local _, err = gate:sale_saved("trustly", { general = { payment_id = "p" }, payment = { amount = 100, currency = "EUR" } })
            assert.same({ "customer required", "recurring_id required", "return_url required" }, paths_of(err))
            _, err = gate:recurring("trustly", { general = { payment_id = "p" }, payment = { amount = 100, currency = "EUR" },
                                                customer = {}, recurring_id = "5" })
            assert.same({ "customer.id required", "customer.ip_address required", "recurring_id type" }, paths_of(err))
        end)

        it("account verification: amount 0, recurring_register true, and the regular-payment fields for R", function()
            local req = { general = { payment_id = "v1" }, payment = { amount = 100, currency = "EUR" },
                          customer = customer(), return_url = RETURN_URL, recurring_register = false,
                          recurring = { type = "R", scheduled_payment_id = "v1" } }
            local _, err = gate:account_verification("trustly", req)
            assert.same({ "payment.amount range", "recurring.amount required", "recurring.expiry_day required",
                          "recurring.expiry_month required", "recurring.expiry_year required",
                          "recurring.interval required", "recurring.period required",
                          "recurring.scheduled_payment_id enum", "recurring.start_date required",
                          "recurring.time required", "recurring_register enum" }, paths_of(err))
            req.payment.amount, req.recurring_register = 0, true
            req.recurring = { type = "R", time = "25:00:00", expiry_year = 2030, expiry_month = "13", expiry_day = "3x",
                              interval = 0, amount = 500, period = "X", scheduled_payment_id = "v1-s", start_date = "2027-01-01" }
            _, err = gate:account_verification("trustly", req)
            assert.same({ "recurring.expiry_day type", "recurring.expiry_month range", "recurring.interval range",
                          "recurring.period enum", "recurring.start_date pattern", "recurring.time pattern" }, paths_of(err))
            req.recurring = { type = "X" }
            _, err = gate:account_verification("trustly", req)
            assert.same({ "recurring.type enum" }, paths_of(err))
            req.recurring = { type = "C" } -- OneClick needs no schedule
            assert(gate:account_verification("trustly", req))
            t.sent = {}
        end)

        it("a refund: description and customer IP; amount and currency together for a partial one", function()
            local _, err = gate:refund("trustly", { general = { payment_id = "p" }, payment = { amount = 500 } })
            assert.same({ "customer required", "payment.currency required", "payment.description required" }, paths_of(err))
            _, err = gate:refund("trustly", { general = { payment_id = "p" }, payment = { currency = "EUR", description = "d" },
                                              customer = { ip_address = "nope" } })
            assert.same({ "customer.ip_address format", "payment.amount required" }, paths_of(err))
        end)

        it("a payout: names, IP, the account by its clearinghouse (Figure 32), the sender", function()
            local function payout(account, sender)
                return gate:payout("trustly", { general = { payment_id = "po" }, payment = { amount = 5000, currency = "SEK" },
                    customer = customer { first_name = "N", last_name = "H" }, account = account,
                    additional_data = sender and { sender = sender } })
            end
            local _, err = payout({ clearinghouse = "SWEDEN", number = "12AB", bank_code = "500" })
            assert.same({ "account.bank_code pattern", "account.number pattern" }, paths_of(err))
            _, err = payout({ clearinghouse = "UNITED_KINGDOM", number = "12345678", bank_code = "123456" })
            assert.is_nil(err)
            _, err = payout({ clearinghouse = "GERMANY", number = "DE89370400440532013000", bank_code = "not a bic" })
            assert.same({ "account.bank_code format" }, paths_of(err))
            _, err = payout({ clearinghouse = "ATLANTIS", number = "1", bank_code = "1" })
            assert.same({ "account.clearinghouse enum" }, paths_of(err))
            _, err = payout({ clearinghouse = "SWEDEN", number = "1234567890", bank_code = "5000" },
                { party_type = "PERSON", first_name = "A", address = "Street 1", country = "SE" })
            assert.same({ "additional_data.sender.last_name required" }, paths_of(err))
            _, err = payout({ clearinghouse = "SWEDEN", number = "1234567890", bank_code = "5000" },
                { party_type = "ORGANISATION", first_name = "Shop AB", last_name = core.null, country = "SE" })
            assert.same({ "additional_data.sender.address required" }, paths_of(err))
            _, err = gate:payout("trustly", { general = { payment_id = "po" }, payment = { amount = 5000, currency = "SEK" } })
            assert.same({ "account required", "customer required" }, paths_of(err))
            t.sent = {}
        end)

        it("a project_id that is not the client's", function()
            local _, err = gate:recurring("trustly", { general = { payment_id = "p", project_id = 201 },
                payment = { amount = 100, currency = "EUR" }, customer = customer(), recurring_id = 1 })
            assert.same({ "general.project_id enum" }, paths_of(err))
        end)
    end)

    it("resends a request with the same payment_id and signature where ecommpay deduplicates it", function()
        local busy = { status = 503, ctype = "text/plain", body = "busy" }
        local t = recorder { busy, { network = true }, { ok = true } }
        local gate = new_gate(t)
        local res = assert(gate:recurring("trustly", { general = { payment_id = "rp-1" },
            payment = { amount = 100, currency = "EUR" }, customer = customer(), recurring_id = 1 }))
        assert.equal("success", res.status)
        assert.equal(3, #t.sent)
        assert.equal(t.sent[1].body, t.sent[3].body)
        assert.is_true(t.sent[1].idempotent)
    end)

    it("never resends a refund once it may have arrived, merchant_refund_id or not (ecommpay could refund twice)", function()
        local refund = { general = { payment_id = "p" }, payment = { description = "d" }, customer = { ip_address = "198.51.100.7" } }
        for _, refund_id in ipairs { false, "refund-1" } do
            refund.payment.merchant_refund_id = refund_id or nil
            local t = recorder { { network = true }, { ok = true } }
            local _, err = new_gate(t):refund("trustly", refund)
            assert.equal("network", err.type)
            assert.is_false(err.retryable)
            assert.matches("its outcome is unknown: do not resend it", err.message, 1, true)
            assert.equal(1, #t.sent)
            assert.is_false(t.sent[1].idempotent)
        end
    end)

    it("returns ecommpay's error code, message and field list as a provider error", function()
        local t = recorder { { status = 400, body = cjson.encode {
            status = "error", code = "1001", message = "Invalid request", request_id = "req-9", payment_id = "p",
            errors = { { code = "1001", message = "Field is required", field = "customer.email" } } } } }
        local _, err = new_gate(t):refund("trustly", { general = { payment_id = "p" }, payment = { description = "d" },
                                                      customer = { ip_address = "198.51.100.7" } })
        assert.equal("provider", err.type)
        assert.same({ 400, "1001", "Invalid request", "req-9", "p" },
            { err.http_status, err.code, err.message, err.request_id, err.payment_id })
        assert.same({ path = "customer.email", code = "1001", message = "customer.email: Field is required" },
            err.fields[1])
        assert.matches("code 1001", tostring(err))

        t = recorder { { status = 502, ctype = "text/html", body = "<html>bad gateway</html>" } }
        _, err = new_gate(t, { retries = 0 }):refund("trustly", { general = { payment_id = "p" },
            payment = { description = "d" }, customer = { ip_address = "198.51.100.7" } })
        assert.equal("http", err.type)
        assert.equal(502, err.http_status)

        t = recorder { { status = 200, ctype = "text/plain", body = "OK" } }
        _, err = new_gate(t):status("p")
        assert.equal("provider", err.type)
        assert.matches("without a JSON object", err.message)
    end)

    it("takes only a signed status answer about the payment asked for", function()
        local doc = { project_id = 200,
                      payment = { id = "p", status = "success", type = "purchase", sum = { amount = 100, currency = "EUR" } },
                      operation = { id = 5, type = "sale", status = "success", sum_initial = { amount = 100, currency = "EUR" } } }
        local _, err = new_gate(recorder { { status = 200, body = cjson.encode(doc) } }):status("p")
        assert.equal("provider", err.type)
        assert.matches("without a signature", err.message, 1, true)

        doc.signature = ecommpay.signature(doc, SECRET)
        local answer = cjson.encode(doc)
        local event = assert(new_gate(recorder { { status = 200, body = answer } }):status("p"))
        assert.same({ "payment", "succeeded", 100, "sale" }, { event.kind, event.status, event.amount, event.extra.operation_type })
        assert.equal(answer, event.raw) -- the answer's body, as received

        _, err = new_gate(recorder { { status = 200, body = cjson.encode(doc) } }):status("q")
        assert.equal("provider", err.type)
        assert.matches('without the status of payment "q"', err.message, 1, true)

        doc.signature = ecommpay.signature(doc, "another secret")
        _, err = new_gate(recorder { { status = 200, body = cjson.encode(doc) } }):status("p")
        assert.equal("signature", err.type)

        local t = recorder()
        _, err = new_gate(t):status(nil)
        assert.same({ "general.payment_id required" }, paths_of(err))
        assert.equal(0, #t.sent)
    end)

    it("verifies notifications with its secret and says what to answer", function()
        local gate = new_gate(recorder())
        local v = valid_callback_vector()
        local _, err = gate:notification(v.raw_body, {}) -- another project's secret
        assert.equal("signature", err.type)
        local body = { general = { project_id = 200, payment_id = "p" }, payment = { id = "p", status = "success" } }
        body.general.signature = ecommpay.signature(body, SECRET)
        local raw = cjson.encode(body)
        local event = assert(gate:notification(raw, { ["Content-Type"] = "application/json" }))
        assert.same({ "ecommpay", "succeeded", raw }, { event.provider, event.status, event.raw })
        -- received: 200 "OK", ecommpay stops sending it
        assert.same({ status = 200, body = "OK", headers = { ["Content-Type"] = "text/plain" } },
            gate:notification_response(event, true))
        -- verified but not recorded: an error status, ecommpay sends it again
        assert.same({ status = 500, body = "ERROR", headers = { ["Content-Type"] = "text/plain" } },
            gate:notification_response(event, false))
        -- nothing verified: 400, and the same whatever received says
        local tampered = raw:gsub('"success"', '"decline"')
        local none, terr = gate:notification(tampered)
        assert.is_nil(none)
        assert.equal("signature", terr.type)
        for _, received in ipairs { true, false } do
            for _, not_an_event in ipairs { terr, { status = "succeeded" } } do
                assert.equal(400, gate:notification_response(not_an_event, received).status)
            end
            assert.same({ status = 400, body = "ERROR", headers = { ["Content-Type"] = "text/plain" } },
                gate:notification_response(none, received))
        end
        assert.has_error(function() gate:notification_response(false, true) end,
            "ecommpay.Client:notification_response: bad argument #1 'event' (table or nil expected, got boolean)")
    end)

    it("keeps the deprecated gate:callback and gate:callback_response(ok) working until 0.3", function()
        local gate = new_gate(recorder())
        local body = { general = { project_id = 200, payment_id = "p" }, payment = { id = "p", status = "success" } }
        body.general.signature = ecommpay.signature(body, SECRET)
        local raw = cjson.encode(body)
        assert.same(gate:notification(raw), assert(gate:callback(raw)))
        assert.equal("signature", select(2, gate:callback((raw:gsub('"p"', '"q"')))).type)
        assert.same({ status = 200, body = "OK", headers = { ["Content-Type"] = "text/plain" } }, gate:callback_response(true))
        assert.same({ status = 400, body = "ERROR", headers = { ["Content-Type"] = "text/plain" } }, gate:callback_response(false))
    end)
end)

describe("gate:payment_page", function()
    it("fills project_id and the callback URL, checks the Trustly rules, and signs", function()
        local gate = new_gate(recorder(), { payment_page_base = "https://pp.example", callback_url = "https://shop.example/cb" })
        local url = assert(gate:payment_page {
            payment_id = "pp-1", payment_amount = 1000, payment_currency = "BGN", customer_id = "c-1",
            force_payment_method = "online-banking-trustly", customer_first_name = "Åsa", language_code = "sv",
            identify_doc_number = "AB123456",
            payment_extra_param = { beneficiary = { party_type = "ORGANISATION", last_name = "Shop AB", country = "SE" } },
        })
        assert.matches("^https://pp%.example/payment%?project_id=200&payment_id=pp%-1&", url)
        assert.matches("merchant_callback_url=https%%3A%%2F%%2Fshop%.example%%2Fcb", url)

        local _, err = gate:payment_page { payment_id = "pp-2", payment_amount = 50, payment_currency = "USD",
            customer_id = "c", force_payment_method = "online-banking-trustly",
            payment_extra_param = '{"beneficiary":{"party_type":"BOSS"}}' }
        assert.same({ "payment_currency enum", "payment_extra_param.beneficiary.country required",
                      "payment_extra_param.beneficiary.last_name required",
                      "payment_extra_param.beneficiary.party_type enum" }, paths_of(err))
        _, err = gate:payment_page { payment_id = "pp-3", payment_amount = 50, payment_currency = "EUR", customer_id = "c",
                                     force_payment_method = "online-banking-trustly" }
        assert.same({ "payment_amount range" }, paths_of(err))
        assert(gate:payment_page { payment_id = "pp-4", payment_amount = 50, payment_currency = "USD", customer_id = "c" })
        _, err = gate:payment_page { payment_id = "pp-5" }
        assert.same({ "customer_id required", "payment_amount required", "payment_currency required" }, paths_of(err))
    end)
end)
