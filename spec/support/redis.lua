--- A throwaway redis-server for specs: Debian's binary on a random loopback
-- port, its files in a temporary directory, no persistence (no RDB, no AOF),
-- so nothing survives a stop and nothing from an earlier run comes back.
--
--   local redis = require "support.redis"
--   local srv = assert(redis.start())   -- srv.host, srv.port, srv.url
--   srv:cli("DBSIZE")                   -- redis-cli's output, for checks
--   srv:stop()
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"

local M = {}
local Server = {}
Server.__index = Server

local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function capture(cmd)
    local p = io.popen(CLEAN_ENV .. cmd)
    local out = p:read("*a")
    p:close()
    return out
end

local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
end

function M.start()
    local dir = capture("mktemp -d /tmp/luapay-redis.XXXXXX"):gsub("%s+$", "")
    for _ = 1, 10 do
        local port = sandbox.random_port()
        os.execute(CLEAN_ENV .. ("redis-server --bind 127.0.0.1 --port %d --dir %s --save '' --appendonly no"
            .. " --daemonize yes --pidfile %s/redis.pid --logfile %s/redis.log >/dev/null 2>&1"):format(port, dir, dir, dir))
        local deadline = core.monotime() + 5
        repeat
            if capture(("redis-cli -p %d PING 2>/dev/null"):format(port)):match("PONG") then
                local pid = tonumber(read(dir .. "/redis.pid") or "")
                return setmetatable({ host = "127.0.0.1", port = port, dir = dir, pid = pid,
                                      url = "redis://127.0.0.1:" .. port }, Server)
            end
            core.sleep(0.02)
        until core.monotime() > deadline or (read(dir .. "/redis.log") or ""):find("Address already in use", 1, true)
        local stray = tonumber(read(dir .. "/redis.pid") or "")
        if stray then os.execute("kill -KILL " .. stray .. " 2>/dev/null") end
        os.remove(dir .. "/redis.log")
    end
    os.execute("rm -rf " .. dir)
    return nil, "support.redis: redis-server did not start"
end

--- redis-cli's raw output for one command (arguments as words).
function Server:cli(...)
    local args = {}
    for i = 1, select("#", ...) do args[i] = "'" .. tostring((select(i, ...))):gsub("'", "'\\''") .. "'" end
    return (capture(("redis-cli --raw -p %d %s 2>&1"):format(self.port, table.concat(args, " "))):gsub("\n$", ""))
end

function Server:stop()
    if self.stopped then return true end
    self.stopped = true
    if self.pid then
        os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
        local deadline = core.monotime() + 5
        local function alive()
            local stat = read("/proc/" .. self.pid .. "/stat")
            return stat and not stat:match("^%d+ %b() Z") -- a zombie is gone
        end
        while alive() and core.monotime() < deadline do core.sleep(0.01) end
        os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    end
    os.execute("rm -rf " .. self.dir)
    return true
end

Server.__gc = function(self) pcall(self.stop, self) end

return M
