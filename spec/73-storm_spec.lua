-- The test that proves the inbox (issue 17): real parts only. A
-- redis-server; two nginx boxes running examples/nginx/inbox.conf behind a
-- third nginx as round-robin load balancer; notification storms of all five
-- providers (every notification repeated and shuffled, some delivered to
-- both boxes at once, each resent like a provider does until it is answered
-- "received"); a consumer killed with SIGKILL in the middle and started
-- again; one box restarted in the middle. Afterwards every notification is
-- recorded exactly once, every event handled (the handler counts by event
-- identity), no payment's status went back, and the consumers' TrustPay
-- calls fetched one OAuth token.
local cjson = require "cjson"
local sandbox = require "luapay.sandbox"
local inbox = require "luapay.inbox"
local notices = require "support.notices"
local redis_server = require "support.redis"
local inbox_box = require "support.inbox_box"
local trustpay_env = require "support.trustpay_env"
local util = require "support.util"

local PAYMENTS = tonumber(os.getenv("LUAPAY_STORM_PAYMENTS") or "") or 24 -- per provider
local CLEAN = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function shuffle(list)
    for i = #list, 2, -1 do
        local j = math.random(i)
        list[i], list[j] = list[j], list[i]
    end
    return list
end

describe("the storm (issue 17's test)", function()
    local srv, tp, a, b, lb, base_a, base_b, port_a, dir, settings
    local consumers = {}

    local function spawn_consumer(name, hold)
        local cmd = ("%s LUAPAY_BUILD=build/lua5.4 TRUSTPAY_URL=%s/trustpay lua5.4 spec/support/inbox_consumer.lua %d storm %s %s"
            .. " >%s/%s.out 2>&1 & echo $!"):format(CLEAN, tp.sb.url, srv.port, name, hold, dir, name)
        local pid = io.popen(cmd):read("*l")
        consumers[#consumers + 1] = pid
        return pid
    end

    setup(function()
        math.randomseed(os.time())
        srv = assert(redis_server.start())
        dir = srv.dir
        settings = dir .. "/settings.lua"
        inbox_box.settings(settings, srv.port)
        tp = trustpay_env.start{ trustpay = { token_ttl = 3600 } }
        a, base_a = inbox_box.start(settings)
        b, base_b = inbox_box.start(settings)
        port_a = tonumber(base_a:match(":(%d+)$"))
        local lb_port
        for _ = 1, 5 do
            lb_port = sandbox.random_port()
            lb = sandbox.start{ http_config = ([[
  upstream inbox_boxes { server 127.0.0.1:%d max_fails=0; server %s max_fails=0; keepalive 16; }
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://inbox_boxes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
    }
  }]]):format(port_a, base_b:gsub("^http://", ""), lb_port) }
            if lb then break end
        end
        assert(lb, "the load balancer did not start")
        lb.base = "http://127.0.0.1:" .. lb_port
    end)

    teardown(function()
        for _, pid in ipairs(consumers) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
        if lb then -- the LB logs box A's refused connections while it is down, and nothing else
            local others = {}
            for _, line in ipairs(lb:errors()) do
                if not line:find("(111: Connection refused) while connecting to upstream", 1, true) then others[#others + 1] = line end
            end
            assert.is_true(lb:stop())
            assert.same({}, others)
        end
        if a then a:stop() end -- its restart may log the refused connections of the LB's peers
        if b then util.stop_sandbox(b) end
        if tp then tp:stop() end
        srv:stop()
    end)

    -- Sends deliveries {n, name, notice, base} in parallel with curl (16 at
    -- once); returns the indexes answered 200 (what "received" is for all five).
    local function send(list)
        local lines = {}
        for i, d in ipairs(list) do
            local url = inbox_box.url(d.base, d.name)
            local args
            if d.notice.method == "GET" then
                args = ("-X GET '%s?%s'"):format(url, d.notice.raw)
            else
                util.write(("%s/b%d"):format(dir, i), d.notice.raw)
                local h = {}
                for k, v in pairs(d.notice.headers) do h[#h + 1] = k .. ": " .. v end
                util.write(("%s/h%d"):format(dir, i), table.concat(h, "\n") .. "\n")
                args = ("-X POST --data-binary @%s/b%d -H @%s/h%d '%s'"):format(dir, i, dir, i, url)
            end
            lines[#lines + 1] = ("curl -s -m 10 -o /dev/null -w '%d %%{http_code}\\n' %s"):format(i, args)
        end
        util.write(dir .. "/send.sh", table.concat(lines, "\n") .. "\n")
        local out = io.popen(CLEAN .. "xargs -P 16 -d '\\n' -I{} sh -c {} < " .. dir .. "/send.sh"):read("*a")
        local ok = {}
        for i, code in out:gmatch("(%d+) (%d+)") do
            if code == "200" then ok[tonumber(i)] = true end
        end
        return ok
    end

    it("every notification recorded exactly once, every event handled, no status regression, one token fetch", function()
        -- the storm: per payment pending, succeeded and a late pending; each delivered 2 or 3 times
        local all, expected = {}, {}
        for _, name in ipairs(notices.NAMES) do
            local client = notices.client(name)
            for n = 1, PAYMENTS do
                for _, stage in ipairs{ "pending", "succeeded", "late" } do
                    local notice = notices.make(name, 500 + n, stage)
                    local event = assert(client:notification(notice.raw, notice.headers))
                    local identity = name .. ":" .. inbox.IDENTITY[name](event)
                    expected[identity] = event.provider_ref
                    for _ = 1, 2 + math.random(0, 1) do
                        all[#all + 1] = { name = name, notice = notice, base = lb.base, identity = identity }
                    end
                    if math.random(4) == 1 then -- at both boxes at the same moment
                        all[#all + 1] = { name = name, notice = notice, base = base_a, identity = identity }
                        all[#all + 1] = { name = name, notice = notice, base = base_b, identity = identity }
                    end
                end
            end
        end
        shuffle(all)
        local distinct = 0
        for _ in pairs(expected) do distinct = distinct + 1 end

        local received = {}
        local function storm(list)
            local ok = send(list)
            for i, d in ipairs(list) do if ok[i] then received[d.identity] = true end end
        end

        -- a slow one (5 events a second): busy with a batch when it is killed.
        -- (At 50 a second it sometimes kept up with the storm and was idle.)
        spawn_consumer("c1", 0.2)
        local third = math.floor(#all / 3)
        storm({ table.unpack(all, 1, third) })
        -- the consumer is killed in the middle of its work: frozen (SIGSTOP)
        -- once it holds an event, so that it cannot acknowledge it between
        -- the count and the kill; let go again if it was between two.
        local orphaned = 0
        for _ = 1, 50 do
            util.wait_for(function() return srv:cli("XPENDING", "luapay:inbox", "storm"):match("^[1-9]") end)
            os.execute("kill -STOP " .. consumers[1])
            orphaned = tonumber(srv:cli("XPENDING", "luapay:inbox", "storm"):match("^(%d+)") or "0")
            if orphaned > 0 then break end
            os.execute("kill -CONT " .. consumers[1])
        end
        os.execute("kill -KILL " .. consumers[1])
        -- box A goes down; the LB sends everything to B meanwhile
        a:stop()
        storm({ table.unpack(all, third + 1, 2 * third) })
        a, base_a = inbox_box.start(settings, port_a)
        spawn_consumer("c2", 0)
        storm({ table.unpack(all, 2 * third + 1) })
        -- like a provider: what was not answered "received" comes again
        for _ = 1, 5 do
            local again = {}
            for identity in pairs(expected) do
                if not received[identity] then
                    for _, d in ipairs(all) do
                        if d.identity == identity then again[#again + 1] = { name = d.name, notice = d.notice,
                                                                              base = lb.base, identity = identity } break end
                    end
                end
            end
            if #again == 0 then break end
            storm(again)
        end
        for identity in pairs(expected) do assert.truthy(received[identity], identity .. " never answered received") end

        -- recorded exactly once: one stream entry per distinct notification
        assert.equal(tostring(distinct), srv:cli("XLEN", "luapay:inbox"))
        local ids = {}
        for identity in srv:cli("XRANGE", "luapay:inbox", "-", "+"):gmatch("\nidentity\n([^\n]+)") do
            assert.is_nil(ids[identity], "recorded twice: " .. identity)
            ids[identity] = true
        end
        for identity in pairs(expected) do assert.truthy(ids[identity], "not recorded: " .. identity) end

        -- every event handled, each once (the handler counts per identity)
        local done = util.wait_for(function()
            return srv:cli("HLEN", "luapay:handled:storm") == tostring(distinct)
                and srv:cli("XPENDING", "luapay:inbox", "storm"):match("^0")
        end, 60)
        assert.truthy(done, "handled " .. srv:cli("HLEN", "luapay:handled:storm") .. " of " .. distinct)
        for count in srv:cli("HVALS", "luapay:handled:storm"):gmatch("%d+") do assert.equal("1", count) end

        -- no status regression: every payment ends succeeded, its late pending in the history only
        local box = inbox.new{ store = require("luapay.store").redis{ port = srv.port }, clients = {} }
        for _, name in ipairs(notices.NAMES) do
            for n = 1, PAYMENTS do
                local notice = notices.make(name, 500 + n, "succeeded")
                local event = assert(notices.client(name):notification(notice.raw, notice.headers))
                local payment = assert(box:payment(name, event.provider_ref))
                assert.equal("succeeded", payment.status, name .. " " .. event.provider_ref .. " " .. cjson.encode(payment))
                for _, h in ipairs(payment.history) do
                    if h.status == "pending" and h.id > payment.id then assert.is_false(h.moved) end
                end
            end
        end

        -- the consumers' TrustPay calls (two processes, one killed) shared one OAuth token
        assert.equal(1, cjson.decode(tp:get("/trustpay/_sandbox/stats").body).tokens_issued)
        -- the killed consumer had taken events it never acknowledged: they were claimed and handled
        assert.is_true(orphaned > 0, "the consumer was idle when killed")
        local twice = 0
        for count in srv:cli("HVALS", "luapay:attempts:storm"):gmatch("%d+") do
            if count ~= "1" then twice = twice + 1 end
        end
        print(("\n    storm: %d deliveries of %d notifications; %d events left by the killed consumer claimed,"
            .. " %d of them begun twice"):format(#all, distinct, orphaned, twice))
    end)
end)
