-- `luapay repl`: driven through a real pseudo-terminal (util-linux's
-- `script`, on every Debian system) as someone typing, and scripted (its
-- input not a terminal). Line editing, history across sessions, TAB
-- completion, help(), Ctrl-C, every way of leaving stopping the sandbox's
-- nginx, and no client's secret in anything it prints.
local cli = require "luapay.cli"
local core = require "luapay.core"
local repl = require "luapay.cli.repl"
local util = require "support.util"

cli.load_providers()

-- Every secret the session's clients hold (the sandbox's test
-- credentials): each string, and of a key its longest body line.
local SECRETS = {}
for name, adapter in pairs(cli.providers) do
    local settings = adapter.sandbox_settings("http://127.0.0.1:1/" .. name)
    for _, field in ipairs(adapter.secrets) do
        local v = settings[field]
        if type(v) == "string" and #v >= 4 then
            local longest = ""
            for line in v:gmatch("[%w+/=]+") do
                if #line > #longest then longest = line end
            end
            SECRETS[#SECRETS + 1] = v:find("BEGIN", 1, true) and longest or v
        end
    end
end

local function assert_no_secret(text)
    assert.is_true(#SECRETS >= 5)
    for _, s in ipairs(SECRETS) do
        assert.is_nil(text:find(s, 1, true), "a secret shows: " .. s .. "\n" .. text)
    end
end

local function sh(cmd)
    local p = io.popen("env -u LD_PRELOAD " .. cmd)
    local out = p:read("*a")
    p:close()
    return out
end

-- Whether the nginx master of the sandbox under prefix is gone; waits up
-- to 10 s for it to go (the watcher sees a signal's end within a fraction
-- of a second).
local function nginx_gone(prefix)
    assert.matches("^/tmp/luapay%-sandbox%.", prefix)
    local deadline = core.monotime() + 10
    repeat
        if sh("pgrep -f -- '[n]ginx: master process .* -p " .. prefix .. " '") == "" then return true end
        core.sleep(0.1)
    until core.monotime() > deadline
    return false
end

local function tmpdir()
    return (sh("mktemp -d /tmp/luapay-repl-spec.XXXXXX"):gsub("%s+$", ""))
end

---------------------------------------------------------------------------
-- A terminal: the REPL under `script`, fed through a FIFO, its screen read
-- from a file.
---------------------------------------------------------------------------

local Term = {}
Term.__index = Term

-- env: extra "NAME=value ..." for the REPL.
local function terminal(env)
    local dir = tmpdir()
    sh("mkfifo " .. dir .. "/in")
    local cmd = ("%s bin/luapay repl"):format(util.LUA)
    os.execute(("(env -u LD_PRELOAD TERM=xterm LUAPAY_CONFIG=/nonexistent %s script -qfec %q /dev/null < %s/in > %s/out 2>&1 &"
        .. " echo $! > %s/pid; wait $!; echo $? > %s/rc) >/dev/null 2>&1 &"):format(env or "", cmd, dir, dir, dir, dir))
    local t = setmetatable({ dir = dir, input = assert(io.open(dir .. "/in", "wb")), seen = 0 }, Term)
    return t
end

-- The screen's text so far: without CR and terminal control sequences.
function Term:screen()
    local f = io.open(self.dir .. "/out", "rb")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    return (text:gsub("\27%[[%d;?]*[%a@]", ""):gsub("\r", ""))
end

function Term:send(keys)
    self.input:write(keys)
    self.input:flush()
end

-- Waits until text (plain) shows after what was already expected; returns
-- the screen from there.
function Term:expect(text, timeout)
    local deadline = core.monotime() + (timeout or 15)
    repeat
        local screen = self:screen()
        local at, to = screen:find(text, self.seen + 1, true)
        if at then
            local got = screen:sub(self.seen + 1, to)
            self.seen = to
            return got
        end
        core.sleep(0.05)
    until core.monotime() > deadline
    error(("%q never showed; the screen:\n%s"):format(text, self:screen():sub(self.seen + 1)), 2)
end

-- Types a line, waits for the next prompt and returns what came between.
function Term:line(text)
    self:send(text .. "\r")
    local got = self:expect("luapay> ")
    return got
end

-- The exit status, once the REPL ended (nil after timeout).
function Term:wait(timeout)
    local deadline = core.monotime() + (timeout or 15)
    repeat
        local f = io.open(self.dir .. "/rc", "rb")
        if f then
            local rc = tonumber(f:read("*a"))
            f:close()
            if rc then return rc end
        end
        core.sleep(0.05)
    until core.monotime() > deadline
end

-- Ends the session (a REPL a failed spec left running: killed).
function Term:close()
    pcall(self.input.close, self.input)
    if not self:wait(5) then
        local f = io.open(self.dir .. "/pid", "rb")
        local pid = f and tonumber(f:read("*a"))
        if f then f:close() end
        if pid then sh("pkill -KILL -P " .. pid) end
        self:wait(5)
    end
    os.execute("rm -rf " .. self.dir)
end

-- The prefix of the session's sandbox, asked at the prompt.
function Term:prefix()
    local got = self:line("sandbox.prefix")
    return assert(got:match('"(/tmp/luapay%-sandbox%.[%w]+)"'), got)
end

describe("luapay repl on a terminal", function()
    local hist_dir = tmpdir()
    local history = hist_dir .. "/state/luapay/history" -- its directory does not exist yet
    local env = "XDG_STATE_HOME=" .. hist_dir .. "/state"
    teardown(function() os.execute("rm -rf " .. hist_dir) end)

    it("edits lines, completes names with TAB, cancels a line with Ctrl-C and leaves no nginx after os.exit()", function()
        local t = terminal(env)
        finally(function() t:close() end)
        t:expect("luapay> ")
        local prefix = t:prefix()
        -- editing: a typo removed with backspace, a word inserted after Ctrl-A
        assert.matches("\n42\n", t:line("6 * 8\1277\1(\5 - 28) * 3"), 1, true)
        -- TAB: a method of a client, a module's function, a global
        t:send("trustly_client:de\t")
        t:expect("trustly_client:deposit")
        t:send("\3")
        t:expect("^C\n")
        t:expect("luapay> ")
        t:send("ecommpay.signa\t")
        t:expect("ecommpay.signature")
        t:send("\3")
        t:expect("luapay> ")
        t:send("trustly_cl\t.use\t\r")
        local got = t:expect("luapay> ")
        assert.matches('trustly_client.username\n"', got, 1, true)
        -- in the middle of a line: the word before the cursor
        assert.matches("\nfalse\n", t:line("trustly_client.de == nil" .. ("\27[D"):rep(7) .. "\t"), 1, true)
        -- Ctrl-C drops an unfinished chunk: the next line is a new one
        t:send("x = {\r")
        t:expect(">> ")
        t:send("\3")
        t:expect("luapay> ")
        got = t:line("6 * 7")
        assert.matches("\n42\n", got, 1, true)
        -- ... and the code running
        t:send('io.write("loop", "ing\\n") while true do end\r')
        t:expect("looping")
        t:send("\3")
        got = t:expect("luapay> ")
        assert.matches("interrupted!", got, 1, true)
        got = t:line("1 + 1")
        assert.matches("\n2\n", got, 1, true)
        t:send("os.exit(7)\r")
        assert.equal(7, t:wait())
        assert.is_true(nginx_gone(prefix))
        assert.is_nil(t:screen():find("internal error", 1, true))
    end)

    it("recalls the last session's lines with the up arrow, keeps none that holds a secret", function()
        local fresh = '"fresh-secret-' .. core.uuid4() .. '"'
        local t = terminal(env)
        t:expect("luapay> ")
        assert.matches('"first-2"', t:line('"first-" .. 1 + 1'), 1, true)
        t:line("pw = " .. fresh)                                          -- a literal a client will hold
        t:line("mine = ecommpay.new{ project_id = 7, secret = pw }")
        t:line("mine2 = ecommpay.new{ project_id = 7, secret = " .. fresh .. " }") -- holds it: never kept
        t:line("gate.secret")                                             -- names a secret, holds none: kept
        t:send("\4")
        assert.equal(0, t:wait())
        t:close()
        local kept = util.read(history)
        assert.matches('"first-" .. 1 + 1\n', kept, 1, true)
        assert.matches("mine = ecommpay.new{ project_id = 7, secret = pw }\ngate.secret\n", kept, 1, true)
        assert.is_nil(kept:find("fresh-secret", 1, true), kept)
        assert.is_nil(kept:find(require("luapay.sandbox.ecommpay").SECRET, 1, true), kept)

        t = terminal(env)
        finally(function() t:close() end)
        t:expect("luapay> ")
        t:send("\27[A\27[A\27[A")  -- up three: gate.secret, mine = ..., '"first-" .. 1 + 1'
        t:expect('"first-" .. 1 + 1')
        t:send("\r")
        assert.matches('"first-2"', t:expect("luapay> "), 1, true)
        t:send("\4")
        assert.equal(0, t:wait())
    end)

    it("says what is loaded with help(), and about one thing with help(x)", function()
        local t = terminal(env)
        finally(function() t:close() end)
        t:expect("help() says")
        t:expect("luapay> ")
        local got = t:line("help()")
        for _, text in ipairs({ "trustly_client:deposit(data) -> {orderid, url} | nil, err",
            "gate:status(payment_id) -> event | nil, err", "trustpay_client:accounts() -> AccountList | nil, err",
            "luapay.trustly client (test, user ", "Modules", "trustly     luapay.trustly: ", "core        the C core",
            "help(x)" }) do
            assert.matches(text, got, 1, true)
        end
        got = t:line("help(trustly_client.deposit)")
        assert.matches("client:deposit(data) -> {orderid, url} | nil, err\nData: NotificationURL", got, 1, true)
        got = t:line("help(trustly)")
        assert.matches("trustly.sign(method, uuid, data, private_key) -> base64 signature.", got, 1, true)
        assert_no_secret(t:screen())
        t:send("\4")
        assert.equal(0, t:wait())
    end)

    it("masks every secret, whatever holds it", function()
        local t = terminal(env)
        finally(function() t:close() end)
        t:expect("luapay> ")
        for _, line in ipairs({
            "trustly_client", "{ c = trustly_client, list = { gate, trustpay_client } }",
            "trustly_client.password", "{ p = trustly_client.password, k = trustly_client.private_key }",
            "print(gate.secret, begateway_client.secret, trustly_na_client.access_key)",
            "io.write(trustpay_client.secret, '\\n')", "io.stdout:write(trustpay_client.banking_password, '\\n')",
            "io.output():write(gate.secret, '\\n')", "io.output(io.stdout) io.write(trustpay_client.secret, '\\n')",
            "core.hex_encode(gate.secret), core.base64_encode(trustly_client.password)",
            "error(gate.secret)", "error({ why = gate.secret })", "gate:sale('card', {})",
            "trustly_client:balance()", "getmetatable(trustly_client)", "help(trustly_client)",
        }) do
            t:line(line)
        end
        local screen = t:screen()
        assert.matches("[REDACTED]", screen, 1, true)
        assert_no_secret(screen)
        t:send("\4")
        assert.equal(0, t:wait())
    end)

    it("ends on Ctrl-C twice at an empty prompt (exit 130), on Ctrl-D and on SIGTERM, leaving no nginx", function()
        local t = terminal(env)
        finally(function() t:close() end)
        t:expect("luapay> ")
        local prefix = t:prefix()
        t:send("\3")
        t:expect("(to leave: Ctrl-C again, Ctrl-D or os.exit())")
        t:expect("luapay> ")
        t:send("\3")
        assert.equal(130, t:wait())
        assert.is_true(nginx_gone(prefix))
        t:close()

        t = terminal(env)
        t:expect("luapay> ")
        prefix = t:prefix()
        t:send("\4")
        assert.equal(0, t:wait())
        assert.is_true(nginx_gone(prefix))
        t:close()

        t = terminal(env)
        t:expect("luapay> ")
        prefix = t:prefix()
        local pid = t:line('io.open("/proc/self/stat"):read("*l"):match("^%d+")'):match('"(%d+)"')
        os.execute("kill -TERM " .. pid)
        assert.is_not_nil(t:wait())
        assert.is_true(nginx_gone(prefix))
    end)

    it("reads plain lines, with a note, where lua-readline cannot be loaded", function()
        local t = terminal(env .. [[ LUA_INIT='package.preload.readline = function() error("module readline not found") end']])
        finally(function() t:close() end)
        t:expect("lua-readline is not installed for " .. _VERSION)
        t:expect("lines are read without editing, history or completion")
        t:expect("luapay> ")
        assert.matches("\n42\n", t:line("6 * 7"), 1, true)
        t:send("\3")
        t:expect("luapay> ")
        assert.matches("\n2\n", t:line("1 + 1"), 1, true)
        t:send("\4")
        assert.equal(0, t:wait())
    end)
end)

describe("luapay repl, scripted (its input not a terminal)", function()
    local run = require("support.cli").run

    it("runs the lines, prints results masked, and stops its nginx at os.exit()", function()
        local out, err, code = run("repl", table.concat({
            "sandbox.prefix", "help(gate.status)", "print(trustly_client.password)",
            "{ c = trustly_client, s = gate.secret }", "error({ gate.secret })",
            "setmetatable({}, { __tostring = function() error('no text') end })",
            "error(setmetatable({}, { __tostring = function() error('no text') end }))",
            "os.exit(5)", "never()" }, "\n") .. "\n", "LUAPAY_CONFIG=/nonexistent")
        assert.equal(5, code, err)
        assert.equal("", err)
        assert.matches("gate:status(payment_id) -> event | nil, err", out, 1, true)
        assert.matches("error: {", out, 1, true)
        assert.is_nil(out:find("internal error", 1, true))
        assert_no_secret(out)
        assert.is_true(nginx_gone(out:match('"(/tmp/luapay%-sandbox%.[%w]+)"')))
    end)

    it("keeps io.output() the masked output; io.output(name) writes the session's own file", function()
        local file = os.tmpname()
        finally(function() os.remove(file) end)
        local out, err, code = run("repl", table.concat({
            "io.output():write('via-output ', gate.secret, '\\n')",
            ("io.output(%q) io.write('to-file') io.output():close()"):format(file),
            ("f = io.open(%q, 'a') io.output(f) io.write('+handle') f:close()"):format(file),
            "io.output(io.stdout) io.write('back ', trustpay_client.secret, '\\n')" }, "\n") .. "\n",
            "LUAPAY_CONFIG=/nonexistent")
        assert.equal(0, code, err)
        assert.matches("via-output [REDACTED]\n", out, 1, true)
        assert.matches("back [REDACTED]\n", out, 1, true)
        assert.is_nil(out:find("to-file", 1, true))
        assert.is_nil(out:find("+handle", 1, true))
        assert.equal("to-file+handle", util.read(file))
        assert_no_secret(out)
    end)

    -- The REPL in the background, its input a FIFO kept open.
    local function background()
        local dir = tmpdir()
        sh("mkfifo " .. dir .. "/in")
        os.execute(("(env -u LD_PRELOAD LUAPAY_CONFIG=/nonexistent %s bin/luapay repl < %s/in > %s/out 2>&1; echo $? > %s/rc)"
            .. " >/dev/null 2>&1 & echo $! > %s/pid"):format(util.LUA, dir, dir, dir, dir))
        local t = setmetatable({ dir = dir, input = assert(io.open(dir .. "/in", "wb")), seen = 0 }, Term)
        return t
    end

    it("ends at SIGINT twice (exit 130), at SIGTERM and SIGKILL, leaving no nginx", function()
        for _, signal in ipairs({ "INT", "TERM", "KILL" }) do
            local t = background()
            finally(function() t:close() end)
            t:send('sandbox.prefix, io.open("/proc/self/stat"):read("*l"):match("^%d+")\n')
            local prefix, pid = t:expect('"\n'):match('"(/tmp/luapay%-sandbox%.[%w]+)"\t"(%d+)"')
            os.execute("kill -" .. signal .. " " .. pid)
            if signal == "INT" then
                t:expect("(to leave: Ctrl-C again, Ctrl-D or os.exit())")
                os.execute("kill -INT " .. pid)
                assert.equal(130, t:wait())
            else
                assert.is_not_nil(t:wait())
            end
            assert.is_true(nginx_gone(prefix))
        end
    end)
end)

describe("luapay.cli.repl", function()
    it("completes globals, fields after '.' and methods after ':'", function()
        local env = setmetatable({ trustly_client = require("luapay.trustly").new{ username = "u", password = "secret-pw",
            private_key = util.fixture("keys/merchant_private.pem"), environment = "test" },
            ecommpay = require "luapay.ecommpay" }, { __index = _G })
        local complete = repl.completer(env)
        assert.same({ "trustly_client:deposit" }, complete("", "trustly_client:de"))
        assert.same({ "ecommpay.signature" }, complete("", "ecommpay.signatur"))
        assert.same({ "trustly_client" }, complete("", "trustly_cl"))
        assert.same({ "string.format" }, complete("", "string.form"))
        assert.same({ "while" }, complete("", "whil"))
        assert.same({}, complete("", "nosuch.x"))
        assert.same({}, complete("", "trustly_client:username")) -- a field, not a method
        env.trustly_client:close()
    end)

    it("keeps its history in $LUAPAY_HISTORY, else under $XDG_STATE_HOME or ~/.local/state", function()
        local function getenv(vars) return function(k) return vars[k] end end
        assert.equal("/h/x", repl.history_path(getenv{ LUAPAY_HISTORY = "/h/x", XDG_STATE_HOME = "/s", HOME = "/home/a" }))
        assert.equal("/s/luapay/history", repl.history_path(getenv{ XDG_STATE_HOME = "/s", HOME = "/home/a" }))
        assert.equal("/home/a/.local/state/luapay/history", repl.history_path(getenv{ HOME = "/home/a" }))
    end)

    it("core.wait_input waits for input, and says when a SIGINT came first", function()
        assert.has_error(function() core.wait_input(-1) end, "wait_input: bad argument #1 'fd' (a file descriptor expected)")
        assert.has_error(function() core.wait_input(0, -2) end,
            "wait_input: bad argument #2 'seconds' (a number from 0 to 86400 expected)")
        assert.same({ nil, "Bad file descriptor" }, { core.wait_input(4000, 0) })
        -- In a process of its own: its standard input a pipe, and a SIGINT.
        local script = os.tmpname()
        finally(function() os.remove(script) end)
        util.write(script, ("package.cpath = %q .. package.cpath\n"):format(util.PLAIN_BUILD .. "/?.so;")
            .. "local core = require 'luapay.core'\ncore.raise_on_interrupt()\nprint(core.wait_input(0, tonumber(arg[1])))\n")
        local lua = util.LUA .. " " .. script
        assert.equal("false\n", sh(("sleep 2 | %s 0.1"):format(lua)))
        assert.equal("true\n", sh(("echo x | %s 5"):format(lua)))
        assert.equal("nil\tinterrupted\n", sh(("sh -c 'sleep 3 | %s & sleep 0.5; kill -INT $!; wait'"):format(lua)))
    end)
end)
