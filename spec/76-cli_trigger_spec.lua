-- `luapay trigger`, `luapay listen` and `luapay logs` against a background
-- sandbox (`luapay sandbox start`), with a merchant's endpoint on a
-- second server that keeps what it gets: each documented event of each
-- provider arrives signed and means what it says to the provider's own
-- client:notification; listen forwards; logs shows requests and errors.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local support = require "support.cli"
local util = require "support.util"
local cli = require "luapay.cli"

local STATE = "trigger"
local function luapay(args, input)
    return support.run(args, input, "LUAPAY_CONFIG=/nonexistent", STATE)
end

local http = require("luapay.http").new{ retries = 0, timeout_ms = 20000, deadline_ms = 20000 }
local merchant -- the merchant's own server
local sb_url   -- the background sandbox's

local function get(url)
    local res = assert(http:request{ method = "GET", url = url })
    return core.json_decode(res.body)
end
local function received(box) return get(merchant.url .. "/merchant/_received/" .. box) end
local function box_url(box) return merchant.url .. "/merchant/" .. box end

local clients = {}
local function client(name)
    if not clients[name] then
        local adapter = cli.providers[name]
        clients[name] = adapter.client(adapter.sandbox_settings(sb_url .. "/" .. name))
    end
    return clients[name]
end

setup(function()
    cli.load_providers()
    merchant = assert(sandbox.start{ routes = { ["/merchant/"] = "support.journal_merchant" }, lua_path = "spec/?.lua" })
    local out, err, code = luapay("sandbox start --json")
    assert.equal(0, code, err)
    sb_url = core.json_decode(out).url
end)

teardown(function()
    for _, c in pairs(clients) do c:close() end
    luapay("sandbox stop")
    http:close()
    if merchant then util.stop_sandbox(merchant) end
end)

describe("luapay trigger", function()
    it("lists every provider's events with --list", function()
        local out, err, code = luapay("trigger --list --json")
        assert.equal(0, code, err)
        local doc = core.json_decode(out)
        assert.same({ "ecommpay", "trustly", "trustpay", "begateway", "trustly_na" }, doc.order)
        assert.same({ "approve", "decline", "fail_refund", "reverse_payout" }, doc.actions)
        local names = {}
        for _, e in ipairs(doc.providers.trustly) do names[#names + 1] = e.name end
        for _, want in ipairs({ "pending", "credit", "debit", "cancel", "account", "payoutconfirmation", "refund_failed",
            "kyc" }) do
            assert.truthy(table.concat(names, " "):find(want, 1, true), want)
        end
        out, err, code = luapay("trigger --help")
        assert.equal(0, code, err)
        assert.matches("^usage: luapay trigger <provider> <event>", out)
        assert.matches("%-%-list", out)
    end)

    it("refuses an unknown provider or event with a usage error naming the choices", function()
        local out, err, code = luapay("trigger nope credit")
        assert.same({ "", 2 }, { out, code })
        assert.equal("luapay: unknown provider 'nope' (ecommpay, trustly, trustpay, begateway, trustly-na)\n", err)
        out, err, code = luapay("trigger trustpay chargeback")
        assert.same({ "", 2 }, { out, code })
        assert.equal("luapay: unknown trustpay event 'chargeback' (announced, processing, credit, authorized, "
            .. "declined, debit, approve, decline)\n", err)
        err, code = select(2, luapay("trigger trustly"))
        assert.equal(2, code)
        assert.matches("^luapay: usage: luapay trigger", err)
        err, code = select(2, luapay("trigger trustly credit --amount 1.50"))
        assert.equal(2, code)
        assert.matches("minor units", err)
        err, code = select(2, luapay("trigger ecommpay approve --id no-such"))
        assert.equal(1, code)
        assert.equal("luapay: no ecommpay payment no-such\n", err)
    end)

    for _, name in ipairs(require("luapay.sandbox.providers").available()) do
        it(("sends each of %s's events, signed, meaning what it says"):format(name), function()
            for _, event in ipairs(require("luapay.sandbox." .. name).EVENTS) do
                local box = "cli-" .. name .. "-" .. event.name
                local word = name:gsub("_", "-")
                local out, err, code = luapay(("trigger %s %s --url %s --json"):format(word, event.name:gsub("_", "-"),
                    box_url(box)))
                assert.equal(0, code, err)
                local doc = core.json_decode(out)
                assert.equal(event.name, doc.event)
                local got = assert(received(box)[1], box)
                local raw = got.method == "GET" and got.query or got.body
                local c = client(name)
                if name == "trustly" and event.on == "refund" then
                    -- the merchant made that refund: its client knows it
                    local ops = get(sb_url .. "/_sandbox/operations").operations
                    for _, o in ipairs(ops) do
                        if o.id == doc.id then require("luapay.trustly").record_refund(c.store, o.parent, o.amount, o.currency) end
                    end
                end
                local ev, verr = c:notification(raw, got.headers)
                if event.means == "unsupported" then
                    assert.same({ "validation", "unsupported" }, { verr.type, verr.code })
                else
                    assert(ev, verr and tostring(verr) .. " " .. box)
                    assert.equal(event.means, ev.kind .. " " .. ev.status, box)
                end
            end
        end)
    end

    it("approves, declines, fails a refund and reverses a payout by id, readable on a terminal", function()
        local out = luapay(("trigger trustpay processing --json --url %s"):format(box_url("tp-id")))
        local id = core.json_decode(out).id
        -- on a terminal: what was sent where, and the answer
        local p = io.popen(("env -u LD_PRELOAD LUAPAY_CONFIG=/nonexistent LUAPAY_SANDBOX_STATE=%s script -qec %q /dev/null"
            .. " </dev/null"):format(support.state_file(STATE), "bin/luapay trigger trustpay approve --id " .. id))
        out = p:read("*a"):gsub("\r\n", "\n")
        p:close()
        assert.equal(("trustpay credit on %s\n  --> GET %s  200\n"):format(id, box_url("tp-id")), out)
        local ev = assert(client("trustpay"):notification(received("tp-id")[2].query))
        assert.same({ "payment", "succeeded" }, { ev.kind, ev.status })
        local _, err, code = luapay(("trigger trustpay decline --id %s"):format(id))
        assert.equal(1, code)
        assert.matches("is a wire payment", err)
        out = luapay("trigger trustly-na reverse-payout --json --url " .. box_url("tna-rev"))
        ev = assert(client("trustly_na"):notification(received("tna-rev")[1].body, received("tna-rev")[1].headers))
        assert.same({ "reversal", "reversed" }, { ev.kind, ev.status })
        assert.is_string(core.json_decode(out).id)
    end)

    it("says so when no sandbox runs", function()
        local out, err, code = support.run("trigger trustly credit", nil, "LUAPAY_CONFIG=/nonexistent", "none")
        assert.same({ "", 3 }, { out, code })
        assert.matches("^luapay: no sandbox is running", err)
    end)
end)

describe("luapay listen", function()
    it("forwards each notification, signed, to the URL and prints it, until Ctrl-C clears the target", function()
        local target = box_url("listen")
        local run = support.start("listen --json --forward-to " .. target, "LUAPAY_CONFIG=/nonexistent", STATE)
        assert.is_true(util.wait_for(function() return run.err():find("Ready!", 1, true) ~= nil end, 10), run.err())
        assert.equal(target, get(sb_url .. "/_sandbox/forward").url)
        -- a notification of a trigger, and one of a fake's own flow to its own URL
        assert.equal(0, select(3, luapay("trigger ecommpay refund-decline")))
        assert.equal(0, select(3, luapay("trigger begateway payment-successful --url " .. box_url("bg-own"))))
        local lines = util.wait_for(function()
            local l = {}
            for line in run.out():gmatch("[^\n]+") do l[#l + 1] = core.json_decode(line) end
            return #l >= 2 and l
        end, 10)
        assert.is_table(lines, run.out())
        assert.same({ "ecommpay", "refund decline", target, 200 },
            { lines[1].provider, lines[1].event, lines[1].forward.url, lines[1].forward.answer.status })
        assert.same({ "begateway", box_url("bg-own") }, { lines[2].provider, lines[2].url })
        local fwd = received("listen")
        assert.equal(2, #fwd)
        local ev = assert(client("ecommpay"):notification(fwd[1].body, fwd[1].headers))
        assert.same({ "refund", "failed" }, { ev.kind, ev.status })
        ev = assert(client("begateway"):notification(fwd[2].body, fwd[2].headers))
        assert.same({ "payment", "succeeded" }, { ev.kind, ev.status })
        assert.equal(received("bg-own")[1].body, fwd[2].body)
        -- Ctrl-C: exit 130, the target cleared, nothing forwarded any more
        os.execute("kill -INT " .. run.pid)
        assert.equal(130, run.wait())
        assert.equal(core.null, get(sb_url .. "/_sandbox/forward").url)
        assert.is_nil(run.err():find("internal error", 1, true))
        luapay("trigger ecommpay payment-success")
        assert.equal(2, #received("listen"))
    end)

    it("prints readable lines without --json, and needs --forward-to", function()
        local run = support.start("listen --forward-to " .. box_url("listen-text"), "LUAPAY_CONFIG=/nonexistent", STATE)
        assert.is_true(util.wait_for(function() return run.err():find("Ready!", 1, true) ~= nil end, 10), run.err())
        luapay("trigger trustly credit")
        local out = util.wait_for(function() return run.out():find("\n", 1, true) and run.out() end, 10)
        assert.matches("^%d%d:%d%d:%d%d  trustly credit %[%d+%]  %-%-> 200 " .. box_url("listen-text"):gsub("%p", "%%%0")
            .. "\n$", out)
        os.execute("kill -INT " .. run.pid)
        assert.equal(130, run.wait())
        local _, err, code = luapay("listen")
        assert.equal(2, code)
        assert.matches("^luapay: %-%-forward%-to URL is required", err)
    end)
end)

describe("luapay logs", function()
    it("shows the sandbox's requests and errors, and follows them with --follow", function()
        assert(http:request{ method = "GET", url = sb_url .. "/trustly/orders/424242" })
        -- a notification the merchant refuses: the TrustPay fake logs it
        assert.equal(0, select(3, luapay("trigger trustpay credit --url " .. sb_url .. "/nowhere")))
        local out, err, code = luapay("logs")
        assert.equal(0, code, err)
        assert.matches("%d%d:%d%d:%d%d  GET /trustly/orders/424242  404  %d+ ms\n", out)
        assert.matches("%[warn%] [^\n]*trustpay sandbox: notification to [^\n]*/nowhere was not accepted", out)
        out = luapay("logs --json")
        local kinds = {}
        for line in out:gmatch("[^\n]+") do
            local e = core.json_decode(line)
            kinds[e.type] = true
            assert.is_number(e.at)
        end
        assert.same({ request = true, error = true }, kinds)
        local run = support.start("logs --follow", "LUAPAY_CONFIG=/nonexistent", STATE)
        assert.is_true(util.wait_for(function() return run.out():find("424242", 1, true) ~= nil end, 10))
        assert(http:request{ method = "GET", url = sb_url .. "/trustly/orders/515151" })
        assert.is_true(util.wait_for(function() return run.out():find("GET /trustly/orders/515151  404", 1, true) ~= nil end,
            10), run.out())
        os.execute("kill -INT " .. run.pid)
        assert.equal(130, run.wait())
    end)
end)
