--- luapay.store.redis: the store on a Redis server, shared by every worker
-- of every box. Inside nginx it speaks over cosockets with lua-resty-redis
-- (Debian's lua-nginx-redis: `nginx.redis`; OpenResty's `resty.redis`), a
-- pooled connection per call; in Lua scripts with lua-redis over lua-socket,
-- one connection per store, opened again after a failure.
--
-- Every operation that reads and then writes (add, cas, unlock, the inbox's
-- record) is one Redis command or one Redis script (EVALSHA, EVAL when the
-- server does not have it yet), so two boxes never both win.
--
--   local s = store.redis{ host = "127.0.0.1", port = 6379, password = nil,
--                          db = 0, timeout_ms = 2000, prefix = "luapay:" }
--   s:eval(script, keys, args)  -> the script's result | nil, err
--   s:command(name, ...)        -> the command's result | nil, err
--
-- Keys are prefixed with `prefix` (default "luapay:"). A Redis null comes
-- back as nil at the top level and as false inside a list.
local core = require "luapay.core"
local store = require "luapay.store"

local unpack = table.unpack or unpack -- luacheck: ignore 143

local Redis = setmetatable({}, { __index = store.Common })
Redis.__index = Redis

local M = {}

local OPTIONS = { host = "string", port = "number", password = "string", db = "number", timeout_ms = "number",
                  prefix = "string", pool_size = "number", keepalive_ms = "number" }

-- Debian ships lua-redis for Lua 5.1 to 5.3 only (Lua-Versions in its
-- control file; no /usr/share/lua/5.4 link). The module is plain Lua that
-- runs unchanged on 5.4 (it falls back to table.unpack) over lua-socket,
-- which Debian ships for 5.4: load that same file.
local function lua_redis()
    local ok, mod = pcall(require, "redis")
    if ok then return mod end
    for _, dir in ipairs{ "/usr/share/lua/5.3", "/usr/share/lua/5.1", "/usr/local/share/lua/5.3" } do
        local path = dir .. "/redis.lua"
        local f = io.open(path)
        if f then
            f:close()
            local mod2 = dofile(path)
            package.loaded.redis = mod2
            return mod2
        end
    end
    error("luapay.store.redis: lua-redis is not installed (Debian: apt-get install lua-redis)", 4)
end

local function in_nginx()
    return ngx ~= nil and ngx.socket ~= nil and ngx.get_phase and ngx.get_phase() ~= "init"
end

-- A null reply as false inside lists, so arrays keep their length.
local function plain(v, nested)
    if v == nil or (ngx and v == ngx.null) then return (nested and false or nil) end
    if type(v) == "table" then
        local out = {}
        for i = 1, #v do out[i] = plain(v[i], true) end
        if v.n then for i = #v + 1, v.n do out[i] = false end end
        return out
    end
    return v
end

--- store.redis(opts) -> store.
function M.new(opts)
    opts = opts or {}
    if type(opts) ~= "table" then error("luapay.store.redis: bad argument #1 'opts' (a table expected)", 3) end
    for k, v in pairs(opts) do
        if not OPTIONS[k] then error(("luapay.store.redis: option '%s' is unknown"):format(tostring(k)), 3) end
        if type(v) ~= OPTIONS[k] then
            error(("luapay.store.redis: option '%s' must be a %s"):format(k, OPTIONS[k]), 3)
        end
    end
    local self = setmetatable({
        backend = "redis",
        host = opts.host or "127.0.0.1", port = opts.port or 6379, db = opts.db,
        timeout_ms = opts.timeout_ms or 2000, prefix = opts.prefix or "luapay:",
        pool_size = opts.pool_size or 64, keepalive_ms = opts.keepalive_ms or 60000,
        scripts = {},
    }, Redis)
    -- the password is a secret: never on the table, so never printed
    local password = opts.password
    self.auth = function() return password end
    return self
end

--- The key as stored (with the prefix).
function Redis:key(key) return self.prefix .. key end

-- One command inside nginx: a pooled cosocket connection.
local function call_nginx(self, timeout_ms, cmd, ...)
    local ok_mod, redis = pcall(require, "resty.redis")
    if not ok_mod then redis = require "nginx.redis" end
    local red = redis:new()
    red:set_timeout(timeout_ms)
    local ok, err = red:connect(self.host, self.port)
    if not ok then return nil, store.error("redis", "connect: " .. tostring(err), err == "timeout") end
    if red:get_reused_times() == 0 then
        local password = self.auth()
        if password then
            ok, err = red:auth(password)
            if not ok then red:close() return nil, store.error("redis", "auth: " .. tostring(err)) end
        end
        if self.db then
            ok, err = red:select(self.db)
            if not ok then red:close() return nil, store.error("redis", "select: " .. tostring(err)) end
        end
    end
    local res
    res, err = red[cmd](red, ...)
    if res == nil then -- the connection failed: it goes, not back to the pool
        red:close()
        return nil, store.error("redis", cmd .. ": " .. tostring(err), err == "timeout")
    end
    red:set_keepalive(self.keepalive_ms, self.pool_size)
    if res == false then return nil, store.error("redis", err, false), "reply" end
    return plain(res)
end

-- One command from a script: the store's own connection (lua-redis).
local function call_script(self, timeout_ms, cmd, ...)
    local redis = lua_redis()
    if not self.conn then
        local ok, conn = pcall(redis.connect, { host = self.host, port = self.port, timeout = self.timeout_ms / 1000 })
        if not ok then return nil, store.error("redis", "connect: " .. tostring(conn), tostring(conn):find("timeout")) end
        local password = self.auth()
        if password then
            local auth_ok, err = pcall(redis.command("auth"), conn, password)
            if not auth_ok then pcall(conn.quit, conn) return nil, store.error("redis", "auth: " .. tostring(err)) end
        end
        if self.db then pcall(redis.command("select"), conn, self.db) end
        self.conn = conn
        self.commands = {}
    end
    local fn = self.commands[cmd]
    if not fn then
        fn = redis.command(cmd)
        self.commands[cmd] = fn
    end
    self.conn.network.socket:settimeout(timeout_ms / 1000)
    local ok, res = pcall(fn, self.conn, ...)
    self.conn.network.socket:settimeout(self.timeout_ms / 1000)
    if ok then return plain(res) end
    res = tostring(res):gsub("^.-redis error: ", ""):gsub("^.-(connection error)", "%1")
    if tostring(res):find("connection error", 1, true) or tostring(res):find("closed", 1, true) then
        pcall(function() self.conn.network.socket:close() end)
        self.conn = nil -- opened again by the next call
        return nil, store.error("redis", cmd .. ": " .. res, res:find("timeout"))
    end
    return nil, store.error("redis", res), "reply"
end

--- s:command(name, ...) -> result | nil, err. A raw command (keys are not
-- prefixed: use s:key). timeout: s.timeout_ms, or s:command_timeout.
function Redis:command(cmd, ...)
    return self:call(self.timeout_ms, cmd, ...)
end

--- s:call(timeout_ms, name, ...): a command with its own timeout (a blocking read).
function Redis:call(timeout_ms, cmd, ...)
    if in_nginx() then return call_nginx(self, timeout_ms, cmd:lower(), ...) end
    return call_script(self, timeout_ms, cmd:lower(), ...)
end

--- s:eval(script, keys, args) -> result | nil, err. EVALSHA first; the
-- script text only when the server does not know it yet (NOSCRIPT).
function Redis:eval(script, keys, args)
    local sha = self.scripts[script]
    if not sha then
        sha = core.hex_encode(core.digest("sha1", script))
        self.scripts[script] = sha
    end
    local flat = { #keys }
    for _, k in ipairs(keys) do flat[#flat + 1] = self:key(k) end
    for _, a in ipairs(args or {}) do flat[#flat + 1] = tostring(a) end
    local res, err, kind = self:command("evalsha", sha, unpack(flat))
    if err and kind == "reply" and tostring(err.message):find("NOSCRIPT", 1, true) then
        res, err = self:command("eval", script, unpack(flat))
    end
    return res, err
end

-- Redis takes a ttl in whole milliseconds.
local function ms(ttl) return ttl and math.max(1, math.floor(ttl * 1000 + 0.5)) end

function Redis:get(key)
    store.check_key("get", key)
    return self:command("get", self:key(key))
end

function Redis:set(key, value, ttl)
    store.check_key("set", key)
    store.check_value("set", 2, value)
    store.check_ttl("set", 3, ttl)
    local res, err
    if ttl then res, err = self:command("set", self:key(key), tostring(value), "PX", ms(ttl))
    else res, err = self:command("set", self:key(key), tostring(value)) end
    if err then return nil, err end
    return res ~= nil
end

function Redis:add(key, value, ttl)
    store.check_key("add", key)
    store.check_value("add", 2, value)
    store.check_ttl("add", 3, ttl)
    local res, err
    if ttl then res, err = self:command("set", self:key(key), tostring(value), "NX", "PX", ms(ttl))
    else res, err = self:command("set", self:key(key), tostring(value), "NX") end
    if err then return nil, err end
    return res ~= nil
end

local CAS = [[
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then return 0 end
if ARGV[3] == '0' then redis.call('DEL', KEYS[1])
elseif ARGV[5] ~= '' then redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
else redis.call('SET', KEYS[1], ARGV[4]) end
return 1
]]

function Redis:cas(key, old, new, ttl)
    store.check_key("cas", key)
    store.check_value("cas", 2, old, true)
    store.check_value("cas", 3, new, true)
    store.check_ttl("cas", 4, ttl)
    local res, err = self:eval(CAS, { key }, { old ~= nil and 1 or 0, old or "", new ~= nil and 1 or 0, new or "",
                                             ttl and ms(ttl) or "" })
    if err then return nil, err end
    return res == 1
end

function Redis:incr(key, n)
    store.check_key("incr", key)
    return self:command("incrby", self:key(key), n or 1)
end

function Redis:delete(key)
    store.check_key("delete", key)
    local _, err = self:command("del", self:key(key))
    if err then return nil, err end
    return true
end

function Redis:append(stream, fields)
    store.check_key("append", stream)
    if type(fields) ~= "table" then error("luapay.store.append: bad argument #2 'fields' (a table expected)", 2) end
    local flat = {}
    local names = {}
    for k in pairs(fields) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do flat[#flat + 1] = k; flat[#flat + 1] = tostring(fields[k]) end
    return self:command("xadd", self:key(stream), "*", unpack(flat))
end

--- Closes the script connection (nginx pools its own).
function Redis:close()
    if self.conn then pcall(function() self.conn.network.socket:close() end) end
    self.conn = nil
    return true
end

return M
