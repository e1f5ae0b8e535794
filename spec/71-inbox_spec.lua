-- luapay.inbox on a real redis-server: the nginx example
-- (examples/nginx/inbox.conf) receiving all five providers, each
-- notification recorded once and answered "received" only once recorded; the
-- payment state that only moves forward; consumers with redelivery, claiming
-- from a consumer killed with SIGKILL, and the dead-letter stream.
local cjson = require "cjson"
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local store = require "luapay.store"
local inbox = require "luapay.inbox"
local notices = require "support.notices"
local redis_server = require "support.redis"
local inbox_box = require "support.inbox_box"
local util = require "support.util"

local function deliver(web, base, name, notice) return inbox_box.deliver(web, base, name, notice) end
local notify_url = inbox_box.url

describe("luapay.inbox", function()
    local srv, s, web, settings_file

    setup(function()
        srv = assert(redis_server.start())
        s = store.redis{ port = srv.port }
        web = core.http_client{ timeout_ms = 10000 }
        settings_file = srv.dir .. "/inbox_settings.lua"
        inbox_box.settings(settings_file, srv.port)
    end)

    teardown(function()
        web:close()
        s:close()
        srv:stop()
    end)

    describe("examples/nginx/inbox.conf", function()
        local sb, base
        setup(function() sb, base = inbox_box.start(settings_file) end)
        teardown(function() util.stop_sandbox(sb) end)

        for _, name in ipairs(notices.NAMES) do
            it(name .. ": recorded once, answered 'received' every time, the payment only moving forward", function()
                local client = notices.client(name)
                local n = 100 + #name
                local before = tonumber(srv:cli("XLEN", "luapay:inbox")) or 0
                local ref
                local stages = { "pending", "succeeded", "succeeded", "late", "pending" }
                for _, stage in ipairs(stages) do
                    local notice = notices.make(name, n, stage)
                    local res = deliver(web, base, name, notice)
                    local event = assert(client:notification(notice.raw, notice.headers))
                    ref = event.provider_ref
                    local yes = client:notification_response(event, true)
                    assert.equal(yes.status, res.status, res.body)
                    assert.equal(yes.body, res.body)
                end
                -- distinct notifications: pending, succeeded, and late where it has an identity of its own
                local distinct = {}
                for _, stage in ipairs(stages) do
                    local e = assert(client:notification(notices.make(name, n, stage).raw, notices.make(name, n, stage).headers))
                    distinct[inbox.IDENTITY[name](e)] = true
                end
                local count = 0
                for _ in pairs(distinct) do count = count + 1 end
                assert.equal(before + count, tonumber(srv:cli("XLEN", "luapay:inbox")))

                local res = assert(web:request{ url = base .. "/payments/" .. name .. "/" .. ref })
                local payment = cjson.decode(res.body)
                assert.equal("succeeded", payment.status)
                assert.equal(count, #payment.history)
                assert.same({ "pending", "succeeded" }, { payment.history[1].status, payment.history[2].status })
                assert.is_true(payment.history[2].moved)
                if payment.history[3] then
                    assert.equal("pending", payment.history[3].status)
                    assert.is_false(payment.history[3].moved)
                end
            end)
        end

        it("a notification that fails verification is refused and recorded nowhere", function()
            local before = srv:cli("XLEN", "luapay:inbox")
            local notice = notices.make("trustly", 9, "succeeded")
            local res = assert(web:request{ method = "POST", url = notify_url(base, "trustly"),
                                            body = notice.raw:gsub("EUR", "SEK"), headers = notice.headers })
            assert.equal(notices.client("trustly"):notification_response(nil, false).status, res.status)
            assert.equal(before, srv:cli("XLEN", "luapay:inbox"))
        end)
    end)

    it("Redis down: the provider gets the answer that makes it send again (notification_response(event, false))", function()
        local dead = store.redis{ port = sandbox.random_port(), timeout_ms = 300 }
        for _, name in ipairs(notices.NAMES) do
            local client = notices.client(name)
            local box = inbox.new{ store = dead, clients = { [name] = client } }
            local notice = notices.make(name, 7)
            local answer, event, how = box:receive(name, notice.raw, notice.headers)
            assert.equal("unrecorded", how)
            assert.same(client:notification_response(event, false), answer)
            assert.not_same(client:notification_response(event, true), answer)
        end
    end)

    describe("consumers", function()
        local function fresh_box()
            local stream = "inbox-" .. core.hex_encode(core.random_bytes(4))
            local clients = {}
            for _, name in ipairs(notices.NAMES) do clients[name] = notices.client(name) end
            return inbox.new{ store = s, clients = clients, stream = stream }, stream
        end

        local function fill(box, count)
            local base = 10000 + (core.random_bytes(2):byte(1) * 256 + core.random_bytes(1):byte(1)) * 100
            for i = 1, count do
                local name = notices.NAMES[(i - 1) % #notices.NAMES + 1]
                local notice = notices.make(name, base + i)
                local _, _, how = box:receive(name, notice.raw, notice.headers)
                assert.equal("recorded", how)
            end
        end

        it("every event handled once, in a consumer group, and acknowledged", function()
            local box, stream = fresh_box()
            fill(box, 12)
            local seen = {}
            local n = assert(box:consume{ group = "g1", once = true, count = 100, block_ms = 10, handler = function(event, ctx)
                assert.equal(1, ctx.deliveries)
                seen[#seen + 1] = event.provider .. ":" .. event.status
                return true
            end })
            assert.equal(12, n)
            assert.equal(12, #seen)
            assert.equal(0, assert(box:consume{ group = "g1", once = true, block_ms = 10, handler = function() error("again") end }))
            assert.equal("0", srv:cli("XPENDING", "luapay:" .. stream, "g1"):match("^(%d+)"))
        end)

        it("a handler that fails gets the event again after claim_after_ms, then dead-letters it after max_deliveries", function()
            local box, stream = fresh_box()
            fill(box, 2)
            local calls = {}
            local function handler(event, ctx)
                calls[#calls + 1] = ctx.deliveries
                if event.provider == "trustly" and ctx.deliveries < 2 then return false end -- fails once
                if event.provider == "ecommpay" then error("always fails") end
                return true
            end
            local opts = { group = "g2", once = true, block_ms = 10, claim_after_ms = 50, max_deliveries = 3, handler = handler }
            assert.equal(0, box:consume(opts)) -- ecommpay raises, trustly fails
            core.sleep(0.1)
            assert.equal(1, box:consume(opts)) -- trustly, second delivery
            core.sleep(0.1)
            assert.equal(0, box:consume(opts)) -- ecommpay, third delivery, fails again
            core.sleep(0.1)
            assert.equal(0, box:consume(opts)) -- three deliveries: dead letter
            assert.same({ 1, 1, 2, 2, 3 }, (function() table.sort(calls) return calls end)())
            assert.equal("1", srv:cli("XLEN", "luapay:" .. stream .. ":dead"))
            local dead = srv:cli("XRANGE", "luapay:" .. stream .. ":dead", "-", "+")
            assert.matches("ecommpay", dead)
            assert.matches("deliveries\n3", dead)
            assert.equal("0", srv:cli("XPENDING", "luapay:" .. stream, "g2"):match("^(%d+)"))
        end)

        it("events taken by a consumer killed with SIGKILL are claimed and handled by another", function()
            local box, stream = fresh_box()
            fill(box, 10)
            local env = "env -u LD_PRELOAD -u ASAN_OPTIONS LUAPAY_BUILD=build/lua5.4 "
            local function spawn(name, hold)
                local cmd = ("%s lua5.4 spec/support/inbox_consumer.lua %d g3 %s %s %s >%s/%s.out 2>&1 & echo $!"):format(
                    env, srv.port, name, hold, stream, srv.dir, name)
                return io.popen(cmd):read("*l")
            end
            -- the slow one takes a batch and is killed while handling it
            local slow = spawn("slow", 30)
            assert(util.wait_for(function()
                return tonumber(srv:cli("XPENDING", "luapay:" .. stream, "g3"):match("^(%d+)") or "0") > 0
            end, 10), "the slow consumer took nothing")
            os.execute("kill -KILL " .. slow)
            local taken = tonumber(srv:cli("XPENDING", "luapay:" .. stream, "g3"):match("^(%d+)"))
            assert.is_true(taken >= 1)
            local fast = spawn("fast", 0)
            local done = util.wait_for(function()
                return srv:cli("HLEN", "luapay:handled:g3") == "10" and srv:cli("XPENDING", "luapay:" .. stream, "g3"):match("^0")
            end, 20)
            os.execute("kill -KILL " .. fast)
            assert.truthy(done, "handled: " .. srv:cli("HLEN", "luapay:handled:g3") .. ", pending: "
                .. srv:cli("XPENDING", "luapay:" .. stream, "g3"))
            for count in srv:cli("HVALS", "luapay:handled:g3"):gmatch("%d+") do assert.equal("1", count) end
            -- the killed one's events were delivered twice, the others once
            local twice = 0
            for count in srv:cli("HVALS", "luapay:attempts:g3"):gmatch("%d+") do
                if count ~= "1" then twice = twice + 1 end
            end
            assert.is_true(twice <= taken)
        end)
    end)

    it("ecommpay: the callback announcing a recurring registration is not a repeat of the operation's callback", function()
        local client = notices.client("ecommpay")
        local plain = notices.make("ecommpay", 42)
        local body = cjson.decode(plain.raw)
        body.signature = nil
        body.recurring = { id = 987, type = "C" }
        body.signature = core.hmac("sha512", "s3cret-ecommpay-key", assert(core.ecommpay_canonical(body)), "base64")
        local first = assert(client:notification(plain.raw, plain.headers))
        local second = assert(client:notification(assert(core.json_encode(body)), plain.headers))
        assert.not_equal(inbox.IDENTITY.ecommpay(first), inbox.IDENTITY.ecommpay(second))
        assert.equal(inbox.IDENTITY.ecommpay(second), inbox.IDENTITY.ecommpay(assert(client:notification(
            assert(core.json_encode(body)), plain.headers))))
    end)

    it("misuse raises naming the function", function()
        util.assert_raises("luapay.inbox.new: option 'store' must be a luapay.store.redis (streams and consumer groups)",
            inbox.new, { store = store.memory(), clients = {} })
        local box = inbox.new{ store = s, clients = {} }
        util.assert_raises("luapay.inbox.consume: option 'group' must be a non-empty string", box.consume, box, { handler = print })
        util.assert_raises("luapay.inbox.receive: no client for provider 'paypal'", box.receive, box, "paypal", "", {})
    end)
end)
