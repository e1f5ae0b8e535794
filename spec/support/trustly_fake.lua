--- What specs 32 and 34 ask of the Trustly fake and of the test shop
-- (spec/support/trustly_merchant.lua) over HTTP, with the spec's client.
local cjson = require "cjson"
local util = require "support.util"

local fake = {}

--- The merchant's credentials the test shop and the specs' clients share.
fake.USER, fake.PASS = "merchant_username", "merchant_password"
fake.MERCHANT_PRIVATE = util.fixture("keys/merchant_private.pem")
fake.PROVIDER_PUBLIC = util.fixture("keys/provider_public.pem")

--- fake.start() -> a sandbox with the Trustly fake at /trustly/ and the test
-- shop at /shop/, configured with the credentials above.
function fake.start()
    local sandbox = require "luapay.sandbox"
    return assert(sandbox.start{
        routes = { ["/trustly/"] = "luapay.sandbox.trustly", ["/shop/"] = "support.trustly_merchant" },
        lua_path = "spec/?.lua",
        config = { shop = { username = fake.USER, password = fake.PASS, private_key = fake.MERCHANT_PRIVATE,
                            trustly_public_key = fake.PROVIDER_PUBLIC } },
    })
end

--- fake.get_json(web, base_url, path [, method]) -> the decoded body, status
function fake.get_json(web, base_url, path, method)
    local res = assert(web:request{ method = method or "GET", url = base_url .. path })
    return cjson.decode(res.body), res.status
end

--- fake.delivered(web, base_url, orderid) -> the fake's view of an order
-- once every notification on it has been delivered (asserts it was).
function fake.delivered(web, base_url, orderid)
    local check = require "luassert" -- a module does not see busted's spec environment
    local order
    util.wait_for(function()
        order = fake.get_json(web, base_url, "/trustly/orders/" .. orderid)
        return order.done
    end)
    check.is_true(order.done, "notifications still under way")
    return order
end

return fake
