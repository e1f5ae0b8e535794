-- State the clients share between workers and boxes through luapay.store on
-- a real redis-server: TrustPay's API Banking OAuth token, fetched once per
-- expiry by whichever process gets the lock, used by all.
local cjson = require "cjson"
local core = require "luapay.core"
local store = require "luapay.store"
local redis_server = require "support.redis"
local trustpay_env = require "support.trustpay_env"
local util = require "support.util"

describe("shared client state", function()
    local srv, tp

    setup(function()
        srv = assert(redis_server.start())
        -- token_ttl: the first test's two rounds of boxes must fit in it (the
        -- store keeps a token 90 % of it): 2.3 s under ASan on a busy machine
        tp = trustpay_env.start{ trustpay = { token_ttl = 6 } }
    end)

    teardown(function()
        tp:stop()
        srv:stop()
    end)

    local function tokens_issued()
        return cjson.decode(tp:get("/trustpay/_sandbox/stats").body).tokens_issued or 0
    end

    -- n processes (boxes), each making `calls` calls at the same moment
    local function boxes(n, calls)
        local env = "env -u LD_PRELOAD -u ASAN_OPTIONS LUAPAY_BUILD=build/lua5.4 "
        local cmd = {}
        for i = 1, n do
            cmd[i] = ("%s lua5.4 spec/support/token_worker.lua %d %s/trustpay %d > %s/w%d.out 2>&1 &"):format(
                env, srv.port, tp.sb.url, calls, srv.dir, i)
        end
        os.execute("(" .. table.concat(cmd, " ") .. " wait)")
        for i = 1, n do assert.equal("ok\n", util.read(("%s/w%d.out"):format(srv.dir, i))) end
    end

    it("TrustPay: six processes making calls at once fetch one OAuth token per expiry", function()
        local before = tokens_issued()
        boxes(6, 5)
        assert.equal(before + 1, tokens_issued())
        boxes(6, 2) -- still valid: no fetch
        assert.equal(before + 1, tokens_issued())
        core.sleep(6) -- expired (the store's ttl ends it shortly before)
        boxes(6, 2)
        assert.equal(before + 2, tokens_issued())
    end)

    it("TrustPay: a token the provider rejects (401) is replaced once, for every process", function()
        local s = store.redis{ port = srv.port }
        local client = tp:client{ store = s }
        assert(client:accounts())
        local before = tokens_issued()
        tp:post("/trustpay/_sandbox/expire_tokens")
        assert(client:accounts())
        assert.equal(before + 1, tokens_issued())
        local other = tp:client{ store = s } -- another process's client: takes the new one
        assert(other:accounts())
        assert.equal(before + 1, tokens_issued())
        s:close()
    end)

    it("Trustly: a deposit retried from another box carries the same MessageID, derived from the order, and is taken once", function()
        local sandbox = require "luapay.sandbox"
        local trustly = require "luapay.trustly"
        local sb = assert(sandbox.start{ routes = { ["/trustly/"] = "luapay.sandbox.trustly" } })
        local order = "order-" .. core.hex_encode(core.random_bytes(4))
        local function box()
            return trustly.new{
                username = "merchant_username", password = "merchant_password",
                private_key = util.fixture("keys/merchant_private.pem"),
                trustly_public_key = util.fixture("keys/provider_public.pem"),
                base_url = sb.url .. "/trustly/api/1",
                message_id = function(method) return trustly.message_id(method, order) end,
            }
        end
        local deposit = {
            NotificationURL = sb.url .. "/nowhere", EndUserID = "user-1",
            Attributes = { Currency = "EUR", Amount = 1000, Firstname = "Ann", Lastname = "Ek", Country = "SE",
                           Locale = "sv_SE", SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail" },
        }
        local first = assert(box():deposit(deposit))
        assert.truthy(first.orderid)
        local again, err = box():deposit(deposit) -- box B, the same order: Trustly refuses the MessageID it has seen
        assert.is_nil(again)
        assert.equal(637, err.code)
        assert.equal(trustly.message_id("Deposit", order), err.message_id)
        assert.matches("^%x+%-%x+%-5%x+%-[89ab]%x+%-%x+$", trustly.message_id("Deposit", order))
        assert.not_equal(trustly.message_id("Deposit", order), trustly.message_id("Deposit", order, 2))
        -- the same text on every VM; a wrong attempt or order raises
        assert.equal(trustly.message_id("Deposit", "1042"), trustly.message_id("Deposit", 1042))
        assert.has_error(function() trustly.message_id("Deposit", order, true) end)
        assert.has_error(function() trustly.message_id("Deposit", order, 0) end)
        assert.has_error(function() trustly.message_id("Deposit", 10.5) end)
        util.stop_sandbox(sb)
    end)

    describe("export cursors (pager.checkpointed)", function()
        local pager = require "luapay.pager"
        -- 4 pages of 3 items; the cursor is the page number
        local fetched
        local function open(resume)
            return pager.new(function(cursor)
                fetched[#fetched + 1] = cursor.page
                local items = {}
                for i = 1, 3 do items[i] = (cursor.page - 1) * 3 + i end
                return items, cursor.page < 4 and { page = cursor.page + 1 } or nil
            end, resume or { page = 1 })
        end

        it("saved after each page: a run that stops is resumed by the next from the first page not wholly handled", function()
            local s = store.redis{ port = srv.port }
            local name = "nightly-" .. core.hex_encode(core.random_bytes(4))
            fetched = {}
            -- lock_ttl: far longer than the way to the "locked" check below may
            -- take on a busy machine (0.5 s, with a redis-cli run on the way, was
            -- outlasted under ASan)
            local it = assert(pager.checkpointed{ store = s, name = name, open = open, lock_ttl = 2 })
            local seen = {}
            for item in it do
                seen[#seen + 1] = item
                if item == 8 then break end -- the job dies in page 3, its lock left to expire
            end
            -- another box, while the first run's lock still holds
            local none, err = pager.checkpointed{ store = store.redis{ port = srv.port }, name = name, open = open }
            assert.is_nil(none)
            assert.equal("locked", err.code)
            assert.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, seen)
            assert.equal('{"page":3}', srv:cli("GET", "luapay:cursor:" .. name))
            core.sleep(2.1)
            fetched = {}
            local rest = {}
            for item, e in assert(pager.checkpointed{ store = store.redis{ port = srv.port }, name = name, open = open }) do
                assert(item, e)
                rest[#rest + 1] = item
            end
            assert.same({ 3, 4 }, fetched) -- from page 3: 7 and 8 come again, nothing is missed
            assert.same({ 7, 8, 9, 10, 11, 12 }, rest)
            assert.equal("", srv:cli("GET", "luapay:cursor:" .. name)) -- done: cleared, and the lock freed
            assert.equal("", srv:cli("GET", "luapay:cursor:" .. name .. ":lock"))
            s:close()
        end)
    end)

    it("export cursors: a run that outlived its lock stops before it writes over the run that took it", function()
        local pager = require "luapay.pager"
        local s = store.memory()
        local function open(resume)
            return pager.new(function(cursor)
                local items = {}
                for i = 1, 3 do items[i] = (cursor.page - 1) * 3 + i end
                return items, cursor.page < 4 and { page = cursor.page + 1 } or nil
            end, resume or { page = 1 })
        end
        local first = assert(pager.checkpointed{ store = s, name = "nightly", open = open })
        local seen = {}
        for item in first do
            seen[#seen + 1] = item
            if item == 4 then break end -- in page 2; its cursor {page = 2} saved
        end
        assert.equal('{"page":2}', s:get("cursor:nightly"))
        -- its lock lapses (a page took longer than lock_ttl) and another run takes it
        assert(s:delete("cursor:nightly:lock"))
        local other = assert(s:lock("cursor:nightly:lock", 60))
        assert(s:set("cursor:nightly", '{"page":4}')) -- the other run got further
        local item, err
        repeat item, err = first() until item == nil or item == false
        assert.same({ 1, 2, 3, 4 }, seen)
        assert.is_nil(item)
        assert.equal("locked", err.code)
        assert.equal('{"page":4}', s:get("cursor:nightly")) -- the other run's cursor stands
        assert.equal(other, s:get("cursor:nightly:lock"))   -- and so does its lock
        assert.is_nil(first()) -- stopped for good
    end)

    it("TrustPay: store must be a luapay.store", function()
        util.assert_raises("trustpay.new: option 'store' must be a luapay.store (it shares the API Banking OAuth token between"
            .. " workers and boxes)", tp.client, tp, { store = {} })
    end)
end)
