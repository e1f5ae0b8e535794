-- examples/nginx/trustly.conf, the server block a merchant adds to nginx to
-- receive Trustly notifications, running as written (only the listen port
-- and the key files are set for the test) next to the sandbox's Trustly
-- fake, which sends it signed notifications and checks its signed answers.
local cjson = require "cjson"
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local trustly = require "luapay.trustly"
local util = require "support.util"

local function cwd()
    return os.getenv("PWD") or io.popen("pwd"):read("*l")
end

local function literal(s) return (s:gsub("%p", "%%%0")) end

describe("examples/nginx/trustly.conf", function()
    local sb, web, client, shop_url, notify_url

    setup(function()
        local conf = util.read("examples/nginx/trustly.conf")
        local keys = cwd() .. "/spec/fixtures/keys/"
        local function start()
            local port = sandbox.random_port() -- below the ephemeral range outgoing connections take ports from
            local block = conf
                :gsub(literal("listen 127.0.0.1:8088;"), "listen 127.0.0.1:" .. port .. ";")
                :gsub(literal('"/etc/luapay/merchant_private.pem"'), '"' .. keys .. 'merchant_private.pem"')
                -- the fake signs with the test provider key, not Trustly's
                :gsub(literal('set $trustly_public_key  "";'), 'set $trustly_public_key "' .. keys .. 'provider_public.pem";')
            assert.matches(tostring(port), block)
            assert.matches("provider_public.pem", block)
            return sandbox.start{
                routes = { ["/trustly/"] = "luapay.sandbox.trustly" },
                lua_path = "examples/nginx/?.lua",
                shared_dicts = { trustly_orders = "1m" },
                http_config = block,
            }, port
        end
        local port
        for _ = 1, 5 do -- the block's own port is picked at random: try another if taken
            sb, port = start()
            if sb then break end
        end
        assert(sb, "sandbox did not start")
        shop_url = "http://127.0.0.1:" .. port
        notify_url = shop_url .. conf:match("location = (/trustly/notifications/%w+)")
        web = core.http_client{ timeout_ms = 10000 }
        client = trustly.new{
            username = "merchant_username", password = "merchant_password",
            private_key = util.fixture("keys/merchant_private.pem"),
            trustly_public_key = util.fixture("keys/provider_public.pem"),
            base_url = sb.url .. "/trustly/api/1",
        }
    end)

    teardown(function()
        web:close()
        util.stop_sandbox(sb)
    end)

    local function get_json(url, method, body)
        local res = assert(web:request{ method = method or "GET", url = url, body = body })
        return cjson.decode(res.body), res.status
    end

    local function delivered(orderid)
        local deadline = core.monotime() + 20
        repeat
            local order = get_json(sb.url .. "/trustly/orders/" .. orderid)
            if order.done then return order end
            core.sleep(0.02)
        until core.monotime() > deadline
        error("notifications still under way")
    end

    it("receives a deposit's notifications, in any order and repeated, and answers each with a valid signature", function()
        local d = assert(client:deposit{
            NotificationURL = notify_url, EndUserID = "user-1", MessageID = "order-" .. core.hex_encode(core.random_bytes(5)),
            Attributes = { Currency = "EUR", Amount = 2999, Firstname = "Ann", Lastname = "Ek", Country = "SE",
                           Locale = "sv_SE", SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail" },
        })
        local sim, status = get_json(sb.url .. "/trustly/simulate/" .. d.orderid .. "/approve?order=credit,pending,account,credit", "POST")
        assert.equal(200, status)
        assert.same({ "credit", "pending", "account", "credit" }, sim.notifications)
        local order = delivered(d.orderid)
        assert.equal(4, #order.deliveries)
        for _, delivery in ipairs(order.deliveries) do
            assert.equal(200, delivery.http_status)
            assert.is_true(delivery.verified, delivery.error)
            assert.equal("OK", delivery.answer)
        end
        local shop = get_json(shop_url .. "/orders/" .. d.orderid)
        assert.equal("succeeded", shop.state)
        assert.equal(2999, shop.amount)
        assert.equal(3, shop.events)
        assert.equal(1, shop.duplicates)
        assert.matches("^%d+$", shop.accountid)

        -- and a refund's payout confirmation
        assert(client:refund{ OrderID = d.orderid, Amount = 999, Currency = "EUR" })
        order = delivered(d.orderid)
        assert.equal("payoutconfirmation", order.deliveries[5].method)
        assert.is_true(order.deliveries[5].verified)
        assert.equal(1, get_json(shop_url .. "/orders/" .. d.orderid).payouts)
    end)

    it("refuses a tampered notification with 400 and nothing signed", function()
        local entry = get_json(sb.url .. "/trustly/notify", "POST", cjson.encode{
            url = notify_url, method = "credit", tamper = true,
            data = { amount = "1.00", currency = "EUR", orderid = "1000000999", messageid = "m", enduserid = "e",
                     notificationid = "n-tampered", timestamp = "2024-05-01 12:00:00.000000+00" },
        })
        assert.equal(400, entry.http_status)
        assert.is_false(entry.verified)
        assert.not_matches('"signature"', entry.body)
        assert.equal(0, get_json(shop_url .. "/orders/1000000999").events)
    end)

    it("answers only POST", function()
        local res = assert(web:request{ url = notify_url })
        assert.equal(405, res.status)
    end)
end)

describe("examples/trustly_deposit.lua", function()
    it("runs from the deposit to the refund against its own sandbox", function()
        local lua, cpath = util.LUA, util.PLAIN_BUILD .. "/?.so;;"
        local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='"
            .. cpath .. "' " .. lua .. " examples/trustly_deposit.lua 2>&1; echo \"exit=$?\"")
        local out = p:read("*a")
        p:close()
        assert.matches("exit=0\n$", out)
        assert.matches("Deposit: order %d+", out)
        assert.matches("The shop's order: succeeded, 103%.00 SEK, paid from account ", out)
        assert.matches("Refund of 30%.00 SEK: result 1", out)
        assert.matches("code 615", out)
        assert.not_matches("signature INVALID", out)
    end)
end)
