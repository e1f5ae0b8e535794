-- TLS verification can be switched off only against a loopback host (the
-- sandbox): Trustly, Trustly North America and beGateway refuse verify =
-- false at construction for any other host, their default endpoints
-- included, and the message never shows credentials from the URL.
local begateway = require "luapay.begateway"
local trustly = require "luapay.trustly"
local trustly_na = require "luapay.trustly_na"
local util = require "support.util"

local MERCHANT_PRIVATE = util.fixture("keys/merchant_private.pem")

local PROVIDERS = {
    { "Trustly", "trustly.new", function(url, verify)
        return trustly.new{ username = "u", password = "p", private_key = MERCHANT_PRIVATE, base_url = url, verify = verify }
    end },
    { "Trustly North America", "trustly_na.new", function(url, verify)
        return trustly_na.new{ access_id = "a", access_key = "k", base_url = url, verify = verify }
    end },
    { "beGateway", "begateway.new", function(url, verify)
        return begateway.new{ psp_id = 1, secret = "s", dwh_url = url or "https://dwh.begateway.com", verify = verify }
    end },
}

local REFUSED = {
    "https://test.trustly.com/api/1", "https://api.trustly.one/api/v1", "https://10.0.0.1/x",
    "https://127.0.0.1.nip.io/x", "https://localhost.example.com/x", "https://[::2]:8443/x",
    "https://user:Pa55-in-url@evil.example/x", "https://127.0.0.1@evil.example/x",
}
local ALLOWED = {
    "https://127.0.0.1:8443/x", "http://127.0.0.1:1/api/1", "https://127.1.2.3/x", "http://localhost:1/x",
    "https://LOCALHOST/x", "https://[::1]:1/x",
}

for _, p in ipairs(PROVIDERS) do
    local name, prefix, new = p[1], p[2], p[3]
    describe(name .. " with verify = false", function()
        it("is refused at construction for its default endpoint", function()
            assert.error_matches(function() new(nil, false) end, prefix .. ": verify = false is allowed only for a loopback URL", nil, true)
            assert.is_table(new(nil, nil))
            assert.is_table(new(nil, true))
        end)

        it("is refused for every host that is not loopback, showing no credentials", function()
            for _, url in ipairs(REFUSED) do
                local ok, err = pcall(new, url, false)
                assert.is_false(ok, url)
                assert.matches("verify = false is allowed only for a loopback URL", err, 1, true)
                assert.not_matches("Pa55", err)
                assert.is_table(new(url, true))
            end
        end)

        it("is allowed against loopback hosts (the sandbox)", function()
            for _, url in ipairs(ALLOWED) do
                assert.is_table(new(url, false), url)
            end
        end)
    end)
end
