--- luapay.pager: the iterator behind every provider list (beGateway's
-- export, Trustly North America's payments). It holds one page at a time,
-- yields its items one by one and asks for the next page only when the
-- current one is used up, so a whole period streams in constant memory.
--
--   for tx, err in client:export{...} do
--       if not tx then ... err.resume ... break end
--   end
--
-- An error ends the stream and carries `resume`, the cursor of the page
-- that could not be fetched: nothing before it is lost and nothing after
-- it was yielded, so passing it back (`export{..., resume = err.resume}`)
-- continues exactly there.
--
-- Lua's generic `for` stops at a nil first value, so inside a `for` the
-- error comes as `false, err` (the loop body sees it); called directly,
-- the iterator returns `nil, err`. Either way `if not tx then` catches it,
-- and the iterator keeps the error as `it.err` after the loop. After the
-- error, or at the end, it returns nil.
--
-- A loop is recognised by the arguments `for` passes: the state (the
-- iterator itself, as `client:export{...}` returns it twice) or the
-- previous item. A loop over a detached iterator (`local it =
-- client:export{...}; for tx, err in it do`) whose very first call fails
-- cannot be told from a direct call: check it.err after such a loop.
--
-- fetch(cursor) -> items (array), next_cursor | nil (last page) | nil, nil, err
local core = require "luapay.core"
local errors = require "luapay.errors"

local pager = {}

local Pager = {}
Pager.__index = Pager

local function copy(t)
    if type(t) ~= "table" then return t end
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end
pager.copy = copy

--- pager.new(fetch, cursor [, err]) -> iterator, iterator. With err the
-- iterator yields that error first and fetches nothing (a request refused
-- before sending).
function pager.new(fetch, cursor, err)
    local self = setmetatable({
        fetch = fetch, cursor = cursor, items = nil, n = 0, pos = 0, nxt = nil,
        done = false, count = 0, pages = 0, pending_err = err,
    }, Pager)
    return self, self
end

local function fail(self, in_loop, err)
    self.done = true
    self.err = err
    if in_loop then return false, err end
    return nil, err
end

function Pager.__call(self, state, previous)
    if self.done then return nil end
    local in_loop = state == self or previous ~= nil
    if self.pending_err then return fail(self, in_loop, self.pending_err) end
    while true do
        if self.pos < self.n then
            local pos = self.pos + 1
            self.pos = pos
            local item = self.items[pos]
            self.items[pos] = nil -- the page lets go of what was yielded
            self.count = self.count + 1
            return item
        end
        if self.items then
            if self.nxt == nil then
                self.done = true
                self.items = nil
                return nil
            end
            self.cursor = self.nxt
        end
        self.items, self.n, self.pos = nil, 0, 0
        local items, nxt, err = self.fetch(self.cursor)
        if not items then
            err.resume = copy(self.cursor)
            if err.page == nil then err.page = self.pages + 1 end -- unless fetch numbers its pages
            return fail(self, in_loop, err)
        end
        self.pages = self.pages + 1
        self.items, self.n, self.nxt = items, #items, nxt
    end
end

--- pager.checkpointed{store, name, open, lock_ttl = 600, resume} -> iterator,
-- iterator | nil, err. A list that a nightly job can stop and take up again,
-- from any box: open(resume) returns the list (e.g. function(resume) return
-- client:export{..., resume = resume} end). Only one run at a time holds
-- name's lock (a luapay.store lock, renewed after each page; a run that
-- dies frees it after lock_ttl seconds): another gets nil and an error of
-- type "config" with code "locked", and a run that outlived its lock (a page
-- took longer than lock_ttl) stops with that error once another took the
-- lock, before it writes the cursor. Once the caller has had every item of a
-- page and asks for more, the cursor of the next page is saved in the store
-- (cursor:<name>), so a run that stops (an error, a crash) is resumed by the
-- next from the first page not wholly handled (a page's items may come
-- twice, never none). At the end the cursor is cleared and the lock freed.
function pager.checkpointed(o)
    local s, name = o.store, o.name
    if type(s) ~= "table" or type(s.lock) ~= "function" then
        error("pager.checkpointed: option 'store' must be a luapay.store", 2)
    end
    if type(name) ~= "string" or name == "" then error("pager.checkpointed: option 'name' must be a non-empty string", 2) end
    if type(o.open) ~= "function" then error("pager.checkpointed: option 'open' must be a function(resume) -> list", 2) end
    local key, lock_key, ttl = "cursor:" .. name, "cursor:" .. name .. ":lock", o.lock_ttl or 600
    local token, err = s:lock(lock_key, ttl)
    if token == nil then return nil, err end
    if not token then
        return nil, errors.new("config", ("pager.checkpointed: another run of %q holds its lock"):format(name), { code = "locked" })
    end
    local saved
    saved, err = s:get(key)
    if err then s:unlock(lock_key, token) return nil, err end
    local inner = o.open(saved and core.json_decode(saved) or o.resume)
    local finished = false
    local function finish(clear)
        if clear then s:delete(key) end
        s:unlock(lock_key, token)
        finished = true
    end
    local it = {}
    setmetatable(it, { __call = function(_, state, previous)
        if finished then return nil end
        local in_loop = state == it or previous ~= nil
        if inner.items and inner.pos >= inner.n and inner.nxt ~= nil then -- the page is handled: keep the next one's cursor
            -- still ours (for lock_ttl more) before the cursor is written: a
            -- run that outlived its lock must not write over the run that took
            -- it, nor go on beside it
            local mine, lerr = s:cas(lock_key, token, token, ttl)
            if not mine then
                finished = true
                if lerr then s:unlock(lock_key, token) end
                return (in_loop and false or nil), lerr or errors.new("config",
                    ("pager.checkpointed: the lock of %q lapsed (lock_ttl %gs) and another run holds it"):format(name, ttl),
                    { code = "locked" })
            end
            local ok, serr = s:set(key, assert(core.json_encode(inner.nxt)))
            if not ok then finish(false) return (in_loop and false or nil), serr end
        end
        local item, ierr = inner()
        if not item then
            finish(ierr == nil)
            if ierr then return (in_loop and false or nil), ierr end
            return nil
        end
        return item
    end })
    return it, it
end

--- it:collect() -> array of every item | nil, err (for small periods).
function Pager:collect()
    local all = {}
    while true do
        local item, err = self()
        if item == nil then
            if err then return nil, err end
            return all
        end
        all[#all + 1] = item
    end
end

return pager
