--- The store's contract as one scenario, run on any backend in any runtime
-- (busted under Lua 5.4 and LuaJIT, and inside nginx through
-- store_handler): run(store, sleep) -> {name = what came back}, compared by
-- spec/70-store_spec.lua with EXPECTED.
local M = {}

M.EXPECTED = {
    get_absent = "nil", set = "true", get = "v1", set_number = "42",
    add_new = "true", add_taken = "false", add_kept = "first",
    ttl_before = "short", ttl_after = "nil", add_after_ttl = "true",
    cas_ok = "true", cas_wrong = "false", cas_value = "b",
    cas_absent_ok = "true", cas_absent_taken = "false", cas_delete = "true", cas_deleted = "nil",
    incr1 = "1", incr5 = "6", delete = "true", deleted = "nil",
    lock = "token", lock_held = "false", unlock_other = "false", unlock = "true", relock = "token",
    lock_expired = "token", unlock_stale = "false",
    append = "id", append2 = "id",
}

local function show(v)
    if type(v) == "string" and #v == 24 and v:match("^%x+$") then return "token" end
    if type(v) == "string" and v:match("^%d+%-%d+$") then return "id" end
    return tostring(v)
end

function M.run(s, sleep)
    local r = {}
    local n = tostring(math.random(1e9)) .. ":" -- fresh keys on every run
    r.get_absent = show(s:get(n .. "nothing"))
    r.set = show(s:set(n .. "k", "v1"))
    r.get = show(s:get(n .. "k"))
    s:set(n .. "num", 42)
    r.set_number = show(s:get(n .. "num"))
    r.add_new = show(s:add(n .. "a", "first"))
    r.add_taken = show(s:add(n .. "a", "second"))
    r.add_kept = show(s:get(n .. "a"))
    s:set(n .. "t", "short", 0.15)
    r.ttl_before = show(s:get(n .. "t"))
    s:add(n .. "at", "x", 0.15)
    sleep(0.3)
    r.ttl_after = show(s:get(n .. "t"))
    r.add_after_ttl = show(s:add(n .. "at", "y"))
    s:set(n .. "c", "a")
    r.cas_ok = show(s:cas(n .. "c", "a", "b"))
    r.cas_wrong = show(s:cas(n .. "c", "a", "z"))
    r.cas_value = show(s:get(n .. "c"))
    r.cas_absent_ok = show(s:cas(n .. "c2", nil, "x"))
    r.cas_absent_taken = show(s:cas(n .. "c2", nil, "y"))
    r.cas_delete = show(s:cas(n .. "c2", "x", nil))
    r.cas_deleted = show(s:get(n .. "c2"))
    r.incr1 = show(s:incr(n .. "i"))
    r.incr5 = show(s:incr(n .. "i", 5))
    r.delete = show(s:delete(n .. "k"))
    r.deleted = show(s:get(n .. "k"))
    local token = s:lock(n .. "L", 10)
    r.lock = show(token)
    r.lock_held = show(s:lock(n .. "L", 10))
    r.unlock_other = show(s:unlock(n .. "L", "not-the-token"))
    r.unlock = show(s:unlock(n .. "L", token))
    r.relock = show(s:lock(n .. "L", 0.15))
    sleep(0.3)
    local later = s:lock(n .. "L", 10)
    r.lock_expired = show(later)
    r.unlock_stale = show(s:unlock(n .. "L", token))
    r.append = show(s:append(n .. "stream", { a = "1", b = "two" }))
    r.append2 = show(s:append(n .. "stream", { a = "3" }))
    return r
end

return M
