-- Installing luapay each documented way (README, "Build and install") into a
-- temporary prefix, then using it as a user would from outside the checkout
-- (cd /tmp): `luapay sandbox start`, a scripted `luapay repl`, an example,
-- `luapay sandbox stop`. And the sandbox's own part of it: paths from the
-- real working directory, and nothing of the caller's Lua in nginx's.
local util = require "support.util"

local function capture(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    local code = tonumber(out:match("exit=(%d+)%s*$"))
    return out:gsub("exit=%d+%s*$", ""), code
end

local ROOT = capture("pwd -P"):gsub("%s+$", "")
-- Nothing of this run's environment reaches the commands: no sanitizer
-- runtime, no Lua paths but those each step sets.
local CLEAN = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS"
    .. " -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT "

local function sh_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function tmpdir()
    return (capture("mktemp -d /tmp/luapay-install.XXXXXX"):gsub("%s+$", ""))
end

-- Runs a Lua script in a subprocess of this suite's Lua, from dir, with env
-- (text "NAME=value ...") and the checkout's modules and plain core.
local function run_lua(dir, env, script)
    local path = os.tmpname()
    util.write(path, script)
    local out, code = capture(("cd %s && %s LUA_PATH=%s LUA_CPATH=%s %s %s %s"):format(
        sh_quote(dir), CLEAN, sh_quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
        sh_quote(ROOT .. "/" .. util.PLAIN_BUILD .. "/?.so;;"), env, util.LUA, path))
    os.remove(path)
    return out, code
end

local SANDBOX_ECHO = [[
local sandbox = require "luapay.sandbox"
local core = require "luapay.core"
local sb, err = sandbox.start{ routes = { ["/echo/"] = "support.echo_handler" }, lua_path = "spec/?.lua" }
if not sb then print("start failed: " .. err) os.exit(1) end
local res, rerr = core.http_client{}:request{ url = sb.url .. "/echo/200/x" }
local errors = table.concat(sb:errors(), "\n")
sb:stop()
print(res and ("HTTP " .. res.status) or rerr.message, errors)
]]

describe("the sandbox", function()
    it("builds paths from the real working directory, not from a stale $PWD", function()
        local out, code = run_lua(ROOT, "PWD=/nonexistent", SANDBOX_ECHO)
        assert.equal(0, code, out)
        assert.matches("^HTTP 200", out)
    end)

    it("keeps the caller's LUA_PATH and LUA_CPATH (its Lua's, not nginx's LuaJIT's) out of nginx", function()
        -- this Lua's own C modules first, as `eval "$(luarocks path)"` sets
        -- them: nginx's LuaJIT must not load their cjson.so
        local cpath = ROOT .. "/" .. util.PLAIN_BUILD .. "/?.so;" .. package.cpath
        local out, code = run_lua(ROOT, "LUA_CPATH=" .. sh_quote(cpath) .. " LUA_PATH=" .. sh_quote(package.path),
            SANDBOX_ECHO)
        assert.equal(0, code, out)
        assert.matches("^HTTP 200", out)
    end)
end)

describe("luapay repl under this suite's Lua (what an install for it runs)", function()
    it("reads a statement over several lines and prints whole numbers as integers", function()
        local input = os.tmpname()
        util.write(input, "x = 2500 +\n  1\nprint(x)\nx - 1\n")
        local out, code = capture(("cd %s && %s LUAPAY_CONFIG=/nonexistent %s bin/luapay repl < %s"):format(
            sh_quote(ROOT), CLEAN, util.LUA, input))
        os.remove(input)
        assert.equal(0, code, out)
        assert.is_nil(out:find("<eof>", 1, true), out)
        assert.matches("> 2501\n", out, 1, true)           -- print, whichever Lua
        assert.matches("luapay> 2500\n", out, 1, true)     -- the REPL's own output
    end)
end)

-- The installs compile the core and write whole prefixes: they run once,
-- in the plain Lua 5.4 suite (the commands install for Lua 5.4), and the
-- LuaJIT/OpenResty way once, in the LuaJIT suite.
local build = os.getenv("LUAPAY_BUILD") or ""
local in_54 = util.LUA == "lua5.4" and not build:find("asan", 1, true)
local in_jit = util.LUA == "luajit"

-- The user's session from /tmp: start the sandbox, a scripted REPL, an
-- example, stop. setup is shell text that puts `luapay` and the modules
-- on the paths (as the README says for that way of installing).
local function use_from_tmp(setup, lua)
    local state = os.tmpname()
    local example = os.tmpname() .. ".lua"
    util.write(example, util.read(ROOT .. "/examples/reconcile.lua"))
    local script = table.concat({
        "cd /tmp", setup,
        "export LUAPAY_SANDBOX_STATE=" .. sh_quote(state),
        "luapay sandbox start >/dev/null || exit 11",
        "printf '%s\\n' 'print(core.to_decimal(150, \"EUR\"))' 'trustly_client:balance()' | luapay repl || exit 12",
        lua .. " " .. sh_quote(example) .. " 2024-06-03 || exit 13",
        "luapay sandbox stop || exit 14",
    }, "\n")
    local out, code = capture(CLEAN .. "sh -c " .. sh_quote(script))
    os.remove(state)
    os.remove(example)
    return out, code
end

local function assert_session(out, code)
    assert.equal(0, code, out)
    assert.matches("1.50", out, 1, true)             -- the REPL's core
    assert.matches("balance", out, 1, true)          -- a client on the sandbox
    assert.matches("order without payment", out, 1, true) -- the example's report
    assert.matches("sandbox stopped", out, 1, true)
end

-- A copy of what a release tarball holds, so the checkout gets no objects.
local function source_copy()
    local dir = tmpdir()
    assert(os.execute(("cp -r %s/csrc %s/lua %s/bin %s/examples %s/luapay-scm-1.rockspec %s/Makefile %s/scripts %s"):format(
        ROOT, ROOT, ROOT, ROOT, ROOT, ROOT, ROOT, dir)))
    return dir
end

describe("installed with luarocks for Lua 5.4", function()
    local it54 = in_54 and it or pending
    it54("gives a library, the command, the sandbox (with its LuaJIT core) and the REPL outside the checkout", function()
        local src, tree = source_copy(), tmpdir()
        local out, code = capture(("cd %s && %s luarocks --lua-version=5.4 make --deps-mode=none --tree=%s luapay-scm-1.rockspec")
            :format(src, CLEAN, tree))
        assert.equal(0, code, out)
        assert.is_true(util.exists(tree .. "/lib/lua/5.4/luapay/luajit/luapay/core.so"), "no LuaJIT core installed")
        out, code = use_from_tmp(('eval "$(luarocks --lua-version=5.4 --tree=%s path)"'):format(tree), "lua5.4")
        assert_session(out, code)
        os.execute("rm -rf " .. src .. " " .. tree)
    end)
end)

describe("installed with make install PREFIX=", function()
    local it54 = in_54 and it or pending
    it54("gives a command that finds its modules, also through a symlink, and a working sandbox", function()
        local src, prefix = source_copy(), tmpdir()
        local out, code = capture(("cd %s && %s LUAPAY_SKIP_SETUP=1 make -s install LUA=lua5.4 PREFIX=%s"):format(src, CLEAN, prefix))
        assert.equal(0, code, out)
        os.execute("rm -rf " .. src) -- nothing may point back into the sources
        out, code = use_from_tmp(("export PATH=%s/bin:$PATH LUA_PATH=%s LUA_CPATH=%s"):format(prefix,
            sh_quote(prefix .. "/share/lua/5.4/?.lua;" .. prefix .. "/share/lua/5.4/?/init.lua;;"),
            sh_quote(prefix .. "/lib/lua/5.4/?.so;;")), "lua5.4")
        assert_session(out, code)
        -- the command alone, with no Lua paths set, and through a symlink
        local link = tmpdir()
        os.execute(("ln -s %s/bin/luapay %s/luapay"):format(prefix, link))
        for _, cmd in ipairs{ prefix .. "/bin/luapay", link .. "/luapay" } do
            out, code = capture(("cd /tmp && %s %s --help"):format(CLEAN, cmd))
            assert.equal(0, code, cmd .. ": " .. out)
            assert.matches("usage: luapay", out, 1, true)
        end
        os.execute("rm -rf " .. prefix .. " " .. link)
    end)
end)

describe("installed with luarocks for LuaJIT (Lua 5.1's ABI, as OpenResty loads it)", function()
    local itjit = in_jit and it or pending
    itjit("gives LuaJIT the library and a sandbox outside the checkout", function()
        local src, tree = source_copy(), tmpdir()
        local out, code = capture(("cd %s && %s luarocks --lua-version=5.1 make --deps-mode=none --tree=%s luapay-scm-1.rockspec")
            :format(src, CLEAN, tree))
        assert.equal(0, code, out)
        local script = [[
assert(require("luapay").trustly)
local sb = assert(require("luapay.sandbox").start{ routes = require("luapay.sandbox.providers").routes() })
local adapter = require "luapay.cli.trustly"
local res, err = adapter.client(adapter.sandbox_settings(sb.url .. "/trustly")):balance()
sb:stop()
print(res and "balance " .. type(res) or tostring(err))
]]
        util.write(tree .. "/try.lua", script)
        out, code = capture(('cd /tmp && %s sh -c %s'):format(CLEAN,
            sh_quote(('eval "$(luarocks --lua-version=5.1 --tree=%s path)"; luajit %s/try.lua'):format(tree, tree))))
        assert.equal(0, code, out)
        assert.matches("balance table", out, 1, true)
        os.execute("rm -rf " .. src .. " " .. tree)
    end)
end)
