--- Runs spec/support/store_cases.lua inside nginx (sandbox route /store/):
-- /store/shared on ngx.shared.store_spec, /store/redis on the Redis server
-- at config.redis_port. Answers the results as JSON.
local cjson = require "cjson"
local store = require "luapay.store"
local cases = require "support.store_cases"

local H = {}

function H.handle(path, config)
    local race = path:match("^race/(.+)$") -- many requests, one key: who wins add and lock
    if race then
        local s = store.redis{ port = config.redis_port, timeout_ms = 1000 }
        local added = s:add("race:add:" .. race, ngx.worker.pid())
        local token = s:lock("race:lock:" .. race, 30)
        return ngx.print(cjson.encode{ added = added, locked = token and true or false })
    end
    local s
    if path == "shared" then s = store.shared(ngx.shared.store_spec)
    else s = store.redis{ port = config.redis_port, timeout_ms = 1000 } end
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(cases.run(s, ngx.sleep)))
end

return H
