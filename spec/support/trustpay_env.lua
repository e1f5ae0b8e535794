--- The TrustPay specs' world: a sandbox with the TrustPay fake at
-- /trustpay/ and the merchant's notification recorder at /shop/, a client
-- configured against it, and the customer's browser.
local core = require "luapay.core"
local http = require "luapay.http"
local sandbox = require "luapay.sandbox"
local trustpay = require "luapay.trustpay"
local fake = require "luapay.sandbox.trustpay"

local env = {}
env.ACCOUNT = fake.DEFAULTS.account_id
env.SECRET = fake.DEFAULTS.secret
env.BANKING = fake.DEFAULTS.banking

function env.start(config)
    local sb = assert(sandbox.start{
        routes = { ["/trustpay/"] = "luapay.sandbox.trustpay", ["/shop/"] = "support.trustpay_merchant" },
        config = config, lua_path = "spec/?.lua",
    })
    local self = setmetatable({ sb = sb, browser = core.http_client{ timeout_ms = 10000 } }, { __index = env })
    return self
end

--- Stops the world; the sandbox must stop cleanly with no errors logged.
function env:stop()
    self.browser:close()
    require("support.util").stop_sandbox(self.sb)
end

--- A client of the fake. opts override the defaults.
function env:client(opts)
    local o = {
        account_id = env.ACCOUNT, secret = env.SECRET, base_url = self.sb.url .. "/trustpay",
        banking = { username = env.BANKING.username, password = env.BANKING.password, base_url = self.sb.url .. "/trustpay" },
        timeout_ms = 10000,
    }
    for k, v in pairs(opts or {}) do o[k] = v end
    return trustpay.new(o)
end

--- A fresh box for the merchant's notifications: its URL and its name.
function env:box()
    local name = core.hex_encode(core.random_bytes(6))
    return self.sb.url .. "/shop/notify/" .. name, name
end

function env:get(path)
    return assert(self.browser:request{ url = self.sb.url .. path })
end

function env:post(path)
    return assert(self.browser:request{ method = "POST", url = self.sb.url .. path, body = "" })
end

--- The customer opens the pop-up URL: the fake's payment id, or nil and the result code.
function env:open(url)
    local res = assert(self.browser:request{ url = url })
    if res.status ~= 200 then return nil, tonumber(res.headers["x-sandbox-result-code"]), res end
    return res.headers["x-sandbox-payment-id"]
end

--- The customer pays payment `id` (query: card=..., outcome=cancel).
function env:pay(id, query)
    local res = self:post("/trustpay/_sandbox/pay?id=" .. id .. (query and ("&" .. query) or ""))
    assert(res.status == 200, res.body)
    return assert(http.decode_json(res.body))
end

--- Waits until the box holds n notifications (at most 10 s), returns their query strings.
function env:received(box, n)
    local list
    for _ = 1, 1000 do
        list = assert(http.decode_json(self:get("/shop/received/" .. box).body))
        if #list >= n then return list end
        core.sleep(0.01)
    end
    error(("only %d of %d notifications arrived in box %s"):format(#list, n, box))
end

function env:json(path)
    return assert(http.decode_json(self:get(path).body))
end

function env:stats()
    return self:json("/trustpay/_sandbox/stats")
end

--- The customer's billing details (the 2020 SCA fields).
function env.sca(t)
    local s = {
        CardHolder = "Eva Černá", BillingStreet = "Náměstí Svobody 1", BillingCity = "Brno",
        BillingPostcode = "602 00", BillingCountry = "CZ", Email = "eva@example.cz",
    }
    for k, v in pairs(t or {}) do s[k] = v end
    return s
end

function env.reference(prefix)
    return prefix .. "-" .. core.hex_encode(core.random_bytes(4))
end

return env
