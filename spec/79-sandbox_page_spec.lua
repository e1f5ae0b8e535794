-- The sandbox's page (GET /_sandbox/, luapay.sandbox.page) in a real
-- headless browser (Debian's chromium, spec/support/browser.lua): it shows
-- the payments, refunds and payouts the fakes made through the providers'
-- own clients, every notification with its signed message, headers and the
-- merchant's answer, as text whatever they hold; it follows the journal
-- live; and its buttons (approve, decline, fail refund, reverse payout)
-- make the fake send the signed notification that means what the button
-- says, which the provider's client:notification verifies.
local cjson = require "cjson"
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local providers = require "luapay.sandbox.providers"
local browser = require "support.browser"
local merchant = require "support.page_merchant"
local support = require "support.cli"
local util = require "support.util"
local cli = require "luapay.cli"

-- Only a machine without chromium skips this; CI never does (there it fails
-- like any browser spec: scripts/setup.sh installs chromium).
if not browser.binary() and not os.getenv("CI") then
    describe("the sandbox page", function()
        pending("chromium is not installed (scripts/setup.sh installs it)")
    end)
    return
end

local http = require("luapay.http").new{ retries = 0, timeout_ms = 20000, deadline_ms = 20000 }
local sb, b
local function url(path) return sb.url .. path end
local PAGE = "/_sandbox/"

local function get(path)
    local res = assert(http:request{ method = "GET", url = url(path) })
    return core.json_decode(res.body), res
end

local function post(path, value)
    local res = assert(http:request{ method = "POST", url = url(path), body = assert(core.json_encode(value)),
                                     headers = { ["Content-Type"] = "application/json" } })
    return core.json_decode(res.body), res.status
end

local clients = {}
local function client(name)
    if not clients[name] then
        local adapter = cli.providers[name]
        clients[name] = adapter.client(adapter.sandbox_settings(sb.url .. "/" .. name))
    end
    return clients[name]
end

local function js(v) return cjson.encode(v) end
local function row(provider, id) return ("tr.op[data-key=%s]"):format(js(provider .. ":" .. id)) end
local function button(provider, id, action) return row(provider, id) .. (" button[data-action=%s]"):format(js(action)) end

-- The text of the element the selector finds inside the operation's row.
local function cell(provider, id, what)
    return b:eval(("(() => { const e = document.querySelector(%s); return e && e.textContent })()")
        :format(js(row(provider, id) .. " " .. what)))
end

local function wait_status(provider, id, status)
    b:wait(("(() => { const e = document.querySelector(%s); return e !== null && e.textContent === %s })()")
        :format(js(row(provider, id) .. " td.status"), js(status)), ("%s %s to show %s"):format(provider, id, status))
end

-- The journal's notifications about the operation after seq `since`.
local function sent(provider, id, since)
    local out = {}
    for _, e in ipairs(get("/_sandbox/journal?type=notification&since=" .. since).entries) do
        if e.provider == provider and e.id == id then out[#out + 1] = e end
    end
    return out
end

local function cursor() return get("/_sandbox/journal?since=last").cursor end

-- What the page shows of notification `seq`, once it shows it.
local function shown(seq)
    local sel = ('details.notification[data-seq="%d"]'):format(seq)
    b:wait(("document.querySelector(%s) !== null"):format(js(sel)), "notification " .. seq .. " on the page")
    return cjson.decode(b:eval(([[(() => {
        const d = document.querySelector(%s), text = (s) => { const e = d.querySelector(s); return e && e.textContent; };
        const headers = {};
        d.querySelectorAll("table.headers tr").forEach((tr) => { headers[tr.cells[0].textContent] = tr.cells[1].textContent; });
        return JSON.stringify({ body: text("pre.body"), status: text(".answer-status"), answer: text("pre.answer-body"),
                                event: d.getAttribute("data-event"), id: d.getAttribute("data-id"), headers: headers });
    })()]]):format(js(sel))))
end

-- Clicks the button and returns the one notification it made the fake send.
local function press(provider, id, action)
    local before = cursor()
    b:click(button(provider, id, action))
    local list = util.wait_for(function()
        local l = sent(provider, id, before)
        return #l > 0 and l
    end)
    assert.is_table(list, ("%s on %s %s sent no notification"):format(action, provider, id))
    assert.equal(1, #list)
    return list[1]
end

-- The page never made an element of what it shows: the only script is its
-- own, and no image, link, frame or form came in with a body.
local function nothing_injected()
    assert.equal(1, b:eval("document.scripts.length"))
    assert.equal(0, b:eval("document.querySelectorAll('img, a, iframe, object, embed, form:not(#trigger), b').length"))
    assert.equal("luapay sandbox", b:eval("document.title"))
end

setup(function()
    cli.load_providers()
    local routes = providers.routes()
    routes["/merchant/"] = "support.page_merchant"
    sb = assert(sandbox.start{ routes = routes, lua_path = "spec/?.lua" })
    b = browser.start { ports = { sb.port } }
end)

teardown(function()
    if b then b:close() end
    for _, c in pairs(clients) do c:close() end
    http:close()
    if sb then util.stop_sandbox(sb) end
end)

describe("the sandbox page", function()
    it("is one HTML document at /_sandbox/ that loads nothing from elsewhere", function()
        local _, res = get(PAGE)
        assert.equal(200, res.status)
        assert.matches("^text/html", res.headers["content-type"])
        local csp = res.headers["content-security-policy"]
        assert.matches("default%-src 'none'", csp)
        assert.matches("script%-src 'nonce%-[%w+/=]+'", csp)
        assert.matches("connect%-src 'self'", csp)
        for _, outside in ipairs({ "https?://", "src=", "href=", "<link", "@import", "url%(" }) do
            assert.is_nil(res.body:find(outside), outside)
        end
        -- a new nonce each time
        assert.are_not.equal(csp, select(2, get(PAGE)).headers["content-security-policy"])
        local post_res = assert(http:request{ method = "POST", url = url(PAGE), body = "{}",
                                              headers = { ["Content-Type"] = "application/json" } })
        assert.equal(405, post_res.status)

        b:open(url(PAGE))
        b:wait("document.getElementById('live').textContent.startsWith('live')", "the page to follow the journal")
        -- every request it made went to the sandbox
        local requests = cjson.decode(b:eval("JSON.stringify(performance.getEntriesByType('resource').map(e => e.name))"))
        assert.is_true(#requests > 0)
        for _, r in ipairs(requests) do assert.equal(url("/_sandbox/"), r:sub(1, #url("/_sandbox/")), r) end
        -- the provider choices of the events form are the journal's
        assert.equal("ecommpay trustly trustpay begateway trustly_na",
            b:eval("Array.from(document.querySelectorAll('#t-provider option')).map(o => o.value).join(' ')"))
    end)

    it("shows a payment, approves it, and shows the signed notification and the merchant's answer as text", function()
        local gate = client("ecommpay")
        local id = "page-" .. core.uuid4()
        local hostile = [[Order 7 <script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">]]
        assert(gate:sale("trustly", { general = { payment_id = id, merchant_callback_url = url("/merchant/ecommpay") },
            payment = { amount = 2500, currency = "EUR", description = hostile },
            customer = { id = "c-42", ip_address = "198.51.100.7", first_name = "Asa", last_name = "Lindqvist",
                         email = "asa@example.se", country = "SE", language = "sv" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" } }))
        b:open(url(PAGE))
        wait_status("ecommpay", id, "pending")
        assert.same({ "payment", "25.00 EUR", id }, { cell("ecommpay", id, ".kind"), cell("ecommpay", id, ".amount"),
                                                      cell("ecommpay", id, ".id") })
        -- a payment's buttons: approve and decline
        assert.equal("approve decline", b:eval(("Array.from(document.querySelectorAll(%s)).map(e => "
            .. "e.getAttribute('data-action')).join(' ')"):format(js(row("ecommpay", id) .. " button"))))

        local n = press("ecommpay", id, "approve")
        assert.equal("sale success", n.event)
        local ev = assert(gate:notification(n.body, n.headers))
        assert.same({ "payment", "succeeded", id, 2500, "EUR" },
            { ev.kind, ev.status, ev.merchant_ref, ev.amount, ev.currency })
        assert.equal(hostile, ev.extra.body.payment.description)
        wait_status("ecommpay", id, "succeeded")

        -- the notification: its signed body and headers exactly as sent, the
        -- merchant's answer, all as text
        local seen = shown(n.seq)
        assert.same({ n.body, "sale success", id }, { seen.body, seen.event, seen.id })
        assert.same(n.headers, seen.headers)
        assert.same({ "200", merchant.ANSWER }, { seen.status, seen.answer })
        assert.truthy(seen.body:find("<script>document.title='pwned'</script>", 1, true))
        b:click(('details.notification[data-seq="%d"] summary'):format(n.seq)) -- opened, still text
        b:wait(('document.querySelector(\'details.notification[data-seq="%d"]\').open'):format(n.seq))
        nothing_injected()
    end)

    it("declines a payment; a button the operation cannot take says why and sends nothing", function()
        local gate = client("ecommpay")
        local id = "page-" .. core.uuid4()
        assert(gate:sale("trustly", { general = { payment_id = id, merchant_callback_url = url("/merchant/ecommpay") },
            payment = { amount = 1999, currency = "SEK" }, customer = { id = "c-43", ip_address = "198.51.100.8",
            first_name = "Nils", last_name = "Holm", email = "nils@example.se", country = "SE", language = "sv" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" } }))
        b:open(url(PAGE))
        wait_status("ecommpay", id, "pending")
        local n = press("ecommpay", id, "decline")
        local ev = assert(client("ecommpay"):notification(n.body, n.headers))
        assert.same({ "payment", "failed", id, 1999, "SEK" }, { ev.kind, ev.status, ev.merchant_ref, ev.amount, ev.currency })
        wait_status("ecommpay", id, "failed")
        assert.equal("19.99 SEK", cell("ecommpay", id, ".amount"))
        assert.equal("sale decline", shown(n.seq).event)

        -- declined already: the fake refuses (409) and the page shows its message
        local before = cursor()
        b:click(button("ecommpay", id, "approve"))
        b:wait("document.getElementById('result').className === 'error'", "the refusal")
        assert.matches("is decline already", b:eval("document.getElementById('result').textContent"))
        assert.same({}, sent("ecommpay", id, before))
        assert.equal("failed", cell("ecommpay", id, "td.status"))
    end)

    it("fails a Trustly refund: a refund that failed, never a received payment", function()
        local trustly = client("trustly")
        local dep = assert(trustly:deposit{ NotificationURL = url("/merchant/trustly"), EndUserID = "u-1",
            MessageID = "m-" .. core.uuid4(), Attributes = { Currency = "EUR", Amount = "25.00", Firstname = "Jane",
            Lastname = "Doe", Country = "SE", Locale = "sv_SE", SuccessURL = "https://shop.example/ok",
            FailURL = "https://shop.example/fail" } })
        b:open(url(PAGE))
        wait_status("trustly", dep.orderid, "created")
        local credit = press("trustly", dep.orderid, "approve")
        local ev = assert(trustly:notification(credit.body, credit.headers))
        assert.same({ "payment", "succeeded", 2500 }, { ev.kind, ev.status, ev.amount })
        wait_status("trustly", dep.orderid, "succeeded")

        assert(trustly:refund{ OrderID = dep.orderid, Amount = "10.00", Currency = "EUR" })
        local refund = util.wait_for(function()
            for _, o in ipairs(get("/_sandbox/operations").operations) do
                if o.provider == "trustly" and o.parent == dep.orderid then return o end
            end
        end)
        assert.same({ "refund", 1000 }, { refund.kind, refund.amount })
        -- the page shows it live, under its payment, with the one button a refund has
        b:wait(("document.querySelector(%s) !== null"):format(js(row("trustly", refund.id))), "the refund to show up")
        assert.equal("of " .. dep.orderid, cell("trustly", refund.id, ".id .dim"))
        assert.equal("10.00 EUR", cell("trustly", refund.id, ".amount"))
        assert.equal(1, b:eval(("document.querySelectorAll(%s).length"):format(js(row("trustly", refund.id) .. " button"))))

        local n = press("trustly", refund.id, "fail_refund")
        -- Trustly says it with a credit on the deposit's order: the client
        -- that made the refund reads it as the refund failing
        assert.equal("credit", n.event)
        ev = assert(trustly:notification(n.body, n.headers))
        assert.same({ "refund", "failed", 1000, "EUR" }, { ev.kind, ev.status, ev.amount, ev.currency })
        wait_status("trustly", refund.id, "failed")
        assert.equal("succeeded", cell("trustly", dep.orderid, "td.status"))
        assert.equal(n.body, shown(n.seq).body)
    end)

    it("reverses a payout", function()
        local gate = client("ecommpay")
        local id = "page-" .. core.uuid4()
        assert(gate:payout("trustly", { general = { payment_id = id, merchant_callback_url = url("/merchant/ecommpay") },
            payment = { amount = 4000, currency = "SEK" },
            customer = { id = "customer-9", ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
            account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
            additional_data = { sender = { party_type = "ORGANISATION", first_name = "Shop AB",
                                           address = "Drottninggatan 1, Stockholm", country = "SE" } } }))
        b:open(url(PAGE))
        wait_status("ecommpay", id, "succeeded")
        assert.same({ "payout", "40.00 SEK" }, { cell("ecommpay", id, ".kind"), cell("ecommpay", id, ".amount") })
        local n = press("ecommpay", id, "reverse_payout")
        local ev = assert(gate:notification(n.body, n.headers))
        assert.same({ "reversal", "reversed", 4000, "SEK" }, { ev.kind, ev.status, ev.amount, ev.currency })
        wait_status("ecommpay", id, "reversed")
        assert.same({ "200", merchant.ANSWER }, { shown(n.seq).status, shown(n.seq).answer })
        nothing_injected()
    end)

    it("follows the journal: what happens elsewhere shows up without a reload", function()
        b:open(url(PAGE))
        b:wait("document.getElementById('live').textContent.startsWith('live')", "the page to follow the journal")
        b:eval("window.stayed = true") -- gone if the page reloaded
        local doc = post("/_sandbox/trigger", { provider = "begateway", event = "payment_successful",
                                               url = url("/merchant/begateway"), amount = 500, currency = "JPY" })
        wait_status("begateway", doc.id, "succeeded")
        assert.equal("500 JPY", cell("begateway", doc.id, ".amount"))
        local n = doc.notifications[1]
        local seen = shown(n.seq)
        assert.same({ n.body, "200", merchant.ANSWER }, { seen.body, seen.status, seen.answer })
        assert.same(n.headers, seen.headers)
        assert(client("begateway"):notification(seen.body, seen.headers))
        assert.is_true(b:eval("window.stayed === true"))
        -- a row that did not change stays the same element (a button being
        -- pressed is not taken away from under the pointer)
        b:eval(("window.kept = document.querySelector(%s); true"):format(js(row("begateway", doc.id))))
        core.sleep(2.2)
        assert.is_true(b:eval(("document.querySelector(%s) === window.kept"):format(js(row("begateway", doc.id)))))

        -- `luapay listen`'s forward target: shown, and where each notification also went
        post("/_sandbox/forward", { url = url("/merchant/forwarded") })
        finally(function() post("/_sandbox/forward", {}) end)
        b:wait("document.getElementById('forward').textContent === " .. js("also forwarding to " .. url("/merchant/forwarded")),
            "the forward target")
        local fwd = post("/_sandbox/trigger", { provider = "trustpay", event = "credit", url = url("/merchant/trustpay") })
        b:wait(("document.querySelector('details.notification[data-seq=\"%d\"] .forward-url') !== null")
            :format(fwd.notifications[1].seq), "the forwarded notification")
        assert.equal(url("/merchant/forwarded"), b:eval(("document.querySelector('details.notification[data-seq=\"%d\"] "
            .. ".forward-url').textContent"):format(fwd.notifications[1].seq)))
        post("/_sandbox/forward", {})
        b:wait("document.getElementById('forward').textContent === ''", "the forward target to go")

        -- and the page's events form sends a new one (the selects are set
        -- as a person would pick; the button is clicked)
        local before = cursor()
        b:eval("document.getElementById('t-provider').value = 'trustly_na'; "
            .. "document.getElementById('t-provider').dispatchEvent(new Event('change')); "
            .. "document.getElementById('t-event').value = 'reverse'; true")
        b:click("#trigger button[type=submit]")
        b:wait("document.getElementById('result').textContent.startsWith('trustly_na reverse about ')", "the result")
        local list = util.wait_for(function()
            local l = get("/_sandbox/journal?type=notification&since=" .. before).entries
            return #l > 0 and l
        end)
        assert.same({ "trustly_na", core.null }, { list[1].provider, list[1].url })
        local ev = assert(client("trustly_na"):notification(list[1].body, list[1].headers))
        assert.same({ "reversal", "reversed" }, { ev.kind, ev.status })
        wait_status("trustly_na", list[1].id, "reversed")
        assert.is_true(b:eval("window.stayed === true"))
    end)
end)

describe("luapay sandbox start", function()
    local STATE = "page"
    local function luapay(args) return support.run(args, nil, "LUAPAY_CONFIG=/nonexistent", STATE) end

    it("prints the page's URL, and the page is there", function()
        local out, err, code = luapay("sandbox start --json")
        assert.equal(0, code, err)
        finally(function() luapay("sandbox stop") end)
        local doc = core.json_decode(out)
        assert.equal(doc.url .. "/_sandbox/", doc.page)
        out, err, code = luapay("sandbox status --json")
        assert.equal(0, code, err)
        assert.equal(doc.page, core.json_decode(out).page)
        local port = tonumber(doc.url:match(":(%d+)$"))
        local other = browser.start { ports = { port } }
        finally(function() other:close() end)
        local p = other:open(doc.page)
        assert.equal("luapay sandbox", p.title)
        other:wait("document.getElementById('live').textContent.startsWith('live')", "the page to follow the journal")
    end)
end)
