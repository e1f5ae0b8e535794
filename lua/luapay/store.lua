--- luapay.store: the state luapay keeps between requests, behind one small
-- interface with three backends.
--
--   local store = require "luapay.store"
--   local s = store.memory()                       -- one process: scripts, tests
--   local s = store.shared(ngx.shared.luapay)      -- one nginx box, all its workers
--   local s = store.redis{ host = "127.0.0.1", port = 6379 }  -- many boxes
--
-- store.shared does NOT survive a restart of nginx (a shared dict lives in
-- the box's memory), and a second box has its own: use it for one box only.
-- store.redis is as durable as the Redis server is configured to be
-- (appendonly, save); its atomic operations run as Redis scripts, so two
-- boxes never both win.
--
-- Every backend answers the same calls; run-time failures (Redis down, a
-- timeout) are `nil, err` (a luapay.errors table of type "network" or
-- "timeout"), never a raise:
--
--   s:get(key)                      -> value | nil (absent) | nil, err
--   s:set(key, value [, ttl])       -> true | nil, err      (ttl in seconds, fractions allowed)
--   s:add(key, value [, ttl])       -> true | false (it was there) | nil, err
--   s:cas(key, old, new [, ttl])    -> true | false (it was not old) | nil, err
--                                      (old nil: only if absent; new nil: delete)
--   s:incr(key [, n])               -> the new integer | nil, err
--   s:delete(key)                   -> true | nil, err
--   s:lock(key, ttl)                -> token | false (held elsewhere) | nil, err
--   s:unlock(key, token)            -> true | false (no longer ours) | nil, err
--   s:append(stream, fields)        -> id | nil, err    (fields: a table of strings)
--
-- Values are strings (numbers are stored as their decimal text).
local core = require "luapay.core"
local errors = require "luapay.errors"

local store = {}

local function bad_argument(fn, n, name, message)
    error(("luapay.store.%s: bad argument #%d '%s' (%s)"):format(fn, n, name, message), 3)
end

--- Checks the arguments every backend shares (misuse raises at the caller).
function store.check_key(fn, key)
    if type(key) ~= "string" or key == "" then bad_argument(fn, 1, "key", "a non-empty string expected") end
end

function store.check_ttl(fn, n, ttl)
    if ttl ~= nil and (type(ttl) ~= "number" or ttl <= 0) then bad_argument(fn, n, "ttl", "seconds > 0 expected") end
end

function store.check_value(fn, n, value, optional)
    if value == nil and optional then return end
    local t = type(value)
    if t ~= "string" and t ~= "number" then bad_argument(fn, n, "value", "a string or number expected") end
end

--- The shared half of every backend: lock and unlock on top of add and cas.
local Common = {}
store.Common = Common

--- s:lock(key, ttl) -> token | false | nil, err. The lock ends by itself
-- after ttl seconds, so a holder that dies never blocks the others for good.
function Common:lock(key, ttl)
    store.check_key("lock", key)
    if type(ttl) ~= "number" or ttl <= 0 then bad_argument("lock", 2, "ttl", "seconds > 0 expected") end
    local token = core.hex_encode(core.random_bytes(12))
    local ok, err = self:add(key, token, ttl)
    if ok == nil then return nil, err end
    return ok and token
end

--- s:unlock(key, token) -> true | false | nil, err: releases the lock only
-- while it is still this token's (after its ttl another holder may have it).
function Common:unlock(key, token)
    store.check_key("unlock", key)
    if type(token) ~= "string" then bad_argument("unlock", 2, "token", "the token lock returned expected") end
    return self:cas(key, token, nil)
end

--- A run-time failure of the store as a luapay error.
function store.error(backend, message, timeout)
    return errors.new(timeout and "timeout" or "network", ("luapay.store (%s): %s"):format(backend, tostring(message)),
        { retryable = true })
end

function store.memory(opts) return require("luapay.store.memory").new(opts) end
function store.shared(dict, opts) return require("luapay.store.shared").new(dict, opts) end
function store.redis(opts) return require("luapay.store.redis").new(opts) end

return store
