--- A consumer process for the inbox specs (run as a script):
--   lua5.4 spec/support/inbox_consumer.lua PORT GROUP NAME HOLD_SECONDS [STREAM]
-- Handles events of the inbox on the Redis server at PORT in GROUP as
-- consumer NAME until killed. Its handler counts every call by identity
-- (attempts:<group>, the hash) and does the shop's work once per identity
-- (handled:<group>, one script: a repeat shows in attempts, never twice in
-- handled). HOLD_SECONDS: the handler waits that long first (to be killed
-- in the middle of handling). With TRUSTPAY_URL in the environment, a
-- TrustPay event also makes an API Banking call there (client:accounts) with
-- the OAuth token shared through the store.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("LUAPAY_BUILD") or "build/lua5.4") .. "/?.so;" .. package.cpath
local core = require "luapay.core"
local store = require "luapay.store"

local port, group, name, hold = tonumber(arg[1]), arg[2], arg[3], tonumber(arg[4] or "0")
local s = store.redis{ port = port, timeout_ms = 5000 }
local box = require("luapay.inbox").new{ store = s, clients = {}, stream = arg[5] }

local ONCE = [[
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
return 1
]]

local trustpay_url = os.getenv("TRUSTPAY_URL")
local trustpay
if trustpay_url then
    local fake = require "luapay.sandbox.trustpay"
    trustpay = require("luapay.trustpay").new{
        account_id = fake.DEFAULTS.account_id, secret = fake.DEFAULTS.secret, base_url = trustpay_url, timeout_ms = 10000,
        banking = { username = fake.DEFAULTS.banking.username, password = fake.DEFAULTS.banking.password, base_url = trustpay_url },
        store = s,
    }
end

local function handler(event, ctx)
    if hold > 0 then core.sleep(hold) end
    if trustpay and event.provider == "trustpay" then assert(trustpay:accounts()) end
    local ok, err = s:eval(ONCE, { "attempts:" .. group, "done:" .. group, "handled:" .. group },
        { ctx.identity .. "|" .. tostring(event.status) })
    if not ok then error(tostring(err)) end
    return true
end

while true do
    local _, err = box:consume{ group = group, consumer = name, handler = handler, block_ms = 200,
                                claim_after_ms = 500, count = 20, once = true }
    if err then core.sleep(0.1) end
end
