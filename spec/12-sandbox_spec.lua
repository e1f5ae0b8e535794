-- The sandbox's own life cycle: nginx on a free loopback port from a
-- generated prefix, handler modules, the error log, a clean stop.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local util = require "support.util"

-- Running, as opposed to gone or a zombie waiting for init to reap it.
local function is_alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return false end
    local stat = f:read("*a")
    f:close()
    return stat:match("^%d+ %b() (%a)") ~= "Z"
end

local function exists(path)
    local ok = os.execute("test -e " .. path)
    return ok == true or ok == 0
end

describe("luapay.sandbox", function()
    it("starts nginx on loopback, routes to handlers, and stops leaving no process or file", function()
        local sb = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua", workers = 2 })
        assert.matches("^http://127%.0%.0%.1:%d+$", sb.url)
        local pids = sb:pids()
        assert.equal(3, #pids) -- the master and two workers
        for _, pid in ipairs(pids) do assert.is_true(is_alive(pid)) end

        local c = core.http_client{}
        local res = assert(c:request{ url = sb.url .. "/b/ok" })
        assert.equal("fine", res.body)
        res = assert(c:request{ url = sb.url .. "/nowhere" })
        assert.equal(404, res.status)
        c:close()

        local prefix = sb.prefix
        assert.is_true(sb:stop())
        for _, pid in ipairs(pids) do assert.is_false(is_alive(pid), "pid " .. pid .. " survived") end
        assert.is_false(exists(prefix))
        assert.is_true(sb:stop()) -- stopping twice is harmless
    end)

    it("hands a failing handler's error to the spec through the error log", function()
        local sb = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua" })
        local res = assert(core.http_client{}:request{ url = sb.url .. "/b/raise" })
        assert.equal(500, res.status)
        local errors = sb:errors()
        assert(sb:stop())
        assert.equal(1, #errors)
        assert.matches("handler failed on purpose", errors[1])
    end)

    it("starts on a port another process holds for a moment, and does not count nginx's bind retries as errors", function()
        -- nginx retries a taken port 5 times, 0.5 s apart, logging each miss
        -- as [emerg]: a port freed meanwhile gives a sandbox that runs. The
        -- holder lets it go after nginx's first miss (not after a fixed time,
        -- which a slow start-up on a busy machine outlasted).
        local port = sandbox.random_port()
        local holder = assert(io.popen(("env -u LD_PRELOAD lua5.4 spec/support/port_holder.lua %d"):format(port)))
        assert.equal("1", holder:read("*l"))
        local sb = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua",
                                         port = port })
        holder:close()
        assert.matches("Address already in use", sb:error_log(), 1, true)
        local res = assert(core.http_client{}:request{ url = sb.url .. "/b/raise" })
        assert.equal(500, res.status)
        local errors = sb:errors()
        assert(sb:stop())
        assert.equal(1, #errors) -- the handler's error, and no bind retry
        assert.matches("handler failed on purpose", errors[1])
    end)

    it("fails to start with nginx's reason when a handler module cannot load, leaving nothing behind", function()
        -- Sandbox masters whose prefix is gone: strays of a failed start.
        -- (Other sandboxes on the machine keep their prefix while they run.)
        local function strays()
            local list = {}
            for line in io.popen("env -u LD_PRELOAD pgrep -a -f luapay-sandbox"):lines() do
                local prefix = line:match("%-p%s+(/tmp/luapay%-sandbox%.%w+)")
                if prefix and not io.open(prefix .. "/conf/nginx.conf") then list[#list + 1] = line end
            end
            return list
        end
        local before = strays()
        local sb, err = sandbox.start{ routes = { ["/x/"] = "support.no_such_module" }, lua_path = "spec/?.lua" }
        assert.is_nil(sb)
        assert.matches("nginx did not start", err)
        assert.matches("support.no_such_module", err)
        assert.same(before, strays())
    end)

    it("runs two sandboxes side by side on different ports", function()
        local a = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua" })
        local b = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua" })
        assert.are_not.equal(a.port, b.port)
        local c = core.http_client{}
        assert.equal("fine", c:request{ url = a.url .. "/b/ok" }.body)
        assert.equal("fine", c:request{ url = b.url .. "/b/ok" }.body)
        assert(a:stop())
        assert(b:stop())
    end)

    it("passes plain data to the handlers as Lua source", function()
        local data = { name = "x\"y\n\\z", n = 42, f = 1.5, list = { 1, "two", true }, nested = { deep = { ok = false } } }
        local chunk = assert((loadstring or load)("return " .. sandbox.serialize(data)))
        assert.same(data, chunk())
    end)
end)

describe("a detached sandbox", function()
    it("outlives the process that started it and is stopped from another", function()
        local script = [[
            local sandbox = require "luapay.sandbox"
            local sb = assert(sandbox.start{ routes = { ["/b/"] = "support.broken_handlers" }, lua_path = "spec/?.lua", detach = true })
            io.write(require("luapay.core").json_encode(sb:state()))
        ]]
        -- the other process runs without the sanitizer runtime, so the plain build
        local build = util.PLAIN_BUILD
        local cmd = ("env -u LD_PRELOAD LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='%s/?.so;;' %s -e %q"):format(
            build, util.LUA, script)
        local p = io.popen(cmd)
        local state = core.json_decode(p:read("*a"))
        p:close()
        assert.is_table(state)
        local sb = assert(sandbox.attach(state))
        assert.equal("fine", core.http_client{}:request{ url = sb.url .. "/b/ok" }.body)
        assert.is_true(sb:stop())
        assert.is_false(is_alive(state.pid))
        assert.is_false(exists(state.prefix))
        local again, err = sandbox.attach(state)
        assert.is_nil(again)
        assert.matches("not running", err)
    end)
end)

describe("the sandbox's bundled test keys", function()
    it("are the test key pairs of spec/fixtures, and they match each other", function()
        local keys = require "luapay.sandbox.test_keys"
        for _, name in ipairs({ "merchant_private", "merchant_public", "provider_private", "provider_public" }) do
            assert.equal(util.fixture("keys/" .. name .. ".pem"):gsub("%s+$", ""), (keys[name]:gsub("%s+$", "")))
        end
        for _, who in ipairs({ "merchant", "provider" }) do
            local priv = assert(core.pkey(keys[who .. "_private"]))
            local pub = assert(core.pkey(keys[who .. "_public"]))
            assert.is_true(pub:verify("m", priv:sign("m", "sha1"), "sha1"))
        end
    end)
end)
