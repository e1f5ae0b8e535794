-- The luapay command: help, exit codes, configuration, the background
-- sandbox and the REPL. Provider subcommands are specified with each provider.
local cli = require "luapay.cli"
local core = require "luapay.core"

local luapay = require("support.cli").run

describe("luapay command", function()
    it("prints its help, with the commands and the exit codes", function()
        local out, _, code = luapay("--help")
        assert.equal(0, code)
        for _, word in ipairs({ "sandbox start|stop|status", "sign <provider>", "verify <provider>", "url <kind>",
            "call <provider> <method>", "export begateway|trustly-na", "repl", "exit codes" }) do
            assert.truthy(out:find(word, 1, true), word)
        end
    end)

    it("prints its version with --version", function()
        local out, err, code = luapay("--version")
        assert.equal(0, code, err)
        assert.equal("luapay " .. require("luapay").VERSION .. "\n", out)
    end)

    it("has --help on every subcommand", function()
        for _, name in ipairs(cli.ORDER) do
            local out, _, code = luapay(name .. " --help")
            assert.equal(0, code, name)
            assert.matches("^usage: luapay " .. name, out)
        end
    end)

    it("answers a usage error with one line and exit 2", function()
        local out, err, code = luapay("bogus")
        assert.equal(2, code)
        assert.equal("", out)
        assert.equal("luapay: unknown command 'bogus' (try luapay --help)\n", err)
        err, code = select(2, luapay("sign no-such-provider"))
        assert.equal(2, code)
        assert.matches("^luapay: unknown provider 'no%-such%-provider'", err)
        assert.equal(1, select(2, err:gsub("\n", "")))
        code = select(3, luapay(""))
        assert.equal(2, code)
    end)

    -- Runs the command on a pseudo-terminal (util-linux's script): stdout
    -- and stderr are the terminal, as for someone typing it.
    local function on_terminal(args, env)
        local p = io.popen(("env -u LD_PRELOAD LUAPAY_CONFIG=/nonexistent %s script -qec %q /dev/null </dev/null")
            :format(env or "", "bin/luapay " .. args))
        local out = p:read("*a")
        p:close()
        return (out:gsub("\r\n", "\n"))
    end
    local creds = "LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=s3cret-value"
    -- A file of this run's own: suites under two Lua versions may run at once in one checkout.
    local request = os.tmpname()

    it("prints readably on a terminal, keys in colour; never colour with NO_COLOR", function()
        local f = assert(io.open(request, "wb"))
        f:write('{"general":{"project_id":1625,"payment_id":"p-1"}}')
        f:close()
        finally(function() os.remove(request) end)
        local out = on_terminal("sign ecommpay --explain " .. request, creds)
        assert.matches('\27%[36msignature\27%[0m = "', out)
        assert.matches('string_to_sign\27%[0m = "general:payment_id:p%-1;general:project_id:1625"', out)
        out = on_terminal("sign ecommpay --explain " .. request, creds .. " NO_COLOR=1")
        assert.is_nil(out:find("\27", 1, true), out)
        assert.matches('\n  string_to_sign = "general:payment_id:p%-1;general:project_id:1625"', out)
        local err = on_terminal("sign nosuch", "NO_COLOR=x")
        assert.matches("^luapay: unknown provider", err)
        err = on_terminal("sign nosuch")
        assert.matches("^\27%[1;31mluapay:\27%[0m unknown provider", err)
    end)

    it("prints JSON with --json, and whenever its output is not a terminal", function()
        local f = assert(io.open(request, "wb"))
        f:write('{"general":{"project_id":1625,"payment_id":"p-1"}}')
        f:close()
        finally(function() os.remove(request) end)
        local out = on_terminal("sign ecommpay --json --explain " .. request, creds)
        assert.equal("general:payment_id:p-1;general:project_id:1625", core.json_decode(out).string_to_sign)
        out = luapay("sign ecommpay --explain " .. request, nil, "LUAPAY_CONFIG=/nonexistent " .. creds)
        assert.equal("general:payment_id:p-1;general:project_id:1625", core.json_decode(out).string_to_sign)
        for _, name in ipairs({ "sandbox", "sign", "verify", "url", "call", "export" }) do
            assert.matches("%[%-%-json%]", (luapay(name .. " --help")), name)
        end
    end)

    it("exits 130 on Ctrl-C (SIGINT) without an error, even while it waits for standard input", function()
        local dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir " .. dir))
        finally(function() os.execute("rm -rf " .. dir) end)
        -- A writer that never writes keeps the command waiting on its input.
        local p = io.popen(([[
            mkfifo %s/in; sleep 8 > %s/in & w=$!
            env -u LD_PRELOAD LUAPAY_CONFIG=/nonexistent bin/luapay call trustly Balance - < %s/in > %s/out 2> %s/err & pid=$!
            sleep 1; kill -INT $pid; wait $pid; echo "exit $?"; kill $w 2>/dev/null]])
            :format(dir, dir, dir, dir, dir))
        local status = p:read("*a")
        p:close()
        assert.equal("exit 130\n", status)
        assert.equal("", require("support.util").read(dir .. "/err"))
        assert.equal("", require("support.util").read(dir .. "/out"))
    end)

    it("core.exit_on_interrupt refuses a status that is not one", function()
        assert.has_error(function() core.exit_on_interrupt(300) end, "exit_on_interrupt: bad argument #1 'status' (0 to 255 expected)")
        assert.has_error(function() core.exit_on_interrupt(-1) end)
    end)

    it("starts a background sandbox, reports it, and stops it leaving nothing running", function()
        local out, err, code = luapay("sandbox start")
        assert.equal(0, code, err)
        local started = core.json_decode(out)
        assert.matches("^http://127%.0%.0%.1:%d+$", started.url)
        out, err, code = luapay("sandbox status")
        assert.equal(0, code, err)
        assert.equal(started.url, core.json_decode(out).url)
        out, err, code = luapay("sandbox start") -- already running: the same one
        assert.equal(0, code, err)
        assert.equal(started.url, core.json_decode(out).url)
        err, code = select(2, luapay("sandbox stop"))
        assert.equal(0, code, err)
        err, code = select(2, luapay("sandbox status"))
        assert.equal(1, code)
        assert.matches("no sandbox is running", err)
    end)

    it("runs a REPL that prints values readably and masks secrets", function()
        local out, err, code = luapay("repl",
            'x = 20 + 1\nx * 2\nfunction twice(a)\nreturn a * 2\nend\ntwice(4), { password = "hunter2", id = 7 }\nerror("boom")\n')
        assert.equal(0, code)
        assert.equal("", err) -- every provider's client was configured
        assert.truthy(out:find("clients for the sandbox: begateway_client, gate, trustly_client, trustly_na_client, trustpay_client\n",
            1, true), out)
        assert.truthy(out:find("luapay> 42\n", 1, true))
        assert.truthy(out:find("8\t{\n  id = 7,\n  password = \"***\",\n}", 1, true))
        assert.truthy(out:find("repl:1: boom", 1, true))
        assert.is_nil(out:find("hunter2", 1, true))
    end)
end)

describe("luapay configuration", function()
    local path = os.tmpname()
    teardown(function() os.remove(path) end)

    local function env_of(vars)
        return function(name) return vars[name] end
    end

    it("reads the config file as a plain table, then the environment", function()
        local f = io.open(path, "w")
        f:write('return { trustly = { username = "file-user", password = "file-pw" } }')
        f:close()
        local env = env_of{ LUAPAY_CONFIG = path, LUAPAY_TRUSTLY_PASSWORD = "env-pw" }
        local config = cli.load_config(env)
        local s = cli.provider_settings(config, "trustly", { "username", "password" }, env)
        assert.same({ username = "file-user", password = "env-pw" }, s)
    end)

    it("gives the config file no access to globals", function()
        local f = io.open(path, "w")
        f:write('return { x = os.getenv("HOME") }')
        f:close()
        local ok, err = pcall(cli.load_config, env_of{ LUAPAY_CONFIG = path })
        assert.is_false(ok)
        assert.matches("must return a table", err.message)
    end)

    it("names missing credentials and the variables for them, never a value", function()
        local ok, err = pcall(cli.require_settings, { username = "u", password = "s3cret" }, "trustly",
            { "username", "password", "private_key" })
        assert.is_false(ok)
        assert.matches("missing credentials for trustly: private_key %(LUAPAY_TRUSTLY_PRIVATE_KEY%)", err.message)
        assert.is_nil(err.message:find("s3cret", 1, true))
    end)
end)
