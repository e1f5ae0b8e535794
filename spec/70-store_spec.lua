-- luapay.store: one interface, three backends (memory, ngx.shared, Redis),
-- checked with one scenario (spec/support/store_cases.lua) in every runtime
-- a backend runs in; Redis against a real redis-server on loopback.
local cjson = require "cjson"
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local store = require "luapay.store"
local cases = require "support.store_cases"
local redis_server = require "support.redis"
local util = require "support.util"

describe("luapay.store", function()
    local srv, sb, web

    setup(function()
        srv = assert(redis_server.start())
        sb = assert(sandbox.start{
            routes = { ["/store/"] = "support.store_handler" },
            config = { redis_port = srv.port },
            lua_path = "spec/?.lua",
            shared_dicts = { store_spec = "1m" },
            workers = 2,
        })
        web = core.http_client{ timeout_ms = 10000 }
    end)

    teardown(function()
        web:close()
        util.stop_sandbox(sb)
        srv:stop()
    end)

    it("memory: every call of the interface", function()
        assert.same(cases.EXPECTED, cases.run(store.memory(), core.sleep))
    end)

    it("redis, from a Lua script (lua-redis): every call of the interface", function()
        local s = store.redis{ port = srv.port }
        assert.same(cases.EXPECTED, cases.run(s, core.sleep))
        s:close()
    end)

    it("redis keys carry the prefix; values are where redis-cli sees them", function()
        local s = store.redis{ port = srv.port, prefix = "shop1:" }
        assert.is_true(s:set("hello", "world"))
        assert.equal("world", srv:cli("GET", "shop1:hello"))
        s:close()
    end)

    it("ngx.shared, inside nginx: every call of the interface", function()
        local res = assert(web:request{ url = sb.url .. "/store/shared" })
        assert.equal(200, res.status, res.body)
        assert.same(cases.EXPECTED, cjson.decode(res.body))
    end)

    it("redis, inside nginx (lua-resty-redis over cosockets): every call of the interface", function()
        local res = assert(web:request{ url = sb.url .. "/store/redis" })
        assert.equal(200, res.status, res.body)
        assert.same(cases.EXPECTED, cjson.decode(res.body))
    end)

    it("redis: of 40 concurrent requests on two workers, exactly one wins add and one wins lock", function()
        local key = core.hex_encode(core.random_bytes(6))
        local cmd = "env -u LD_PRELOAD -u ASAN_OPTIONS seq 40 | env -u LD_PRELOAD xargs -P 40 -I{} curl -s %s/store/race/%s; echo"
        local out = io.popen(cmd
            :format(sb.url, key)):read("*a")
        local added, locked, answers = 0, 0, 0
        for json in out:gmatch("%b{}") do
            local r = cjson.decode(json)
            answers = answers + 1
            if r.added then added = added + 1 end
            if r.locked then locked = locked + 1 end
        end
        assert.equal(40, answers)
        assert.equal(1, added)
        assert.equal(1, locked)
    end)

    it("redis down: nil and a network error (retryable), no raise, and no password in it", function()
        local s = store.redis{ port = sandbox.random_port(), password = "hunter2-secret", timeout_ms = 300 }
        local v, err = s:get("x")
        assert.is_nil(v)
        assert.equal("network", err.type)
        assert.is_true(err.retryable)
        assert.falsy(tostring(err):find("hunter2", 1, true))
        local ok, err2 = s:add("x", "1")
        assert.is_nil(ok)
        assert.equal("network", err2.type)
        assert.falsy(tostring(s):find("hunter2", 1, true))
        for k, v2 in pairs(s) do assert.falsy(tostring(v2):find("hunter2", 1, true), k) end
    end)

    it("a password the server asks for", function()
        srv:cli("CONFIG", "SET", "requirepass", "s3cret-pass")
        local s = store.redis{ port = srv.port, password = "s3cret-pass" }
        local ok, err = s:set("auth", "yes")
        srv:cli("-a", "s3cret-pass", "CONFIG", "SET", "requirepass", "")
        assert.is_true(ok, err and tostring(err))
        s:close()
    end)

    it("misuse raises naming the function", function()
        local s = store.memory()
        util.assert_raises("luapay.store.get: bad argument #1 'key' (a non-empty string expected)", s.get, s, nil)
        util.assert_raises("luapay.store.set: bad argument #3 'ttl' (seconds > 0 expected)", s.set, s, "k", "v", -1)
        util.assert_raises("luapay.store.lock: bad argument #2 'ttl' (seconds > 0 expected)", s.lock, s, "k")
        util.assert_raises("luapay.store.redis: option 'hots' is unknown", store.redis, { hots = "x" })
    end)
end)
