--- One box's process for the shared-token spec (run as a script):
--   lua5.4 spec/support/token_worker.lua REDIS_PORT TRUSTPAY_URL CALLS
-- Makes CALLS API Banking calls (client:accounts) with the OAuth token
-- shared through Redis; prints "ok" or the first error.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("LUAPAY_BUILD") or "build/lua5.4") .. "/?.so;" .. package.cpath
local trustpay = require "luapay.trustpay"
local fake = require "luapay.sandbox.trustpay"
local store = require "luapay.store"

local port, url, calls = tonumber(arg[1]), arg[2], tonumber(arg[3])
local client = trustpay.new{
    account_id = fake.DEFAULTS.account_id, secret = fake.DEFAULTS.secret, base_url = url, timeout_ms = 10000,
    banking = { username = fake.DEFAULTS.banking.username, password = fake.DEFAULTS.banking.password, base_url = url },
    store = store.redis{ port = port },
}
for _ = 1, calls do
    local list, err = client:accounts()
    if not list then print(tostring(err)) os.exit(1) end
end
print("ok")
