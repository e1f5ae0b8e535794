--- luapay.store.shared: the store in an nginx shared dict (lua_shared_dict),
-- seen by every worker of ONE box. It does not survive a restart of nginx
-- and a second box has its own: for several boxes, use luapay.store.redis.
-- See luapay.store for the calls.
local core = require "luapay.core"
local store = require "luapay.store"

local Shared = setmetatable({}, { __index = store.Common })
Shared.__index = Shared

local M = {}

--- store.shared(dict) -> store. dict: ngx.shared.<name>.
function M.new(dict)
    if type(dict) ~= "table" and type(dict) ~= "userdata" then
        error("luapay.store.shared: bad argument #1 'dict' (ngx.shared.<name> expected)", 3)
    end
    return setmetatable({ dict = dict, backend = "shared" }, Shared)
end

local function failed(err) return nil, store.error("shared", err) end

function Shared:get(key)
    store.check_key("get", key)
    local v, err = self.dict:get(key)
    if v == nil and err then return failed(err) end
    return v ~= nil and tostring(v) or nil
end

function Shared:set(key, value, ttl)
    store.check_key("set", key)
    store.check_value("set", 2, value)
    store.check_ttl("set", 3, ttl)
    local ok, err = self.dict:set(key, tostring(value), ttl or 0)
    if not ok then return failed(err) end
    return true
end

function Shared:add(key, value, ttl)
    store.check_key("add", key)
    store.check_value("add", 2, value)
    store.check_ttl("add", 3, ttl)
    local ok, err = self.dict:add(key, tostring(value), ttl or 0)
    if ok then return true end
    if err == "exists" then return false end
    return failed(err)
end

-- The dict has no compare-and-set: a short mutex key (add is atomic across
-- workers) guards the read and the write, which do not yield in between.
function Shared:cas(key, old, new, ttl)
    store.check_key("cas", key)
    store.check_value("cas", 2, old, true)
    store.check_value("cas", 3, new, true)
    store.check_ttl("cas", 4, ttl)
    local mutex = "\0cas\0" .. key
    for _ = 1, 1000 do
        local got, err = self.dict:add(mutex, true, 1)
        if got then break end
        if err ~= "exists" then return failed(err) end
        ngx.sleep(0.001)
    end
    local current = self.dict:get(key)
    local ok, err = true, nil
    if (current ~= nil and tostring(current) or nil) ~= (old ~= nil and tostring(old) or nil) then
        ok = false
    elseif new == nil then
        self.dict:delete(key)
    else
        ok, err = self.dict:set(key, tostring(new), ttl or 0)
    end
    self.dict:delete(mutex)
    if ok == nil or (ok == false and err) then return failed(err) end
    return ok
end

function Shared:incr(key, n)
    store.check_key("incr", key)
    local v, err = self.dict:incr(key, n or 1, 0)
    if not v then return failed(err) end
    return math.floor(v)
end

function Shared:delete(key)
    store.check_key("delete", key)
    self.dict:delete(key)
    return true
end

-- A stream as numbered keys: <stream>:<n>, the count in <stream>.
function Shared:append(stream, fields)
    store.check_key("append", stream)
    if type(fields) ~= "table" then error("luapay.store.append: bad argument #2 'fields' (a table expected)", 2) end
    local n, err = self.dict:incr(stream, 1, 0)
    if not n then return failed(err) end
    local parts = {}
    for k, v in pairs(fields) do parts[#parts + 1] = { k, tostring(v) } end
    table.sort(parts, function(a, b) return a[1] < b[1] end)
    local ok
    ok, err = self.dict:set(("%s:%d"):format(stream, n), core.json_encode(parts))
    if not ok then return failed(err) end
    return ("%d-0"):format(n)
end

return M
