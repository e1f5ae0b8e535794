-- A Trustly deposit from start to end, against the sandbox's Trustly fake:
-- the Deposit call, the redirect to the checkout, the notifications Trustly
-- sends to the shop (received by the nginx server block in
-- examples/nginx/trustly.conf), a refund and the balance.
--
-- From the repository root, after `make` and `make LUA=luajit`:
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/trustly_deposit.lua
local core = require "luapay.core"
local money = require "luapay.money"
local sandbox = require "luapay.sandbox"
local trustly = require "luapay.trustly"
local cjson = require "cjson"

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local function say(fmt, ...) print((fmt):format(...)) end

---------------------------------------------------------------------------
-- The stage: Trustly (the sandbox's fake) and the shop's nginx server block
---------------------------------------------------------------------------
local root = os.getenv("PWD") or "."
local shop_port = 20000 + (core.random_bytes(2):byte(1) * 256 + core.random_bytes(1):byte(1)) % 40000
local server_block = read("examples/nginx/trustly.conf")
    :gsub("listen 127%.0%.0%.1:8088;", "listen 127.0.0.1:" .. shop_port .. ";")
    :gsub('"/etc/luapay/merchant_private%.pem"', '"' .. root .. '/spec/fixtures/keys/merchant_private.pem"')
    -- the fake signs with a test key standing in for Trustly's
    :gsub('set %$trustly_public_key  "";', 'set $trustly_public_key "' .. root .. '/spec/fixtures/keys/provider_public.pem";')
local sb = assert(sandbox.start{
    routes = { ["/trustly/"] = "luapay.sandbox.trustly" },
    lua_path = "examples/nginx/?.lua",
    shared_dicts = { trustly_orders = "1m" },
    http_config = server_block,
})
local web = core.http_client{}
local shop = "http://127.0.0.1:" .. shop_port

---------------------------------------------------------------------------
-- 1. The client: credentials, the merchant's private key, the environment
---------------------------------------------------------------------------
local client = trustly.new{
    username = "merchant_username",
    password = "merchant_password",
    private_key = read("spec/fixtures/keys/merchant_private.pem"), -- signs every request
    environment = "test",                                         -- https://test.trustly.com/api/1
    -- For the sandbox only: its address and its key. Against Trustly, leave
    -- both out: luapay knows the endpoints and bundles Trustly's keys.
    base_url = sb.url .. "/trustly/api/1",
    trustly_public_key = read("spec/fixtures/keys/provider_public.pem"),
}

---------------------------------------------------------------------------
-- 2. Deposit: the customer chose Trustly at checkout
---------------------------------------------------------------------------
local deposit, err = client:deposit{
    NotificationURL = shop .. "/trustly/notifications/4f1c2b7e9a0d", -- hard to guess, no '?'
    EndUserID = "customer-4711",                                      -- stable per customer
    MessageID = "order-" .. os.time(),                                -- your order id, unique
    Attributes = {
        Amount = 10300, Currency = "SEK",  -- minor units; "103.00" works too
        Firstname = "John", Lastname = "Doe", Email = "john@example.com",
        Country = "SE", Locale = "sv_SE",
        SuccessURL = "https://shop.example/thanks", FailURL = "https://shop.example/checkout",
        ShopperStatement = "MyBrand.com",
    },
}
if not deposit then
    -- err.type: validation (err.fields lists every bad field), provider
    -- (err.code is Trustly's: 616 credentials, 637 MessageID used before,
    -- ...), signature (an answer that is not Trustly's), network, timeout ...
    error(tostring(err))
end
say("Deposit: order %s, redirect the customer to\n  %s", deposit.orderid, deposit.url)

---------------------------------------------------------------------------
-- 3. The redirect: in a shop, answer the customer's browser with
--    302 Location: deposit.url. Here the sandbox plays the customer, who
--    logs in to the bank and approves.
---------------------------------------------------------------------------
local page = assert(web:request{ url = deposit.url })
say("The checkout page answers HTTP %d", page.status)
local sim = cjson.decode(assert(web:request{ method = "POST",
    url = sb.url .. "/trustly/simulate/" .. deposit.orderid .. "/approve" }).body)
say("The customer approves; Trustly sends: %s", table.concat(sim.notifications, ", "))
say("  (any order, and one of them twice: the shop processes each notificationid once)")

---------------------------------------------------------------------------
-- 4. Notifications: the shop's nginx verifies each, records it, answers
--    with its signature (examples/nginx/trustly_notifications.lua)
---------------------------------------------------------------------------
local function trustly_side(orderid)
    for _ = 1, 500 do
        local order = cjson.decode(web:request{ url = sb.url .. "/trustly/orders/" .. orderid }.body)
        if order.done then return order end
        core.sleep(0.02)
    end
    error("notifications did not arrive")
end
for _, d in ipairs(trustly_side(deposit.orderid).deliveries) do
    say("  %-18s notificationid %s -> shop answered %s, signature %s", d.method, d.notificationid,
        tostring(d.answer), d.verified and "valid" or "INVALID")
end
-- core.json_decode keeps integers integers (lua-cjson makes 10300 a float under Lua 5.4)
local order = core.json_decode(web:request{ url = shop .. "/orders/" .. deposit.orderid }.body)
say("The shop's order: %s, %s, paid from account %s", order.state,
    money.format(order.amount, order.currency), order.accountid)

---------------------------------------------------------------------------
-- 5. A partial refund, and the balance
---------------------------------------------------------------------------
local refund = assert(client:refund{ OrderID = deposit.orderid, Amount = 3000, Currency = "SEK" })
say("Refund of %s: result %s", money.format(3000, "SEK"), refund.result)
local _, too_much = client:refund{ OrderID = deposit.orderid, Amount = 10000, Currency = "SEK" }
say("Refund of %s more: %s", money.format(10000, "SEK"), tostring(too_much))
trustly_side(deposit.orderid)
for _, b in ipairs(assert(client:balance())) do
    say("Balance: %s %s", b.balance, b.currency)
end

web:close()
assert(sb:stop())
