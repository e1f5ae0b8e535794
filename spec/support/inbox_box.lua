--- An nginx box running examples/nginx/inbox.conf as written (only the
-- listen port and the settings file set for the test), for the inbox specs.
--   box.settings(file, redis_port)        writes the settings file (the five test clients)
--   box.start(settings_file [, port])     -> sandbox, base URL (port: a restart on the same one)
--   box.url(base, provider)               the provider's notification URL
--   box.deliver(web, base, provider, notice) -> the response (TrustPay: a GET)
local sandbox = require "luapay.sandbox"
local notices = require "support.notices"
local util = require "support.util"

local M = {}

local function literal(s) return (s:gsub("%p", "%%%0")) end

function M.settings(file, redis_port)
    local parts = { ("return { redis = { port = %d }, providers = {"):format(redis_port) }
    for _, name in ipairs(notices.NAMES) do
        parts[#parts + 1] = ("[%q] = %s,"):format(name, sandbox.serialize(notices.OPTIONS[name]))
    end
    parts[#parts + 1] = "} }"
    util.write(file, table.concat(parts, "\n"))
end

function M.start(settings_file, fixed_port)
    local conf = util.read("examples/nginx/inbox.conf")
    local last
    for _ = 1, fixed_port and 50 or 5 do
        local port = fixed_port or sandbox.random_port()
        local block = conf
            :gsub(literal("listen 127.0.0.1:8089;"), "listen 127.0.0.1:" .. port .. ";")
            :gsub(literal('"/etc/luapay/inbox.lua"'), '"' .. settings_file .. '"')
        assert(block:find(settings_file, 1, true))
        local sb, err = sandbox.start{ lua_path = "examples/nginx/?.lua", http_config = block, workers = 2 }
        if sb then return sb, "http://127.0.0.1:" .. port end
        last = err
        if fixed_port then require("luapay.core").sleep(0.1) end -- the old one's socket may linger
    end
    error("nginx did not start: " .. tostring(last))
end

function M.url(base, name)
    return base .. "/notifications/" .. name .. "/9c2e41d07b5a"
end

function M.deliver(web, base, name, notice)
    if notice.method == "GET" then
        return assert(web:request{ url = M.url(base, name) .. "?" .. notice.raw })
    end
    return assert(web:request{ method = "POST", url = M.url(base, name), body = notice.raw, headers = notice.headers })
end

return M
