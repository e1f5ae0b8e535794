-- ecommpay's Payment Page for the Trustly method ("Purchases by using
-- Payment Page" in the Trustly document, ../shared/seeds/000), against the
-- sandbox's fake of it, driven by a real headless browser (Debian's
-- chromium, spec/support/browser.lua): the signed URL the client builds
-- opens the page, the customer types what the request left out, chooses a
-- bank and approves or declines; the browser ends on the merchant's success
-- or fail URL and the merchant's endpoint receives the signed callback.
local cjson = require "cjson"
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
        p = b:open(assert(other:payment_page { payment_id = id, payment_amount = 2500, payment_currency = "EUR",
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
