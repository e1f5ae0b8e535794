--- The notification inbox of examples/nginx/inbox.conf, for every box.
--
-- The settings file ($luapay_settings, or the environment variable
-- LUAPAY_INBOX_SETTINGS, which a consumer on a timer needs) returns a table:
--   return {
--       redis = { host = "10.0.0.5", port = 6379, password = "..." },
--       providers = {                      -- the options of <provider>.new
--           trustly = { username = ..., password = ..., private_key = "-----BEGIN...", trustly_public_key = ... },
--           ecommpay = { project_id = ..., secret = ... },
--           ...
--       },
--   }
-- It is read once per worker, with no access to any global.
local cjson = require "cjson.safe"
local luapay = require "luapay"
local store = require "luapay.store"

local M = {}

local box -- per worker: the inbox and its provider clients

local function settings()
    -- nginx's `env LUAPAY_INBOX_SETTINGS;` reaches timers too; $luapay_settings only requests
    local path = os.getenv("LUAPAY_INBOX_SETTINGS")
    if not path then path = ngx.var.luapay_settings end
    local f = assert(io.open(path, "rb"), "cannot read the inbox settings file")
    local text = f:read("*a")
    f:close()
    local chunk = assert(load(text, "=inbox settings", "t", {}))
    return chunk()
end

local function inbox()
    if not box then
        local s = settings()
        local clients = {}
        for name, opts in pairs(s.providers) do clients[name] = luapay[name].new(opts) end
        box = require("luapay.inbox").new{ store = store.redis(s.redis), clients = clients }
    end
    return box
end

--- The notification URL of one provider.
function M.handle(name)
    inbox():handle(name)
end

function M.show(name, ref)
    ngx.header["Content-Type"] = "application/json"
    local payment, err = inbox():payment(name, ref)
    if not payment then return ngx.exit(503) end
    ngx.print(cjson.encode(payment) or err)
end

--- What the shop does with an event, once: here, count it per payment.
function M.handler(event)
    local s = inbox().store
    return s:incr(("shop:handled:%s:%s"):format(event.provider, event.provider_ref or "-")) ~= nil
end

--- A consumer in each worker, on a timer (init_worker_by_lua_block).
function M.start_consumer()
    local function run(premature)
        if premature then return end
        local _, err = inbox():consume{ group = "shop", handler = M.handler, block_ms = 1000,
                                         stop = function() return ngx.worker.exiting() end }
        if err then ngx.log(ngx.ERR, "inbox consumer: ", tostring(err)) end
        if not ngx.worker.exiting() then ngx.timer.at(1, run) end -- Redis was away: again in a second
    end
    ngx.timer.at(0, run)
end

return M
