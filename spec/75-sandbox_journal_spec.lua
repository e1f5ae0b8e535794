-- The sandbox's journal and its JSON API (luapay.sandbox.journal): the
-- operations the fakes create and change, every notification they send
-- (through one delivery function, which also forwards it), the requests
-- they serve; and triggers: each fake sends a signed notification of each
-- event it lists, which the provider's own client:notification verifies
-- and reads as what the event means.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local providers = require "luapay.sandbox.providers"
local events = require "luapay.sandbox.events"
local util = require "support.util"
local cli = require "luapay.cli"

local http = require("luapay.http").new{ retries = 0, timeout_ms = 20000, deadline_ms = 20000 }

local sb
local function url(path) return sb.url .. path end

local function get(path)
    local res = assert(http:request{ method = "GET", url = url(path) })
    return core.json_decode(res.body), res.status
end

local function post(path, value)
    local res = assert(http:request{ method = "POST", url = url(path), body = assert(core.json_encode(value)),
                                     headers = { ["Content-Type"] = "application/json" } })
    return core.json_decode(res.body), res.status
end

local function received(name) return get("/merchant/_received/" .. name) end

-- A client of each provider configured for the sandbox, as the REPL builds them.
local clients = {}
local function client(name)
    if not clients[name] then
        local adapter = cli.providers[name]
        clients[name] = adapter.client(adapter.sandbox_settings(sb.url .. "/" .. name))
    end
    return clients[name]
end

setup(function()
    cli.load_providers()
    local routes = providers.routes()
    routes["/merchant/"] = "support.journal_merchant"
    sb = assert(sandbox.start{ routes = routes, lua_path = "spec/?.lua" })
end)

teardown(function()
    for _, c in pairs(clients) do c:close() end
    http:close()
    if sb then util.stop_sandbox(sb) end
end)

describe("the sandbox journal", function()
    before_each(function() post("/_sandbox/forward", {}) end)

    it("lists every fake's events, with the page's actions", function()
        local doc = get("/_sandbox/events")
        assert.same(events.ACTIONS, doc.actions)
        assert.same(providers.available(), doc.order)
        for _, name in ipairs(providers.available()) do
            assert.is_true(#doc.providers[name] > 0, name)
            for _, e in ipairs(doc.providers[name]) do
                assert.is_string(e.name)
                assert.truthy(({ payment = true, refund = true, payout = true })[e.on], e.name)
                assert.is_string(e.doc)
            end
        end
    end)

    it("refuses an unknown provider or event, naming the choices", function()
        local doc, status = post("/_sandbox/trigger", { provider = "nope", event = "credit" })
        assert.equal(400, status)
        assert.equal("unknown provider 'nope' (ecommpay, trustly, trustpay, begateway, trustly_na)", doc.error)
        doc, status = post("/_sandbox/trigger", { provider = "trustly", event = "nope" })
        assert.equal(400, status)
        assert.matches("^unknown trustly event 'nope' %(pending, credit, debit, cancel, ", doc.error)
        doc, status = post("/_sandbox/trigger", { provider = "ecommpay", event = "payment_success", id = "no-such" })
        assert.equal(404, status, doc.error)
    end)

    it("answers only this machine: a loopback Host, and JSON for what it changes", function()
        local before = get("/_sandbox/journal?since=last").cursor
        -- another site's form: a simple POST the browser sends without asking
        local res = assert(http:request{ method = "POST", url = url("/_sandbox/trigger"),
            body = "provider=trustly&event=credit", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
        assert.equal(415, res.status)
        res = assert(http:request{ method = "POST", url = url("/_sandbox/forward"),
            body = '{"url":"http://127.0.0.1:9/"}', headers = { ["Content-Type"] = "text/plain" } })
        assert.equal(415, res.status)
        assert.equal(core.null, (get("/_sandbox/forward")).url)
        -- a DNS-rebinding page: the right address under another name
        for _, path in ipairs({ "/_sandbox/journal", "/_sandbox/", "/_sandbox/operations" }) do
            res = assert(http:request{ method = "GET", url = url(path), headers = { Host = "rebind.example:" .. sb.port } })
            assert.equal(403, res.status, path)
        end
        local doc, status = post("/_sandbox/trigger", { provider = "trustly", event = "nope" })
        assert.equal(400, status, doc.error)
        -- nothing was sent or recorded by the refused requests
        local later = get("/_sandbox/journal?since=" .. before .. "&type=notification,operation")
        assert.same({}, later.entries)
        assert.equal(200, select(2, get("/_sandbox/journal?since=last")))
    end)

    for _, name in ipairs(providers.available()) do
        for _, event in ipairs(require("luapay.sandbox." .. name).EVENTS) do
            it(("sends %s's %s notification, signed, meaning %s"):format(name, event.name, event.means), function()
                local box = name .. "-" .. event.name
                local doc, status = post("/_sandbox/trigger", { provider = name, event = event.name,
                                                                url = url("/merchant/" .. box) })
                assert.equal(200, status, doc.error)
                assert.equal(1, #doc.notifications)
                local sent = doc.notifications[1]
                assert.same({ 200, "OK" }, { sent.answer.status, sent.answer.body })
                local got = received(box)
                assert.equal(1, #got)
                local raw = got[1].method == "GET" and got[1].query or got[1].body
                assert.equal(sent.body, raw)
                -- what a merchant knows: the refunds it made (Trustly tells a
                -- failed refund from a payment only by them)
                local c = client(name)
                if name == "trustly" and event.on == "refund" then
                    local op = get("/_sandbox/operations").operations
                    for _, o in ipairs(op) do
                        if o.id == doc.id then
                            assert(require("luapay.trustly").record_refund(c.store, o.parent, o.amount, o.currency))
                        end
                    end
                end
                local ev, err = c:notification(raw, got[1].headers)
                if event.means == "unsupported" then
                    assert.is_nil(ev)
                    assert.same({ "validation", "unsupported" }, { err.type, err.code })
                    return
                end
                assert(ev, err)
                assert.equal(event.means, ev.kind .. " " .. ev.status)
                -- the operation it acts on is in the journal
                local found
                for _, o in ipairs(get("/_sandbox/operations").operations) do
                    if o.provider == name and o.id == doc.id then found = o end
                end
                assert.is_table(found, doc.id)
                assert.equal(event.on, found.kind)
            end)
        end
    end

    it("acts on an operation given by id: approve a payment, fail its refund, reverse a payout", function()
        local box = "actions"
        local doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "payment_pending", url = url("/merchant/" .. box) })
        local id = doc.id
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "approve", id = id })
        assert.equal("payment_success", doc.event)
        local ev = assert(client("ecommpay"):notification(doc.notifications[1].body))
        assert.same({ "payment", "succeeded", id }, { ev.kind, ev.status, ev.merchant_ref })
        local _, status = post("/_sandbox/trigger", { provider = "ecommpay", event = "decline", id = id })
        assert.equal(409, status)
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "refund_success", id = id })
        local refund_id = doc.id
        assert.equal(id .. "/refund/1", refund_id)
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "fail_refund", id = refund_id })
        ev = assert(client("ecommpay"):notification(doc.notifications[1].body))
        assert.same({ "refund", "failed" }, { ev.kind, ev.status })
        local ops = {}
        for _, o in ipairs(get("/_sandbox/operations").operations) do ops[o.id] = o end
        assert.equal("failed", ops[refund_id].status)
        assert.equal(id, ops[refund_id].parent)
        assert.equal("succeeded", ops[id].status) -- the money came back
        -- every delivery went to the payment's own URL
        assert.equal(4, #received(box))
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "payout_success" })
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "reverse_payout", id = doc.id })
        ev = assert(client("ecommpay"):notification(doc.notifications[1].body))
        assert.same({ "reversal", "reversed" }, { ev.kind, ev.status })
    end)

    it("acts on the operations of the fakes' own flows: the page's buttons", function()
        local gate = client("ecommpay")
        local id = "page-" .. core.uuid4()
        assert(gate:sale("trustly", { general = { payment_id = id, merchant_callback_url = url("/merchant/page-sale") },
            payment = { amount = 2500, currency = "EUR" }, customer = { id = "c-42", ip_address = "198.51.100.7",
            first_name = "Asa", last_name = "Lindqvist", email = "asa@example.se", country = "SE", language = "sv" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" } }))
        local ops = {}
        for _, o in ipairs(get("/_sandbox/operations").operations) do ops[o.id] = o end
        assert.same({ "payment", "pending", 2500, "EUR" }, { ops[id].kind, ops[id].status, ops[id].amount, ops[id].currency })
        local doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "decline", id = id })
        assert.equal(url("/merchant/page-sale"), doc.notifications[1].url)
        local ev = assert(gate:notification(doc.notifications[1].body))
        assert.same({ "payment", "failed", id }, { ev.kind, ev.status, ev.merchant_ref })
        local pid = "page-" .. core.uuid4()
        assert(gate:payout("trustly", { general = { payment_id = pid }, payment = { amount = 4000, currency = "SEK" },
            customer = { id = "customer-9", ip_address = "203.0.113.20", first_name = "Nils", last_name = "Holm" },
            account = { clearinghouse = "SWEDEN", bank_code = "5000", number = "1234567890" },
            additional_data = { sender = { party_type = "ORGANISATION", first_name = "Shop AB",
                                           address = "Drottninggatan 1, Stockholm", country = "SE" } } }))
        doc = post("/_sandbox/trigger", { provider = "ecommpay", event = "reverse_payout", id = pid })
        ev = assert(gate:notification(doc.notifications[1].body))
        assert.same({ "reversal", "reversed", 4000 }, { ev.kind, ev.status, ev.amount })
        -- beGateway: a transaction the fake sent, then its refund failing
        local sent = post("/begateway/notify", { url = url("/merchant/bg-page"), i = 7,
                                                  set = { type = "payment", status = "successful" } })
        assert.equal(200, sent.http_status)
        local uid = core.json_decode(received("bg-page")[1].body).transaction.uid
        doc = post("/_sandbox/trigger", { provider = "begateway", event = "fail_refund", id = uid })
        local got = received("bg-page")[2]
        ev = assert(client("begateway"):notification(got.body, got.headers))
        assert.same({ "refund", "failed" }, { ev.kind, ev.status })
        assert.equal(uid, ev.extra.transaction.parent_uid)
        for _, o in ipairs(get("/_sandbox/operations").operations) do ops[o.id] = o end
        assert.same({ "refund", "failed", uid }, { ops[doc.id].kind, ops[doc.id].status, ops[doc.id].parent })
    end)

    it("keeps a failed Trustly refund a failed refund for the client that made it", function()
        local trustly = client("trustly")
        local dep = assert(trustly:deposit{ NotificationURL = url("/merchant/trustly-flow"), EndUserID = "u-1",
            MessageID = "m-" .. core.uuid4(), Attributes = { Currency = "EUR", Amount = "25.00", Firstname = "Jane",
            Lastname = "Doe", Country = "SE", Locale = "sv_SE", SuccessURL = "https://shop.example/ok",
            FailURL = "https://shop.example/fail" } })
        local doc = post("/_sandbox/trigger", { provider = "trustly", event = "approve", id = dep.orderid })
        local credit = assert(trustly:notification(doc.notifications[1].body))
        assert.same({ "payment", "succeeded", 2500 }, { credit.kind, credit.status, credit.amount })
        local refused, status = post("/_sandbox/trigger", { provider = "trustly", event = "decline", id = dep.orderid })
        assert.same({ 409, ("order %s is credited: no cancel"):format(dep.orderid) }, { status, refused.error })
        assert(trustly:refund{ OrderID = dep.orderid, Amount = "10.00", Currency = "EUR" })
        local refund
        for _, o in ipairs(get("/_sandbox/operations").operations) do
            if o.parent == dep.orderid then refund = o end
        end
        assert.same({ "refund", 1000 }, { refund.kind, refund.amount })
        doc = post("/_sandbox/trigger", { provider = "trustly", event = "fail_refund", id = refund.id })
        local ev = assert(trustly:notification(doc.notifications[1].body))
        assert.same({ "refund", "failed", 1000 }, { ev.kind, ev.status, ev.amount })
        assert.equal("credit", ev.extra.method)
    end)

    it("records operations, notifications and requests, newest last, and follows with since", function()
        local before = get("/_sandbox/journal?since=0")
        assert.is_number(before.cursor)
        local doc = post("/_sandbox/trigger", { provider = "trustpay", event = "credit", url = url("/merchant/j") })
        local after = get("/_sandbox/journal?since=" .. before.cursor)
        local types = {}
        for i, e in ipairs(after.entries) do
            types[e.type] = (types[e.type] or 0) + 1
            assert.equal(before.cursor + i, e.seq)
            assert.is_number(e.at)
        end
        assert.is_true(types.operation >= 1 and types.notification == 1 and types.request >= 1)
        local n
        for _, e in ipairs(after.entries) do if e.type == "notification" then n = e end end
        assert.same({ "trustpay", doc.id, "GET", url("/merchant/j") }, { n.provider, n.id, n.method, n.url })
        assert.equal(200, n.answer.status)
        local req
        for _, e in ipairs(after.entries) do if e.type == "request" then req = e end end
        assert.same({ "GET", "/merchant/j", 200 }, { req.method, req.path, req.status })
        assert.is_number(req.ms)
        -- nothing new: the same cursor, no entries; a type filter
        local again = get("/_sandbox/journal?since=" .. after.cursor)
        assert.same({ after.cursor, {} }, { again.cursor, again.entries })
        local only = get("/_sandbox/journal?type=notification&since=" .. before.cursor)
        assert.equal(1, #only.entries)
        -- the journal API's own requests are not journaled
        for _, e in ipairs(get("/_sandbox/journal?type=request").entries) do
            assert.is_nil(e.path:find("^/_sandbox/"), e.path)
        end
    end)

    it("records a notification of a fake's own flow, and the merchant's answer", function()
        local trustpay = client("trustpay")
        local before = get("/_sandbox/journal").cursor
        local pay = assert(trustpay:wire_payment_url{ Amount = 600, Currency = "EUR", Reference = "J-1",
            NotificationUrl = url("/merchant/tp-flow") })
        local page = assert(http:request{ method = "GET", url = pay })
        local id = page.headers["x-sandbox-payment-id"] or page.headers["X-Sandbox-Payment-Id"]
        assert(http:request{ method = "POST", url = url("/trustpay/_sandbox/pay?id=" .. id) })
        assert.is_true(util.wait_for(function() return #received("tp-flow") == 2 end))
        local sent = util.wait_for(function()
            local e = get("/_sandbox/journal?type=notification&since=" .. before).entries
            return #e == 2 and e
        end)
        for i, code in ipairs({ "2", "0" }) do
            assert.equal(received("tp-flow")[i].query, sent[i].body)
            assert.equal("CRDT ResultCode " .. code, sent[i].event)
            assert.equal(200, sent[i].answer.status)
        end
        local ev = assert(trustpay:notification(sent[2].body))
        assert.same({ "payment", "succeeded", 600 }, { ev.kind, ev.status, ev.amount })
    end)

    it("forwards every notification, signed the same, to the forward target, and stops when cleared", function()
        local doc = post("/_sandbox/forward", { url = url("/merchant/forwarded") })
        assert.equal(url("/merchant/forwarded"), doc.url)
        assert.equal(url("/merchant/forwarded"), get("/_sandbox/forward").url)
        doc = post("/_sandbox/trigger", { provider = "begateway", event = "payment_successful",
                                          url = url("/merchant/bg-origin") })
        local n = doc.notifications[1]
        assert.same({ url("/merchant/forwarded"), 200 }, { n.forward.url, n.forward.answer.status })
        local origin, forwarded = received("bg-origin")[1], received("forwarded")[1]
        assert.equal(origin.body, forwarded.body)
        for _, h in ipairs({ "content-signature", "authorization", "content-type" }) do
            assert.equal(origin.headers[h], forwarded.headers[h], h)
        end
        assert(client("begateway"):notification(forwarded.body, forwarded.headers))
        -- no URL of its own: only forwarded
        doc = post("/_sandbox/trigger", { provider = "trustly_na", event = "pay_completed" })
        n = doc.notifications[1]
        assert.same({ core.null, "no notification URL", 200 }, { n.url, n.error, n.forward.answer.status })
        local fwd = received("forwarded")[2]
        assert.same({ "payment", "succeeded" }, { client("trustly_na"):notification(fwd.body, fwd.headers).kind,
                                                  client("trustly_na"):notification(fwd.body, fwd.headers).status })
        doc = post("/_sandbox/forward", { url = core.null })
        assert.equal(core.null, doc.url)
        doc = post("/_sandbox/trigger", { provider = "trustly_na", event = "pay_completed" })
        assert.equal(core.null, doc.notifications[1].forward)
        assert.equal(2, #received("forwarded"))
        -- a target set with a ttl lapses
        post("/_sandbox/forward", { url = url("/merchant/lapsed"), ttl = 0.2 })
        core.sleep(0.3)
        assert.equal(core.null, get("/_sandbox/forward").url)
        local _, status = post("/_sandbox/forward", { url = "ftp://x" })
        assert.equal(400, status)
    end)

    it("records a handler's error with its request", function()
        local routes = providers.routes()
        routes["/broken/"] = "support.broken_handlers"
        local other = assert(sandbox.start{ routes = routes, lua_path = "spec/?.lua" })
        finally(function() other:stop() end)
        local res = assert(http:request{ method = "GET", url = other.url .. "/broken/raise" })
        assert.equal(500, res.status)
        res = assert(http:request{ method = "GET", url = other.url .. "/_sandbox/journal?type=request" })
        local e = core.json_decode(res.body).entries
        assert.same({ "GET", "/broken/raise", 500 }, { e[1].method, e[1].path, e[1].status })
        assert.matches("handler failed on purpose", e[1].error)
    end)
end)
