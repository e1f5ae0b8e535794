-- The provider contract, the same for all five providers: the constructor
-- raises on an unknown option (naming it and the function) and accepts
-- every option it lists; a client closes once, idempotently, as
-- client:close() and as Lua 5.4's `<close>`, and a closed client's methods
-- raise naming themselves.
local core = require "luapay.core"
local http = require "luapay.http"
local provider = require "luapay.provider"
local keys = require "luapay.sandbox.test_keys"

local function transport() return core.http_client{} end

-- Every transport option (provider.TRANSPORT_OPTIONS) but the two that
-- bring their own: the options luapay builds a transport and pipeline from.
local BUILD = {
    timeout_ms = 1000, connect_timeout_ms = 500, deadline_ms = 2000, retries = 0, verify = true,
    ca_file = "/etc/ssl/certs/ca-certificates.crt", proxy = "http://127.0.0.1:3128", user_agent = "spec",
    pool_size = 2, keepalive_ms = 5000, max_head_bytes = 4096, max_body_bytes = 65536,
    sleep = function() end, clock = function() return 0 end, random = math.random,
}

-- Per provider: the smallest valid options, every option of its own with a
-- usable value, a misspelling of a real option, and a method to call.
local PROVIDERS = {
    {
        name = "ecommpay",
        base = { project_id = 1, secret = "s3cret-ecommpay" },
        own = {
            project_id = 1, secret = "s3cret-ecommpay", base_url = "https://api.example.com",
            payment_page_base = "https://pp.example.com", callback_url = "https://shop.example.com/cb",
            environment = "test", live = false,
        },
        typo = "project_Id",
        method = "status",
    },
    {
        name = "trustly",
        base = { username = "u", password = "p", private_key = keys.merchant_private },
        own = {
            username = "u", password = "p", private_key = keys.merchant_private, private_key_passphrase = "unused",
            environment = "test", trustly_public_key = keys.provider_public, base_url = "https://t.example.com/api",
            store = require("luapay.trustly").memory_store(),
        },
        typo = "enviroment",
        method = "deposit",
    },
    {
        name = "trustpay",
        base = { account_id = "4107111111", secret = "s3cret-trustpay" },
        own = {
            account_id = "4107111111", secret = "s3cret-trustpay", base_url = "https://tp.example.com",
            banking = { username = "bu", password = "bp", base_url = "https://ab.example.com" },
            environment = "test", live = false,
        },
        typo = "acount_id",
        method = "notification",
    },
    {
        name = "begateway",
        base = { psp_id = 1, secret = "s3cret-begateway", dwh_url = "https://dwh.example.com" },
        own = {
            psp_id = 1, secret = "s3cret-begateway", dwh_url = "https://dwh.example.com", shop_id = 2,
            shop_key = "s3cret-shop", public_key = keys.provider_public, accept_test = true, environment = "test",
        },
        typo = "dwh_uri",
        method = "export",
    },
    {
        name = "trustly_na",
        base = { access_id = "id", access_key = "s3cret-na" },
        own = {
            access_id = "id", access_key = "s3cret-na", environment = "test", base_url = "https://na.example.com",
        },
        typo = "enviroment",
        method = "payments",
    },
}

local function with(t, k, v)
    local c = {}
    for key, x in pairs(t) do c[key] = x end
    c[k] = v
    return c
end

-- The error a call raises, as text.
local function raised(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return tostring(err)
end

for _, p in ipairs(PROVIDERS) do
    local mod = require("luapay." .. p.name)
    local new = p.name .. ".new"

    describe("provider contract: " .. p.name, function()
        it("lists its own options and the one set of transport options, and accepts every one of them", function()
            local listed, expected = {}, {}
            for _, name in ipairs(mod.OPTIONS) do listed[name] = true end
            for name in pairs(p.own) do expected[name] = true end
            for _, name in ipairs(provider.TRANSPORT_OPTIONS) do expected[name] = true end
            assert.same(expected, listed)
            local all = {}
            for k, v in pairs(p.own) do all[k] = v end
            for k, v in pairs(BUILD) do all[k] = v end
            local c = mod.new(all)
            assert.equal("test", c.environment)
            c:close()
            c = mod.new(with(with(p.base, "transport", transport()), "timeout_ms", 1000))
            c:close()
            c = mod.new(with(p.base, "http", http.new{ transport = transport() }))
            c:close()
        end)

        it("raises on a ready pipeline (http) given with another transport option, naming it", function()
            for name, value in pairs(BUILD) do
                local opts = with(with(p.base, "http", http.new{ transport = transport() }), name, value)
                local err = raised(mod.new, opts)
                assert.matches(new .. ": option '" .. name .. "' cannot be given with 'http'", err, 1, true)
            end
            local err = raised(mod.new, with(p.base, "http", {}))
            assert.matches(new .. ": option 'http' must be a luapay.http pipeline", err, 1, true)
        end)

        it("raises on an unknown option, naming it and the function", function()
            local err = raised(mod.new, with(p.base, "no_such_option", 1))
            assert.matches(new .. ": unknown option 'no_such_option'", err, 1, true)
        end)

        it("raises on a misspelt option (" .. p.typo .. ")", function()
            local err = raised(mod.new, with(p.base, p.typo, "live"))
            assert.matches(new .. ": unknown option '" .. p.typo .. "'", err, 1, true)
            -- the secret never shows in the message
            assert.not_matches("s3cret", err, 1, true)
        end)

        it("close releases the transport it built and may be called twice", function()
            local c = mod.new(p.base)
            local t = c.http.transport
            c:close()
            c:close()
            assert.matches("(closed)", tostring(t), 1, true)
        end)

        it("close leaves a transport passed in open", function()
            local t = transport()
            local c = mod.new(with(p.base, "transport", t))
            c:close()
            assert.not_matches("(closed)", tostring(t), 1, true)
            t:close()
        end)

        it("collecting a client leaves its transport to whatever still uses it (an iterator)", function()
            local pipeline = mod.new(p.base).http
            collectgarbage()
            collectgarbage()
            assert.not_matches("(closed)", tostring(pipeline.transport), 1, true)
            pipeline:close()
        end)

        it("raises on use after close, naming the method", function()
            local c = mod.new(p.base)
            c:close()
            local err = raised(c[p.method], c, {})
            assert.matches(p.name .. ".Client:" .. p.method .. ": called after client:close()", err, 1, true)
        end)

        -- `<close>` is Lua 5.4 syntax: LuaJIT cannot even parse it, so the
        -- chunk is compiled only there and this test alone is skipped.
        local it54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and it or pending
        it54("works as a to-be-closed variable (Lua 5.4 <close>)", function()
            local chunk = assert(load([[
                local new, opts = ...
                local t
                do
                    local c <close> = new(opts)
                    t = c.http.transport
                end
                return t
            ]]))
            local t = chunk(mod.new, p.base)
            assert.matches("(closed)", tostring(t), 1, true)
        end)
    end)
end

describe("provider contract: trustpay's banking table", function()
    local trustpay = require "luapay.trustpay"
    it("raises on an unknown banking option, naming it and the function", function()
        local err = raised(trustpay.new, { account_id = "4107111111", secret = "s3cret-trustpay",
            banking = { username = "bu", password = "s3cret-bp", pasword = "x" } })
        assert.matches("trustpay.new: unknown option 'banking.pasword'", err, 1, true)
        assert.not_matches("s3cret", err, 1, true)
    end)
end)
