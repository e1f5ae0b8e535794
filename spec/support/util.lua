--- Small helpers shared by the specs.
local util = {}

-- The interpreter running this suite (lua5.1 ... lua5.4, luajit), for the
-- specs that start another process, and its core: the suite's own build
-- (LUAPAY_BUILD: Lua 5.1's is built with HMAC=evp), or without sanitizers
-- (a subprocess never gets the ASan runtime preloaded).
util.LUA = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
local suite_build = os.getenv("LUAPAY_BUILD")
util.PLAIN_BUILD = suite_build and not suite_build:find("asan", 1, true) and suite_build or "build/" .. util.LUA

function util.fromhex(h)
    return (h:gsub("%s", ""):gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

function util.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function util.write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

function util.exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
end

function util.fixture(name)
    return util.read("spec/fixtures/" .. name)
end

function util.json_fixture(name)
    return require("cjson").decode(util.fixture(name))
end

--- Asserts that f(...) raises an error ending with `expected` (luaL_error
-- prefixes the caller's position).
function util.assert_raises(expected, f, ...)
    local check = require "luassert" -- a module does not see busted's spec environment
    local ok, err = pcall(f, ...)
    check.is_false(ok)
    check.is_string(err)
    check.equal(expected, err:sub(-#expected), "got: " .. err)
end

--- Stops a sandbox for a spec's teardown: it must stop cleanly and must
-- have logged nothing at level error or worse (the lines are the message).
function util.stop_sandbox(sb)
    local check = require "luassert"
    local problems = sb:errors()
    local stopped, err = sb:stop()
    check.is_true(stopped, err)
    check.same({}, problems, "the sandbox logged errors:\n" .. table.concat(problems, "\n"))
end

--- Polls until done(), at most `seconds` (20), 20 ms apart; returns done()'s
-- last value (false when time ran out). For fakes that finish asynchronously.
function util.wait_for(done, seconds)
    local core = require "luapay.core"
    local deadline = core.monotime() + (seconds or 20)
    while true do
        local v = done()
        if v or core.monotime() > deadline then return v end
        core.sleep(0.02)
    end
end

return util
