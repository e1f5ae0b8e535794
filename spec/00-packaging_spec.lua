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
