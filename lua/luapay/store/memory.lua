--- luapay.store.memory: the store in one Lua state's memory (scripts,
-- tests, a single process). Nothing is shared with another process and
-- nothing survives it. See luapay.store for the calls.
local core = require "luapay.core"
local store = require "luapay.store"

local Memory = setmetatable({}, { __index = store.Common })
Memory.__index = Memory

local M = {}

--- store.memory{clock = fn} -> store. clock: seconds (default core.monotime).
function M.new(opts)
    opts = opts or {}
    return setmetatable({ data = {}, expires = {}, streams = {}, clock = opts.clock or core.monotime,
                          backend = "memory" }, Memory)
end

function Memory:live(key)
    local at = self.expires[key]
    if at and at <= self.clock() then self.data[key], self.expires[key] = nil, nil end
    return self.data[key]
end

function Memory:put(key, value, ttl)
    self.data[key] = value ~= nil and tostring(value) or nil
    self.expires[key] = value ~= nil and ttl and self.clock() + ttl or nil
end

function Memory:get(key)
    store.check_key("get", key)
    return self:live(key)
end

function Memory:set(key, value, ttl)
    store.check_key("set", key)
    store.check_value("set", 2, value)
    store.check_ttl("set", 3, ttl)
    self:put(key, value, ttl)
    return true
end

function Memory:add(key, value, ttl)
    store.check_key("add", key)
    store.check_value("add", 2, value)
    store.check_ttl("add", 3, ttl)
    if self:live(key) ~= nil then return false end
    self:put(key, value, ttl)
    return true
end

function Memory:cas(key, old, new, ttl)
    store.check_key("cas", key)
    store.check_value("cas", 2, old, true)
    store.check_value("cas", 3, new, true)
    store.check_ttl("cas", 4, ttl)
    if self:live(key) ~= (old ~= nil and tostring(old) or nil) then return false end
    self:put(key, new, ttl)
    return true
end

function Memory:incr(key, n)
    store.check_key("incr", key)
    local v = math.floor(tonumber(self:live(key) or "0") + (n or 1))
    self.data[key] = ("%d"):format(v)
    return v
end

function Memory:delete(key)
    store.check_key("delete", key)
    self:put(key, nil)
    return true
end

function Memory:append(stream, fields)
    store.check_key("append", stream)
    if type(fields) ~= "table" then error("luapay.store.append: bad argument #2 'fields' (a table expected)", 2) end
    local list = self.streams[stream] or {}
    self.streams[stream] = list
    local copy = {}
    for k, v in pairs(fields) do copy[k] = tostring(v) end
    list[#list + 1] = copy
    local id = ("%d-0"):format(#list)
    copy.id = id
    return id
end

--- s:entries(stream) -> the appended entries in order ({id, fields...}).
function Memory:entries(stream)
    return self.streams[stream] or {}
end

return M
