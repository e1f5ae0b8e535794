--- What specs 32 and 34 ask of the Trustly fake and of the test shop
-- (spec/support/trustly_merchant.lua) over HTTP, with the spec's client.
local cjson = require "cjson"
local util = require "support.util"

local fake = {}

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
