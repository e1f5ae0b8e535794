-- The rockspec must build what the Makefile builds: every C source of the
-- core and every Lua module, so `luarocks make` gives the same library.
-- And every place that knows the providers follows the one registry,
-- luapay.providers (ARCHITECTURE.md, "Adding a provider").
local util = require "support.util"

local function lines_of(cmd)
    local out, p = {}, io.popen(cmd)
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    return out
end

local function rockspec_modules()
    local source, spec = util.read("luapay-scm-1.rockspec"), {}
    local chunk = setfenv and setfenv(assert(loadstring(source)), spec) or assert(load(source, "rockspec", "t", spec))
    chunk()
    return spec.build.modules
end

local exists = util.exists

describe("luapay-scm-1.rockspec", function()
    local modules = rockspec_modules()

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

describe("the provider registry (luapay.providers)", function()
    local registry = require "luapay.providers"
    local modules = rockspec_modules()

    -- Every problem found, each naming the provider and what is missing,
    -- so one run says everything a new provider still needs.
    local function check(problems, ok, ...)
        if not ok then problems[#problems + 1] = string.format(...) end
    end
    local function assert_none(problems)
        assert.equal("", table.concat(problems, "\n"))
    end

    it("lists each provider once, with a name usable as a module, a path and a command word", function()
        local problems, seen = {}, {}
        for i, entry in ipairs(registry.LIST) do
            local name = tostring(entry.name)
            check(problems, type(entry.name) == "string" and entry.name:match("^[a-z][a-z0-9_]*$"),
                "entry %d: name %s is not lower-case letters, digits and _", i, name)
            check(problems, type(entry.title) == "string" and entry.title ~= "", "%s: no title", name)
            check(problems, not seen[name], "%s: listed twice", name)
            check(problems, registry.NAMES[i] == entry.name and registry.BY_NAME[name] == entry,
                "%s: NAMES or BY_NAME disagrees with LIST", name)
            seen[name] = true
        end
        check(problems, #registry.NAMES == #registry.LIST, "NAMES has entries LIST does not")
        assert_none(problems)
    end)

    it("has, for each provider, its module, its fake and its command adapter, installed by the rockspec", function()
        local problems = {}
        for _, name in ipairs(registry.NAMES) do
            for _, part in ipairs{ { "luapay.", "its module" }, { "luapay.sandbox.", "its fake" },
                                   { "luapay.cli.", "its command adapter" } } do
                local module = part[1] .. name
                local file = "lua/" .. module:gsub("%.", "/") .. ".lua"
                local package_file = file:gsub("%.lua$", "/init.lua") -- a module split into a directory
                if not exists(file) and exists(package_file) then file = package_file end
                check(problems, exists(file), "%s: %s %s is missing", name, part[2], file)
                check(problems, modules[module] == file, "%s: the rockspec does not install %s as %s", name, module, file)
            end
        end
        assert_none(problems)
    end)

    it("is what require 'luapay', the sandbox, the command and the REPL load", function()
        local luapay = require "luapay"
        local sandbox_providers = require "luapay.sandbox.providers"
        local cli = require "luapay.cli"
        cli.load_providers()
        local problems, routes = {}, sandbox_providers.routes()
        assert.equal(registry.NAMES, sandbox_providers.NAMES)
        for _, name in ipairs(registry.NAMES) do
            local ok, module = pcall(require, "luapay." .. name)
            check(problems, ok, "%s: luapay.%s does not load", name, name)
            check(problems, not ok or luapay[name] == module, "%s: require 'luapay' has no lazy field %s", name, name)
            check(problems, not ok or type(module) == "table" and type(module.new) == "function",
                "%s: luapay.%s has no new constructor", name, name)
            local fake = routes["/" .. name .. "/"]
            check(problems, fake == "luapay.sandbox." .. name, "%s: the sandbox does not host it at /%s/", name, name)
            local got, handler = pcall(require, "luapay.sandbox." .. name)
            check(problems, got and type(handler) == "table" and type(handler.handle) == "function",
                "%s: luapay.sandbox.%s has no handle(path, config)", name, name)
            local adapter = cli.providers[name]
            check(problems, adapter ~= nil and adapter.name == name,
                "%s: the command has no adapter luapay.cli.%s named %s", name, name, name)
            check(problems, adapter ~= nil and type(adapter.client) == "function"
                and type(adapter.sandbox_settings) == "function",
                "%s: luapay.cli.%s lacks client or sandbox_settings, so the REPL has no client for it", name, name)
        end
        assert_none(problems)
    end)

    it("names every provider in the tree", function()
        -- A module luapay.<name> with a fake or a command adapter of the
        -- same name is a provider (the sandbox's and the command's own
        -- helpers, such as router or export, have no luapay.<name>; the
        -- sandbox's list of fakes, providers, reads the registry).
        local problems = {}
        for _, dir in ipairs{ "sandbox", "cli" } do
            for _, file in ipairs(lines_of("find lua/luapay/" .. dir .. " -maxdepth 1 -name '*.lua' | sort")) do
                local name = file:match("([^/]+)%.lua$")
                local is_provider = exists("lua/luapay/" .. name .. ".lua") or exists("lua/luapay/" .. name .. "/init.lua")
                check(problems, name == "providers" or not is_provider or registry.BY_NAME[name],
                    "%s and lua/luapay/%s.lua make %s a provider, but lua/luapay/providers.lua does not list it",
                    file, name, name)
            end
        end
        assert_none(problems)
    end)
end)

describe("the command's help (luapay.cli)", function()
    it("lists the providers with an export and the URL kinds as the registry's adapters offer them", function()
        local registry = require "luapay.providers"
        local cli = require "luapay.cli"
        cli.load_providers()
        local exporters = {}
        for _, name in ipairs(registry.NAMES) do
            if cli.providers[name].export then exporters[#exporters + 1] = (name:gsub("_", "-")) end
        end
        local words = table.concat(exporters, "|")
        assert.truthy(cli.commands.export.usage:find("luapay export " .. words .. " --from", 1, true), cli.commands.export.usage)
        assert.truthy(cli.commands.export.help:find("luapay export " .. words .. " --from", 1, true))
        for _, name in ipairs(registry.NAMES) do
            for kind in pairs(cli.providers[name].urls or {}) do
                assert.truthy(cli.commands.url.help:find(kind, 1, true), kind)
            end
        end
        for _, command in pairs(cli.commands) do
            assert.is_nil(command.usage:find("{", 1, true), command.usage) -- every list filled in
            assert.is_nil(command.help:find("{exporters}", 1, true))
            assert.is_nil(command.help:find("{url kinds}", 1, true))
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
        assert.is_true(make("install"))
        local wanted = { "/opt/lp/lib/lua/5.4/luapay/core.so", "/opt/lp/bin/luapay" }
        for _, file in ipairs(lines_of("find lua/luapay -name '*.lua' | sort")) do
            wanted[#wanted + 1] = "/opt/lp/share/lua/5.4/" .. file:gsub("^lua/", "")
        end
        for _, path in ipairs(wanted) do assert.is_true(exists(dest .. path), path .. " not installed") end
        assert.is_true(make("uninstall"))
        for _, path in ipairs(wanted) do assert.is_false(exists(dest .. path), path .. " left behind") end
        os.execute("rm -rf " .. dest)
    end)
end)
