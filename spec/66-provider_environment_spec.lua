-- The environment, the same for all five providers: environment = "test"
-- (the default) or "live"; live picks the provider's production endpoint
-- (and Trustly's published key), requires https and refuses verify = false.
-- The spellings from before the contract still work until 0.3 (live =
-- true; Trustly North America's "sandbox" and "production"), and an old and
-- a new form that disagree raise.
local keys = require "luapay.sandbox.test_keys"
local trustly_keys = require "luapay.trustly.keys"

-- Per provider: the smallest valid options, the URL option it calls, and
-- the endpoint each environment gives when no URL is passed.
local PROVIDERS = {
    { name = "ecommpay", base = { project_id = 1, secret = "s3cret" }, url = "base_url",
      endpoint = { test = "https://api.ecommpay.com", live = "https://api.ecommpay.com" } },
    { name = "trustly", base = { username = "u", password = "p", private_key = keys.merchant_private }, url = "base_url",
      endpoint = { test = "https://test.trustly.com/api/1", live = "https://api.trustly.com/1" }, field = "url" },
    { name = "trustpay", base = { account_id = "4107111111", secret = "s3cret" }, url = "base_url",
      endpoint = { test = "https://amapi.trustpay.eu", live = "https://amapi.trustpay.eu" } },
    { name = "begateway", base = { psp_id = 1, secret = "s3cret", dwh_url = "https://dwh.example.com" }, url = "dwh_url",
      endpoint = { test = "https://dwh.example.com", live = "https://dwh.example.com" } },
    { name = "trustly_na", base = { access_id = "id", access_key = "s3cret" }, url = "base_url",
      endpoint = { test = "https://sandbox.trustly.one/api/v1", live = "https://api.trustly.one/api/v1" } },
}

local function with(t, extra)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    for k, v in pairs(extra) do c[k] = v end
    return c
end

local function raised(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return tostring(err)
end

for _, p in ipairs(PROVIDERS) do
    local mod = require("luapay." .. p.name)
    local new = p.name .. ".new"

    describe("environment: " .. p.name, function()
        it("is test by default, live on request, and picks that environment's endpoint", function()
            for _, env in ipairs({ "test", "live" }) do
                local c = mod.new(with(p.base, env == "live" and { environment = "live" } or {}))
                assert.equal(env, c.environment)
                assert.equal(p.endpoint[env], c[p.field or p.url])
                assert.matches("(" .. env .. ",", tostring(c), 1, true)
                c:close()
            end
        end)

        it("refuses anything but test or live", function()
            local err = raised(mod.new, with(p.base, { environment = "prod" }))
            assert.matches(new .. ": option 'environment' must be \"test\" or \"live\"", err, 1, true)
        end)

        it("refuses, in live, a plain-http URL and verify = false, even on loopback", function()
            local err = raised(mod.new, with(p.base, { environment = "live", [p.url] = "http://127.0.0.1:1/x" }))
            assert.matches(new .. ": option '" .. p.url .. "' must be an https URL in the live environment", err, 1, true)
            err = raised(mod.new, with(p.base, { environment = "live", [p.url] = "https://127.0.0.1:1/x", verify = false }))
            assert.matches(new .. ": option 'verify' cannot be false in the live environment", err, 1, true)
            -- in test, the sandbox on loopback may do without both
            mod.new(with(p.base, { [p.url] = "http://127.0.0.1:1/x", verify = false })):close()
        end)
    end)
end

describe("environment: Trustly's published key", function()
    it("is the one of the environment", function()
        local trustly = require "luapay.trustly"
        local base = { username = "u", password = "p", private_key = keys.merchant_private }
        for _, env in ipairs({ "test", "live" }) do
            local c = trustly.new(with(base, { environment = env }))
            assert.equal(trustly.load_key(trustly_keys[env]), c.trustly_public_key)
        end
    end)
end)

describe("environment: the spellings before 0.2 (deprecated until 0.3)", function()
    for _, name in ipairs({ "ecommpay", "trustpay" }) do
        it(name .. ": live = true is environment = \"live\"", function()
            local mod = require("luapay." .. name)
            local base = PROVIDERS[name == "ecommpay" and 1 or 3].base
            assert.equal("live", mod.new(with(base, { live = true })).environment)
            assert.equal("test", mod.new(with(base, { live = false })).environment)
            assert.equal("live", mod.new(with(base, { live = true, environment = "live" })).environment)
            local err = raised(mod.new, with(base, { live = true, environment = "test" }))
            assert.matches(name .. ".new: option 'live' disagrees with environment = \"test\"", err, 1, true)
            err = raised(mod.new, with(base, { live = false, environment = "live" }))
            assert.matches(name .. ".new: option 'live' disagrees with environment = \"live\"", err, 1, true)
            err = raised(mod.new, with(base, { live = "yes" }))
            assert.matches(name .. ".new: option 'live' must be a boolean", err, 1, true)
            -- live = true has live's checks
            err = raised(mod.new, with(base, { live = true, base_url = "http://api.example.com" }))
            assert.matches("must be an https URL in the live environment", err, 1, true)
        end)
    end

    it("trustly_na: \"sandbox\" and \"production\" are test and live", function()
        local trustly_na = require "luapay.trustly_na"
        local base = PROVIDERS[5].base
        local c = trustly_na.new(with(base, { environment = "production" }))
        assert.equal("live", c.environment)
        assert.equal("https://api.trustly.one/api/v1", c.base_url)
        c = trustly_na.new(with(base, { environment = "sandbox" }))
        assert.equal("test", c.environment)
        assert.equal("https://sandbox.trustly.one/api/v1", c.base_url)
        assert.equal(trustly_na.BASE_URLS.live, trustly_na.BASE_URLS.production)
    end)

    it("a provider that had no such spelling does not take it", function()
        for _, i in ipairs({ 2, 4, 5 }) do
            local p = PROVIDERS[i]
            local err = raised(require("luapay." .. p.name).new, with(p.base, { live = true }))
            assert.matches(p.name .. ".new: unknown option 'live'", err, 1, true)
        end
        local err = raised(require("luapay.trustly").new, with(PROVIDERS[2].base, { environment = "production" }))
        assert.matches("trustly.new: option 'environment' must be \"test\" or \"live\"", err, 1, true)
    end)
end)

describe("ecommpay.Client", function()
    it("is the client's class; ecommpay.Gate is its deprecated name", function()
        local ecommpay = require "luapay.ecommpay"
        local c = ecommpay.new(PROVIDERS[1].base)
        assert.equal(ecommpay.Client, getmetatable(c))
        assert.equal(ecommpay.Client, ecommpay.Gate)
        assert.equal("luapay.ecommpay client (test, project 1, https://api.ecommpay.com)", tostring(c))
    end)
end)
