-- ecommpay's Payment Page for the Trustly method ("Purchases by using
-- Payment Page" in the Trustly document, ../shared/seeds/000), against the
-- sandbox's fake of it, driven by a real headless browser (Debian's
-- chromium, spec/support/browser.lua): the signed URL the client builds
-- opens the page, the customer types what the request left out, chooses a
-- bank and approves or declines; the browser ends on the merchant's success
-- or fail URL and the merchant's endpoint receives the signed callback.
local cjson = require "cjson"
local core = require "luapay.core"
local http = require "luapay.http"
local ecommpay = require "luapay.ecommpay"
local browser = require "support.browser"
local H = require "support.ecommpay"
local util = require "support.util"

describe("ecommpay Payment Page in a browser", function()
    local sb, gate, b

    setup(function()
        sb = H.start()
        gate = H.gate(sb, { payment_page_base = sb.url .. "/ecommpay" })
        b = browser.start { ports = { sb.port } }
    end)

    teardown(function()
        if b then b:close() end
        util.stop_sandbox(sb)
    end)

    -- A signed Payment Page URL for a Trustly purchase; the callbacks go to
    -- the merchant channel named after the payment.
    local function page_url(id, extra)
        local params = {
            payment_id = id, payment_amount = 2500, payment_currency = "EUR", customer_id = "customer-7",
            payment_description = "Order 42", customer_first_name = "Åsa", customer_last_name = "Lindqvist",
            customer_email = "asa@example.se", customer_country = "SE", language_code = "sv",
            force_payment_method = "online-banking-trustly",
            merchant_success_url = sb.url .. "/merchant/shop/ok",
            merchant_fail_url = sb.url .. "/merchant/shop/failed",
            merchant_callback_url = H.callback_url(sb, id),
        }
        for k, v in pairs(extra or {}) do
            if v == false then params[k] = nil else params[k] = v end
        end
        return assert(gate:payment_page(params))
    end

    local function callback(id)
        local cb = H.callbacks(sb, id, 1)[1]
        assert.equal(200, cb.answered) -- the merchant's endpoint verified it
        local body = cjson.decode(cb.body)
        -- as ecommpay signs a Payment Page callback: at the root
        assert.is_string(body.signature)
        assert.equal(H.PROJECT_ID, body.project_id)
        assert.is_nil(body.general)
        return assert(ecommpay.verify_notification(cb.body, nil, { secret = H.SECRET }))
    end

    it("shows the payment, asks for what is missing, and the approved payment ends on the success URL", function()
        local id = H.unique("page")
        local p = b:open(page_url(id, { customer_email = false, payment_description = 'Order <b>42</b> & "more"' }))
        assert.equal("Pay with Trustly", p.title)
        assert.equal("25.00 EUR", b:eval("document.getElementById('amount').textContent"))
        assert.equal(id, b:eval("document.getElementById('payment-id').textContent"))
        -- the description is text, not markup
        assert.equal('Order <b>42</b> & "more"', b:eval("document.getElementById('description').textContent"))
        assert.is_nil(b:eval("document.querySelector('#description b')"))
        -- Trustly's banks of the customer's country (SE) only
        local banks = b:eval("Array.from(document.querySelectorAll('input[name=bank]')).map(e => e.value).join(' ')")
        assert.equal("se-swedbank se-seb se-handelsbanken se-nordea", banks)
        -- the e-mail was not in the request: the page asks for it, the others it has
        assert.truthy(b:eval("document.querySelector('input[name=customer_email]') !== null"))
        assert.truthy(b:eval("document.querySelector('input[name=customer_first_name]') === null"))

        -- approving without a bank is refused by the page, which keeps what was typed
        b:type("input[name=customer_email]", "asa@example.se")
        b:click('button[value="approve"]')
        b:wait("document.getElementById('problem') !== null", "the page to ask for a bank")
        assert.equal("Choose your bank", b:eval("document.getElementById('problem').textContent"))
        assert.equal("asa@example.se", b:eval("document.querySelector('input[name=customer_email]').value"))
        assert.same({}, H.callbacks(sb, id, 0))

        b:click('input[value="se-handelsbanken"]')
        b:click('button[value="approve"]')
        p = b:wait_url("/merchant/shop/ok$")
        assert.equal(sb.url .. "/merchant/shop/ok", p.url)
        assert.equal("Shop: ok", p.title)

        local event = callback(id)
        assert.same({ "ecommpay", "payment", "succeeded", id, 2500, "EUR" },
            { event.provider, event.kind, event.status, event.merchant_ref, event.amount, event.currency })
        assert.same({ "purchase", "success", "sale", "customer-7" },
            { event.extra.payment_type, event.extra.payment_status, event.extra.operation_type, event.extra.customer_id })
        assert.equal('Order <b>42</b> & "more"', event.extra.body.payment.description)

        -- the payment is ecommpay's now: Gate's status knows it
        local status = assert(gate:status(id))
        assert.same({ "succeeded", 2500 }, { status.status, status.amount })
    end)

    it("the declined payment ends on the fail URL with a failed callback", function()
        local id = H.unique("page")
        b:open(page_url(id, { payment_amount = 1999, payment_currency = "SEK" }))
        assert.equal("19.99 SEK", b:eval("document.getElementById('amount').textContent"))
        b:click('button[value="decline"]')
        local p = b:wait_url("/merchant/shop/failed$")
        assert.equal("Shop: failed", p.title)

        local event = callback(id)
        assert.same({ "failed", id, 1999, "SEK", "decline" },
            { event.status, event.merchant_ref, event.amount, event.currency, event.extra.payment_status })
        assert.equal("customer-7", event.extra.customer_id)
    end)

    it("a tampered URL shows the error page and makes no payment", function()
        local id = H.unique("page")
        local url = page_url(id)
        local tampered = url:gsub("payment_amount=2500", "payment_amount=25")
        assert.are_not.equal(url, tampered)
        local p = b:open(tampered)
        assert.equal("Payment Page error", p.title)
        assert.equal("Invalid signature", b:eval("document.getElementById('error').textContent"))
        assert.is_nil(b:eval("document.querySelector('form')"))
        assert.is_nil((gate:status(id))) -- no payment was made

        -- a URL signed with another secret, and one whose payment_id was used: the same page
        local other = ecommpay.new { project_id = H.PROJECT_ID, secret = "not-the-project-secret",
                                     payment_page_base = sb.url .. "/ecommpay" }
        b:open(assert(other:payment_page { payment_id = id, payment_amount = 2500, payment_currency = "EUR",
                                               customer_id = "customer-7" }))
        assert.equal("Invalid signature", b:eval("document.getElementById('error').textContent"))
        local used = H.unique("page")
        b:open(page_url(used))
        b:click('input[value="se-swedbank"]')
        b:click('button[value="approve"]')
        b:wait_url("/merchant/shop/ok$")
        p = b:open(page_url(used))
        assert.equal("Payment Page error", p.title)
        assert.matches("already exists", b:eval("document.getElementById('error').textContent"))
    end)
end)

-- The same fake over plain HTTP: what a browser test would be slow to show.
describe("ecommpay Payment Page fake over HTTP", function()
    local sb, gate

    setup(function()
        sb = H.start()
        gate = H.gate(sb, { payment_page_base = sb.url .. "/ecommpay" })
    end)

    teardown(function()
        util.stop_sandbox(sb)
    end)

    local function request(method, url, form)
        local c = core.http_client {}
        local res = assert(c:request { method = method, url = url, body = form and http.encode_query(form),
            headers = form and { ["Content-Type"] = "application/x-www-form-urlencoded" } or nil })
        c:close()
        return res
    end

    local function params(id, extra)
        local p = { payment_id = id, payment_amount = 1000, payment_currency = "EUR", customer_id = "c-1",
                    customer_first_name = "Jaan", customer_last_name = "Tamm", customer_email = "jaan@example.ee",
                    customer_country = "EE", merchant_callback_url = H.callback_url(sb, id) }
        for k, v in pairs(extra or {}) do p[k] = v end
        return p
    end

    local function query_of(url) return url:match("%?(.*)$") end

    local function error_text(res)
        assert.equal(400, res.status)
        assert.matches("^text/html", res.headers["content-type"])
        return res.body:match('<p id="error">(.-)</p>')
    end

    it("shows the error page for a URL ecommpay would refuse", function()
        local base = sb.url .. "/ecommpay/payment?"
        local url = assert(gate:payment_page(params(H.unique("e"))))
        assert.equal("Invalid signature", error_text(request("GET", url .. "x")))
        assert.equal("Invalid signature", error_text(request("GET", (url:gsub("&signature=[^&]*$", "")))))
        assert.equal("Parameter payment_id is given more than once",
            error_text(request("GET", url .. "&payment_id=other")))
        local unknown = ecommpay.payment_page_url({ project_id = 99, payment_id = "x", payment_amount = 100,
            payment_currency = "EUR", customer_id = "c" }, H.SECRET, sb.url .. "/ecommpay")
        assert.equal("Unknown project", error_text(request("GET", unknown)))
        local function signed(p)
            p.project_id = H.PROJECT_ID
            return ecommpay.payment_page_url(p, H.SECRET, sb.url .. "/ecommpay")
        end
        assert.equal("Required parameter customer_id is missing",
            error_text(request("GET", signed { payment_id = "x", payment_amount = 100, payment_currency = "EUR" })))
        assert.equal("Currency USD is not available for Trustly", error_text(request("GET",
            signed { payment_id = "x", payment_amount = 100, payment_currency = "USD", customer_id = "c" })))
        assert.equal("payment_amount must be a positive integer in minor units", error_text(request("GET",
            signed { payment_id = "x", payment_amount = "1.5", payment_currency = "EUR", customer_id = "c" })))
        assert.equal("payment_amount must be a positive integer in minor units", error_text(request("GET",
            signed { payment_id = "x", payment_amount = "1" .. ("0"):rep(20), payment_currency = "EUR", customer_id = "c" })))
        -- the Trustly document's purchase rules: 1.00 EUR at least, no payout-only country
        assert.equal("payment_amount is below the method minimum (1.00 EUR)", error_text(request("GET",
            signed { payment_id = "x", payment_amount = 99, payment_currency = "EUR", customer_id = "c" })))
        assert.equal("Only payouts are supported in FR", error_text(request("GET", signed {
            payment_id = "x", payment_amount = 100, payment_currency = "EUR", customer_id = "c", customer_country = "FR" })))
        assert.equal("Country US is not supported by the method", error_text(request("GET", signed {
            payment_id = "x", payment_amount = 100, payment_currency = "EUR", customer_id = "c", customer_country = "US" })))
        local typed = query_of(signed { payment_id = "x", payment_amount = 100, payment_currency = "EUR", customer_id = "c",
            customer_first_name = "A", customer_last_name = "B", customer_email = "a@b.example" })
        local res = request("POST", sb.url .. "/ecommpay/payment",
            { query = typed, decision = "approve", bank = "de-sparkasse", customer_country = "PT" })
        assert.equal(422, res.status)
        assert.equal("Only payouts are supported in PT", res.body:match('<p id="problem">(.-)</p>'))
        assert.matches("^Invalid signature", error_text(request("GET", base .. "project_id=1625")))
    end)

    it("escapes every parameter it shows", function()
        local id = H.unique("x") .. '"><script>alert(1)</script>'
        -- (past the client's checks: the page must hold whatever a URL says)
        local res = request("GET", ecommpay.payment_page_url(params(id, { project_id = H.PROJECT_ID,
            payment_description = "<img src=x onerror=alert(1)>", customer_email = "" }), H.SECRET,
            sb.url .. "/ecommpay"))
        assert.equal(200, res.status)
        assert.is_nil(res.body:find("<script>", 1, true))
        assert.is_nil(res.body:find("<img", 1, true))
        assert.truthy(res.body:find("&lt;img src=x onerror=alert(1)&gt;", 1, true))
        assert.truthy(res.body:find("&quot;&gt;&lt;script&gt;", 1, true))
        -- what the customer typed comes back escaped too
        res = request("POST", sb.url .. "/ecommpay/payment", { query = (res.body:match('name="query" value="([^"]*)"')
            :gsub("&amp;", "&")), decision = "approve", customer_email = '"><b>x</b>' })
        assert.equal(422, res.status)
        assert.is_nil(res.body:find("<b>", 1, true))
        assert.truthy(res.body:find('name="customer_email" value="&quot;&gt;&lt;b&gt;x&lt;/b&gt;"', 1, true))
    end)

    it("a form with a changed query is refused; a bank of another country is not taken", function()
        local id = H.unique("f")
        local query = query_of(assert(gate:payment_page(params(id))))
        local page = sb.url .. "/ecommpay/payment"
        local res = request("POST", page,
            { query = query:gsub("payment_amount=1000", "payment_amount=1"), decision = "approve", bank = "ee-lhv" })
        assert.equal("Invalid signature", error_text(res))
        res = request("POST", page, { query = query, decision = "approve", bank = "se-seb" })
        assert.equal(422, res.status)
        assert.equal("Choose a bank in EE", res.body:match('<p id="problem">(.-)</p>'))
        assert.same({}, H.callbacks(sb, id, 0))

        -- no URL for the outcome: the fake's own result page
        res = request("POST", page, { query = query, decision = "approve", bank = "ee-lhv" })
        assert.equal(200, res.status)
        assert.equal("Payment approved", res.body:match("<title>(.-)</title>"))
        assert.equal("succeeded", assert(ecommpay.verify_notification(H.callbacks(sb, id, 1)[1].body, nil,
            { secret = H.SECRET })).status)
        -- the same form again: the payment exists
        assert.matches("already exists", error_text(request("POST", page,
            { query = query, decision = "approve", bank = "ee-lhv" })))

        -- a payment made on the page is refunded through Gate like any other
        assert.equal("success", assert(gate:refund("trustly", { general = { payment_id = id },
            payment = { description = "Returned goods" }, customer = { ip_address = "198.51.100.7" } })).status)
        local refund = assert(ecommpay.verify_notification(H.callbacks(sb, id, 2)[2].body, nil, { secret = H.SECRET }))
        assert.same({ "refund", "refunded", 1000 }, { refund.kind, refund.status, refund.amount })
    end)

    it("redirects to redirect_success_url / redirect_fail_url without the merchant_ ones", function()
        local page = sb.url .. "/ecommpay/payment"
        local ok_id, no_id = H.unique("r"), H.unique("r")
        local res = request("POST", page, { decision = "approve", bank = "ee-seb", query = query_of(assert(
            gate:payment_page(params(ok_id, { redirect_success_url = "https://shop.example/ok?o=1" })))) })
        assert.same({ 303, "https://shop.example/ok?o=1" }, { res.status, res.headers.location })
        res = request("POST", page, { decision = "decline", query = query_of(assert(gate:payment_page(params(no_id,
            { redirect_fail_url = "https://shop.example/no", merchant_return_url = "https://shop.example/back" })))) })
        assert.same({ 303, "https://shop.example/no" }, { res.status, res.headers.location })
        assert.equal("failed", assert(ecommpay.verify_notification(H.callbacks(sb, no_id, 1)[1].body, nil,
            { secret = H.SECRET })).status)
    end)
end)
