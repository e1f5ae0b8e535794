-- The rockspec must build what the Makefile builds: every C source of the
-- core and every Lua module, so `luarocks make` gives the same library.
local util = require "support.util"

local function lines_of(cmd)
    local out, p = {}, io.popen(cmd)
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    return out
end

describe("luapay-scm-1.rockspec", function()
    local source, spec = util.read("luapay-scm-1.rockspec"), {}
    local chunk = setfenv and setfenv(assert(loadstring(source)), spec) or assert(load(source, "rockspec", "t", spec))
    chunk()
    local modules = spec.build.modules

    it("compiles every C source of the core", function()
        local listed = {}
        for _, src in ipairs(modules["luapay.core"].sources) do listed[src] = true end
        for _, src in ipairs(lines_of("ls csrc/*.c")) do
            assert.is_true(listed[src], src .. " is missing from the rockspec")
        end
    end)

    it("installs every Lua module under its name", function()
        for _, file in ipairs(lines_of("find lua/luapay -name '*.lua' | sort")) do
            local name = file:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")
            assert.equal(file, modules[name], name .. " is missing from the rockspec")
        end
    end)
end)

describe("make install", function()
    it("honours PREFIX and DESTDIR, installs every module and the command, and uninstalls them", function()
        local p = io.popen("mktemp -d /tmp/luapay-install.XXXXXX")
        local dest = p:read("*l")
        p:close()
        local function make(target)
            local ok = os.execute(("env -u LD_PRELOAD make -s %s LUA=lua5.4 PREFIX=/opt/lp DESTDIR=%s >/dev/null 2>&1")
                :format(target, dest))
            return ok == true or ok == 0
        end
        local function exists(path)
            local f = io.open(dest .. path, "rb")
            if f then f:close() end
            return f ~= nil
        end
        assert.is_true(make("install"))
        local wanted = { "/opt/lp/lib/lua/5.4/luapay/core.so", "/opt/lp/bin/luapay" }
        for _, file in ipairs(lines_of("find lua/luapay -name '*.lua' | sort")) do
            wanted[#wanted + 1] = "/opt/lp/share/lua/5.4/" .. file:gsub("^lua/", "")
        end
        for _, path in ipairs(wanted) do assert.is_true(exists(path), path .. " not installed") end
        assert.is_true(make("uninstall"))
        for _, path in ipairs(wanted) do assert.is_false(exists(path), path .. " left behind") end
        os.execute("rm -rf " .. dest)
    end)
end)
