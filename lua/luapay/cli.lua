--- luapay.cli: the `luapay` command.
--
--   luapay sandbox start|stop|status
--   luapay sign <provider> [file] [--explain]
--   luapay verify <provider> [file] [--explain]
--   luapay url <kind> [file]
--   luapay call <provider> <method> [json] [--sandbox]
--   luapay export <provider> --from DATE --to DATE [--csv FILE] [--resume CURSOR] [--sandbox]
--   luapay repl
--   luapay trigger <provider> <event> [--id ID] [--url URL] | --list
--   luapay listen --forward-to URL [--json]
--   luapay logs [--follow] [--json]
--
-- Options are parsed strictly (cli.parse): an unknown, repeated or
-- value-less option, or a value given to a flag, is a usage error and
-- nothing runs.
--
-- Exit codes: 0 done; 1 the operation failed (a provider error or decline,
-- a signature that does not verify, a network error); 2 usage (unknown
-- command, provider or option, bad JSON, a missing argument); 3
-- configuration (missing credentials, a bad config file, no sandbox).
--
-- Configuration, later sources winning: the file named by LUAPAY_CONFIG
-- (default ~/.config/luapay/config.lua, a Lua table:
-- `return { trustly = { username = "...", ... } }`, read without access to
-- any global), then environment variables LUAPAY_<PROVIDER>_<FIELD>, e.g.
-- LUAPAY_TRUSTLY_USERNAME. Secrets are never printed: each adapter lists
-- its secret fields, and everything the command prints passes through
-- cli.out / cli.err, which hide their configured values in any form.
local core = require "luapay.core"
local errors = require "luapay.errors"
local pretty = require "luapay.pretty"

local cli = {}

cli.EXIT = { OK = 0, FAILED = 1, USAGE = 2, CONFIG = 3 }

-- Provider commands live in luapay.cli.<provider>, one per provider in the
-- registry (luapay.providers), loaded when present:
-- { name, sandbox_settings = fn(base_url), client = fn(settings), sign = fn,
-- verify = fn, call = fn, export = fn, urls = { kind = fn }, repl_name,
-- secrets = { field, ... } (the settings never printed), options =
-- { capability = { name = "flag"|"value" } } (options of its own) }.
-- The command fns take (ctx, positional args, options) and return a result
-- table or nil, err; the REPL builds its clients from client and
-- sandbox_settings.
cli.providers = {}

-- The help texts' lists of what the adapters offer ({exporters}: the
-- providers with an export, {url kinds}), in the registry's order.
local function fill_help()
    local exporters, kinds = {}, {}
    for _, name in ipairs(require("luapay.providers").NAMES) do
        local p = cli.providers[name]
        if p and p.export then exporters[#exporters + 1] = (name:gsub("_", "-")) end
        local own = {}
        for kind in pairs(p and p.urls or {}) do own[#own + 1] = kind end
        table.sort(own)
        for _, kind in ipairs(own) do kinds[#kinds + 1] = kind end
    end
    local lists = { ["{exporters}"] = table.concat(exporters, "|"), ["{url kinds}"] = table.concat(kinds, ", ") }
    for _, command in pairs(cli.commands) do
        for _, field in ipairs({ "usage", "help" }) do
            command[field] = command[field]:gsub("{[%w ]+}", lists)
        end
    end
end

function cli.load_providers()
    local registry = require "luapay.providers"
    for _, name in ipairs(registry.NAMES) do
        if not cli.providers[name] and registry.installed("luapay.cli." .. name) then
            cli.providers[name] = require("luapay.cli." .. name)
        end
    end
    fill_help()
end

local Usage = {}  -- error raised for usage problems
local Config = {} -- ... and for configuration problems

local function usage_error(msg) error(setmetatable({ message = msg }, Usage), 0) end
local function config_error(msg) error(setmetatable({ message = msg }, Config), 0) end
cli.usage_error, cli.config_error = usage_error, config_error

---------------------------------------------------------------------------
-- Output: no configured secret is ever printed
---------------------------------------------------------------------------

local function number_text(v)
    if v == math.floor(v) and math.abs(v) < 2 ^ 63 then return ("%d"):format(v) end
    return ("%.17g"):format(v)
end

--- cli.add_secret(value): value (text or a number) is never printed by the
-- command, in any form luapay.errors knows (errors.forms_of: as is, JSON-
-- and URL-encoded, in base64 and hex; a key whole, line by line and as the
-- hex of its DER). It is registered with errors.add_secret, so no error
-- shows it either; values shorter than errors.MIN_SECRET are not searched for.
function cli.add_secret(value)
    if type(value) == "number" then value = number_text(value) end
    if type(value) == "string" then errors.add_secret(value) end
end

--- cli.redact(text) -> text with every secret (configured or of a client)
-- "[REDACTED]", in any of its forms.
cli.redact = errors.hide

--- cli.out(...) and cli.err(...): write to standard output or error,
-- secrets hidden. The command prints through nothing else.
function cli.out(...) io.stdout:write(cli.redact(table.concat({ ... }))) end
function cli.err(...) io.stderr:write(cli.redact(table.concat({ ... }))) end

---------------------------------------------------------------------------
-- Arguments, input
---------------------------------------------------------------------------

--- cli.parse(argv, options) -> positionals, opts: the one option parser of
-- every subcommand (Debian's lua-argparse), strict so that a typo can never
-- change what is done. options maps each name to "flag" (no value) or
-- "value" (one value, as `--name value` or `--name=value`). Usage errors,
-- raised before anything runs: an option not in options; a flag given a
-- value (`--sandbox=false` is refused, never read as the flag); an option
-- without its value (at the end, empty, or followed by another option:
-- write `--name=--x` for such a value); an option given twice. `--` ends
-- the options; `-` alone is a positional (standard input); -h and --help
-- set opts.help.
local argparse = require "argparse"

-- argparse's messages, in the command's words. Only an option's name is
-- ever echoed: a value may be a credential.
local PARSE_ERRORS = {
    { "^unknown option '([^'=]*)", "unknown option %s" },
    { "^option '([^']*)' does not take arguments", "option %s takes no value (write %s alone, or leave it out)" },
    { "^option '([^']*)' requires an argument", "option %s needs a value" },
    { "^option '([^']*)' must be used at most", "option %s is given twice" },
}

function cli.parse(argv, options)
    local parser = argparse("luapay"):add_help(false)
    parser:argument("positionals"):args("*")
    parser:flag("-h --help"):target("help")
    for name, kind in pairs(options) do
        local o = kind == "flag" and parser:flag("--" .. name) or parser:option("--" .. name)
        o:target(name):count("0-1"):overwrite(false)
    end
    local ok, result = parser:pparse(argv)
    if not ok then
        for _, e in ipairs(PARSE_ERRORS) do
            local name = result:match(e[1])
            if name then usage_error(e[2]:format(name, name)) end
        end
        usage_error((result:gsub("\n.*", "")))
    end
    local pos, opts = result.positionals, {}
    result.positionals = nil
    for name, value in pairs(result) do
        if value == "" then usage_error("option --" .. name .. " needs a value") end
        opts[name] = value
    end
    return pos, opts
end

-- Positionals beyond what a command takes are refused, not ignored: a flag
-- typed without its dashes (`export begateway sandbox ...`) must not go live.
local function check_count(pos, command, min_args, max_args)
    if #pos < min_args then usage_error(command.usage) end
    if #pos > max_args then usage_error("too many arguments; " .. command.usage) end
end
cli.check_count = check_count

--- cli.shell_quote(s) -> s as one word for /bin/sh.
function cli.shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- The text of a file, or of standard input when path is nil or "-".
function cli.read_input(path)
    local f = io.stdin
    if path and path ~= "-" then
        local err
        f, err = io.open(path, "rb")
        if not f then usage_error("cannot read " .. path .. ": " .. tostring(err)) end
    end
    local text = f:read("*a")
    if f ~= io.stdin then f:close() end
    return text
end

--- cli.isatty(fd) -> whether file descriptor fd (0, 1, 2) is a terminal.
function cli.isatty(fd)
    local ok, _, code = os.execute(("test -t %d"):format(fd))
    if type(ok) == "number" then return ok == 0 end -- Lua 5.1, LuaJIT: the status
    return ok == true and code == 0
end

--- cli.request_input(arg, what) -> the decoded JSON request of a `call`:
-- the argument, or standard input when it is "-" or absent (unless
-- standard input is a terminal: nobody is typing a request); nil when
-- there is none (no argument and an empty input), for methods without one.
function cli.request_input(arg, what)
    local text = arg
    if arg == nil or arg == "-" then
        if arg == nil and cli.isatty(0) then return nil end
        text = cli.read_input("-")
        if not text:find("%S") then return nil end
    end
    return cli.json_input(text, what)
end

--- cli.choose(names, word, what) -> word when names[word] is set; else a
-- usage error listing the names ("unknown ecommpay operation 'x' (a, b)").
function cli.choose(names, word, what)
    if names[word] then return word end
    local list = {}
    for k in pairs(names) do list[#list + 1] = k end
    table.sort(list)
    usage_error(("unknown %s '%s' (%s)"):format(what, tostring(word), table.concat(list, ", ")))
end

--- Decodes JSON input or raises a usage error naming where it broke.
function cli.json_input(text, what)
    local value, err = core.json_decode(text)
    if value == nil then usage_error(("invalid JSON in %s (%s)"):format(what or "the input", err)) end
    return value
end

function cli.print_json(value)
    cli.out(core.json_encode(errors.mask(value)) or pretty.format(value), "\n")
end

--- cli.colour(fd) -> whether to colour what goes to fd (1 or 2): only a
-- terminal, and never with NO_COLOR set to anything (https://no-color.org).
function cli.colour(fd)
    local no_color = os.getenv("NO_COLOR")
    return (no_color == nil or no_color == "") and os.getenv("TERM") ~= "dumb" and cli.isatty(fd)
end

local function paint(code, text) return "\27[" .. code .. "m" .. text .. "\27[0m" end

--- cli.print_result(value, opts): JSON (one line) with --json or when
-- standard output is not a terminal (a pipe, a file: a script reads it);
-- on a terminal the readable form of the REPL, its keys in colour.
function cli.print_result(value, opts)
    if opts.json or not cli.isatty(1) then return cli.print_json(value) end
    local text = pretty.format(value, { money = true }) -- amounts also as money: 2500 -- 25.00 EUR
    if cli.colour(1) then
        text = text:gsub("(\n%s*)([%a_][%w_]*)( = )", function(indent, key, eq) return indent .. paint("36", key) .. eq end)
    end
    cli.out(text, "\n")
end

--- cli.fail(message): the command's one error line on standard error,
-- "luapay:" in red on a terminal.
function cli.fail(message)
    cli.err(cli.colour(2) and paint("1;31", "luapay:") or "luapay:", " ", tostring(message), "\n")
end

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

local function default_config_path()
    local home = os.getenv("HOME") or "."
    return os.getenv("LUAPAY_CONFIG") or (home .. "/.config/luapay/config.lua")
end
cli.default_config_path = default_config_path

-- A Lua error about the config file, as its line number only: the rest of
-- the message may quote the source (an unfinished string quotes the rest of
-- its line), and the source holds the credentials.
local function config_line(err)
    local line = type(err) == "string" and err:match("^config:(%d+):")
    return line and (" on line " .. line) or ""
end

--- The configuration table: the file (if any), then LUAPAY_<P>_<F>
-- variables for the given provider's fields. A broken file is named with
-- the line at fault, never with its text.
function cli.load_config(env)
    env = env or os.getenv
    local path = env("LUAPAY_CONFIG") or default_config_path()
    local config = {}
    local f = io.open(path, "rb")
    if f then
        local text = f:read("*a")
        f:close()
        local chunk, err
        if setfenv then
            chunk, err = loadstring(text, "=config")
            if chunk then setfenv(chunk, {}) end
        else
            chunk, err = load(text, "=config", "t", {})
        end
        local hint = " (its text is not shown: it holds credentials)"
        if not chunk then config_error("config file " .. path .. ": syntax error" .. config_line(err) .. hint) end
        local ok, value = pcall(chunk)
        if not ok then
            config_error("config file " .. path .. ": error" .. config_line(value)
                .. "; it must return a table of plain values, without access to globals" .. hint)
        end
        if type(value) ~= "table" then config_error("config file " .. path .. " must return a table") end
        config = value
    end
    return config
end

--- Settings of one provider: the config file's section, overridden by
-- LUAPAY_<PROVIDER>_<FIELD> for each field in `fields`. A number in the
-- file is the same setting as its text in the environment.
function cli.provider_settings(config, provider, fields, env)
    env = env or os.getenv
    local section = config[provider]
    if section ~= nil and type(section) ~= "table" then
        config_error(("config file %s: '%s' must be a table of settings"):format(default_config_path(), provider))
    end
    local settings = {}
    for k, v in pairs(section or {}) do settings[k] = type(v) == "number" and number_text(v) or v end
    for _, field in ipairs(fields) do
        local v = env(("LUAPAY_%s_%s"):format(provider:upper(), field:upper()))
        if v and v ~= "" then settings[field] = v end
    end
    return settings
end

-- Hides every configured secret (the fields each adapter lists, from the
-- file and the environment) before the command runs. A broken file is
-- reported by the command that needs it.
local function hide_configured_secrets()
    local ok, config = pcall(cli.load_config)
    if not ok then config = {} end
    for name, adapter in pairs(cli.providers) do
        local secrets = adapter.secrets or {}
        local got, settings = pcall(cli.provider_settings, config, name, secrets)
        if got then
            for _, field in ipairs(secrets) do cli.add_secret(settings[field]) end
        end
    end
end

--- cli.key(value, name [, secret]) -> the key text for the provider, or nil.
-- A key setting is the PEM itself (or its bare base64 body, as some back
-- offices show it), or the path of a file holding either. Neither the
-- setting nor the file's text is echoed in an error: either may be the key.
-- secret: the file's text is a secret too (a private key).
function cli.key(value, name, secret)
    if value == nil or value == "" then return nil end
    local problem = name .. " must be a PEM key or the path of a readable file holding one"
    if type(value) ~= "string" then config_error(problem) end
    if value:find("-----BEGIN", 1, true) then return value end
    local f = io.open(value, "rb")
    if not f then
        if value:match("^[%w+/=%s]+$") and #value >= 64 then return value end -- a bare body
        config_error(problem)
    end
    local text = f:read("*a") or ""
    f:close()
    if secret then cli.add_secret(text) end
    return text
end

--- cli.new_client(new, opts) -> new(opts). A provider's constructor raises
-- for an option it refuses (a bad key, a malformed URL): for the command
-- that is a configuration error (exit 3), not an internal one.
function cli.new_client(new, opts)
    local ok, client = pcall(new, opts)
    if not ok then config_error((tostring(client):gsub("^[^\n:]+:%d+: ", ""))) end
    return client
end

--- Raises a configuration error listing the missing required settings,
-- with the variables that would supply them (never their values).
function cli.require_settings(settings, provider, required)
    local missing = {}
    for _, field in ipairs(required) do
        if settings[field] == nil or settings[field] == "" then
            missing[#missing + 1] = ("%s (LUAPAY_%s_%s)"):format(field, provider:upper(), field:upper())
        end
    end
    if #missing > 0 then
        config_error(("missing credentials for %s: %s; set them in %s or the environment, or use --sandbox"):format(
            provider, table.concat(missing, ", "), default_config_path()))
    end
    return settings
end

--- A provider command's settings: with --sandbox, the running sandbox's
-- test settings for the adapter's fake; otherwise the configured ones, the
-- `required` fields checked.
function cli.settings(ctx, adapter, fields, required)
    if ctx.opts.sandbox then
        local sb, err = cli.running_sandbox()
        if not sb then config_error(err) end
        return adapter.sandbox_settings(sb.url .. "/" .. adapter.name)
    end
    return cli.require_settings(cli.provider_settings(ctx.config, adapter.name, fields), adapter.name, required)
end

---------------------------------------------------------------------------
-- The background sandbox
---------------------------------------------------------------------------

local function state_path()
    local uid = io.popen("id -u"):read("*l") or "0"
    return os.getenv("LUAPAY_SANDBOX_STATE") or ((os.getenv("XDG_RUNTIME_DIR") or "/tmp") .. "/luapay-sandbox-" .. uid .. ".json")
end

--- The running background sandbox, or nil, err.
function cli.running_sandbox()
    local sandbox = require "luapay.sandbox"
    local f = io.open(state_path(), "rb")
    if not f then return nil, "no sandbox is running (start one with: luapay sandbox start)" end
    local state = core.json_decode(f:read("*a"))
    f:close()
    local sb, err = sandbox.attach(state)
    if not sb then
        os.remove(state_path())
        return nil, err .. " (start one with: luapay sandbox start)"
    end
    return sb
end

-- The sandbox's base URL, its page (luapay.sandbox.page) and, per provider,
-- the settings a client needs (public test credentials, printed as they
-- are: that is their point).
local function describe_sandbox(sb)
    local providers = require "luapay.sandbox.providers"
    local out = { url = sb.url, page = sb.url .. "/_sandbox/", providers = {} }
    for _, name in ipairs(providers.available()) do
        local adapter = cli.providers[name]
        out.providers[name] = adapter and adapter.sandbox_settings and adapter.sandbox_settings(sb.url .. "/" .. name)
            or providers.describe(name, sb)
    end
    return out
end

local function print_sandbox(sb, opts)
    cli.print_result(describe_sandbox(sb), opts)
end

local function cmd_sandbox(argv)
    local pos, opts = cli.parse(argv, cli.commands.sandbox.options)
    if opts.help or not pos[1] then
        cli.out(cli.commands.sandbox.help, "\n")
        return opts.help and cli.EXIT.OK or cli.EXIT.USAGE
    end
    check_count(pos, cli.commands.sandbox, 1, 1)
    local action = pos[1]
    if action == "start" then
        local running = cli.running_sandbox()
        if running then
            print_sandbox(running, opts)
            return cli.EXIT.OK
        end
        local sandbox = require "luapay.sandbox"
        local providers = require "luapay.sandbox.providers"
        local sb, err = sandbox.start{ routes = providers.routes(), detach = true }
        if not sb then config_error(err) end
        local f = assert(io.open(state_path(), "wb"))
        f:write(core.json_encode(sb:state()))
        f:close()
        print_sandbox(sb, opts)
        return cli.EXIT.OK
    elseif action == "status" then
        local sb, err = cli.running_sandbox()
        if not sb then
            cli.fail(err)
            return cli.EXIT.FAILED
        end
        print_sandbox(sb, opts)
        return cli.EXIT.OK
    elseif action == "stop" then
        local sb = cli.running_sandbox()
        if sb then
            local ok, err = sb:stop()
            os.remove(state_path())
            if not ok then
                cli.fail(err)
                return cli.EXIT.FAILED
            end
        end
        if opts.json then cli.print_json({ stopped = true }) else cli.out("sandbox stopped\n") end
        return cli.EXIT.OK
    end
    usage_error("unknown sandbox action '" .. action .. "' (start, stop or status)")
end

---------------------------------------------------------------------------
-- Provider commands
---------------------------------------------------------------------------

local function provider_names()
    local names = {}
    for name in pairs(cli.providers) do names[#names + 1] = name end
    table.sort(names)
    return table.concat(names, ", ")
end

local function provider(name, capability)
    if not name then usage_error("which provider? (" .. provider_names() .. ")") end
    local p = cli.providers[(name:gsub("%-", "_"))] -- trustly-na is trustly_na
    if not p then usage_error(("unknown provider '%s' (%s)"):format(name, provider_names())) end
    if capability and not p[capability] then
        usage_error(("'%s' has no %s command"):format(name, capability))
    end
    return p
end

--- cli.describe(err) -> the text of an error for the command's one line,
-- saying nothing twice: without the "luapay " its "luapay: " prefix already
-- says, and without "(HTTP 500)" after a message that names the status.
function cli.describe(err)
    if type(err) == "table" and err.http_status and tostring(err.message):find("HTTP " .. err.http_status, 1, true) then
        local copy = {}
        for k, v in pairs(err) do copy[k] = v end
        copy.http_status = nil
        err = setmetatable(copy, getmetatable(err))
    end
    return (tostring(err):gsub("^luapay ", ""))
end

-- Prints a provider function's result (false: it printed its own output);
-- maps errors to exit codes.
local function finish(opts, result, err)
    if result == nil then
        cli.fail(cli.describe(err))
        return cli.EXIT.FAILED
    end
    if result ~= false then cli.print_result(result, opts) end
    return cli.EXIT.OK
end

-- The options a provider command accepts: its own, and those its adapters
-- add (one table, so every subcommand parses with the same rules).
local function command_options(capability)
    local all = {}
    for name, kind in pairs(cli.commands[capability].options) do all[name] = kind end
    for pname, p in pairs(cli.providers) do
        for name, kind in pairs(p.options and p.options[capability] or {}) do
            if all[name] and all[name] ~= kind then
                error(("luapay.cli.%s: option --%s is a %s elsewhere"):format(pname, name, all[name]))
            end
            all[name] = kind
        end
    end
    return all
end

local function provider_command(capability, min_args, max_args)
    return function(argv)
        local command = cli.commands[capability]
        local pos, opts = cli.parse(argv, command_options(capability))
        if opts.help then
            cli.out(command.help, "\n")
            return cli.EXIT.OK
        end
        check_count(pos, command, min_args, max_args)
        local p = provider(pos[1], capability)
        local own = p.options and p.options[capability] or {}
        for name in pairs(opts) do
            if not command.options[name] and not own[name] then
                usage_error(("option --%s is not one of 'luapay %s %s'"):format(name, capability, pos[1]))
            end
        end
        local ctx = { opts = opts, config = cli.load_config() }
        return finish(opts, p[capability](ctx, pos, opts))
    end
end

local function cmd_url(argv)
    local pos, opts = cli.parse(argv, cli.commands.url.options)
    if opts.help then
        cli.out(cli.commands.url.help, "\n")
        return cli.EXIT.OK
    end
    check_count(pos, cli.commands.url, 1, 2)
    local kind = pos[1]
    for _, p in pairs(cli.providers) do
        local build = p.urls and p.urls[kind]
        if build then return finish(opts, build({ opts = opts, config = cli.load_config() }, pos, opts)) end
    end
    usage_error("unknown URL kind '" .. kind .. "'")
end

---------------------------------------------------------------------------
-- The REPL: luapay.cli.repl
---------------------------------------------------------------------------

--- cli.repl(env, input, output [, prompt]): the REPL's loop (repl.loop).
function cli.repl(...) return require("luapay.cli.repl").loop(...) end

local function cmd_repl(argv) return require("luapay.cli.repl").run(argv) end

---------------------------------------------------------------------------
-- Commands and main
---------------------------------------------------------------------------

local FLAG, VALUE = "flag", "value"

cli.commands = {
    sandbox = { run = cmd_sandbox, options = { json = FLAG }, usage = "usage: luapay sandbox start|stop|status [--json]",
        help = [[usage: luapay sandbox start|stop|status [--json]

Runs the fake providers on loopback in the background (nginx), and prints
their base URLs and test credentials as JSON, and the URL of the sandbox's
page (page: what the fakes did, with buttons to approve, decline, fail a
refund or reverse a payout). `stop` ends it and removes its
files; `status` prints the same as `start` while it runs (exit 1 if not).]] },
    sign = { run = provider_command("sign", 1, 2), options = { explain = FLAG, sandbox = FLAG, json = FLAG },
        usage = "usage: luapay sign <provider> [file] [--explain] [--sandbox] [--json]",
        help = [[usage: luapay sign <provider> [file] [--explain] [--sandbox] [--json]

Signs the JSON request in file (standard input without one) the way the
provider expects, and prints the signed request. --explain also prints the
canonical string that was signed (credentials in it redacted). Credentials
come from the configuration, or the running sandbox's with --sandbox.]] },
    verify = { run = provider_command("verify", 1, 2), options = { explain = FLAG, sandbox = FLAG, json = FLAG },
        usage = "usage: luapay verify <provider> [file] [--explain] [--sandbox] [--json]",
        help = [[usage: luapay verify <provider> [file] [--explain] [--sandbox] [--json]
       luapay verify begateway [file] [--signature SIG | --authorization HEADER]
       luapay verify trustly-na [file] --authorization HEADER

Verifies a saved callback or notification body (file, or standard input)
and prints the event. Exit 1 when the signature does not verify.
beGateway: --signature is the Content-Signature header, --authorization
the Authorization header; Trustly NA: --authorization.]] },
    url = { run = cmd_url, options = { sandbox = FLAG, json = FLAG }, usage = "usage: luapay url <kind> [file] [--sandbox] [--json]",
        help = [[usage: luapay url <kind> [file] [--sandbox] [--json]

Builds a payment URL for the customer's browser from the JSON parameters in
file (or standard input), for the configured account or the running sandbox.
Kinds: {url kinds}.]] },
    call = { run = provider_command("call", 2, 3), options = { sandbox = FLAG, json = FLAG },
        usage = "usage: luapay call <provider> <method> [json] [--sandbox] [--json]",
        help = [[usage: luapay call <provider> <method> [json] [--sandbox] [--json]

Makes one API call with the JSON request given (or read from standard
input: `-`, or no json argument and input that is not a terminal; empty
input is no request) against the configured account, or against the
running sandbox with --sandbox, and prints the answer.]] },
    export = { run = provider_command("export", 1, 1),
        options = { from = VALUE, to = VALUE, csv = VALUE, resume = VALUE, sandbox = FLAG, json = FLAG },
        usage = "usage: luapay export {exporters} --from DATE --to DATE [--csv FILE] [--resume CURSOR] [--sandbox] [--json]",
        help = [[usage: luapay export {exporters} --from DATE --to DATE [--csv FILE] [--resume CURSOR] [--sandbox] [--json]

Streams every transaction of the period, as JSON lines or into a CSV file,
with a progress line on standard error for long exports. DATE is YYYY-MM-DD
(the whole day) or YYYY-MM-DDThh:mm:ss. Amounts are integers in minor units of
the transaction's currency for every provider (2500 EUR is 25.00 EUR), as in
luapay's events.

--csv FILE writes FILE.partial and renames it to FILE once the whole period
is in it: a file named FILE is always complete.

When a page fails the export stops with exit 1 and says on standard error
why, how many transactions came before it (printed, or in FILE.partial),
and the cursor that continues exactly after them: run the same command
with --resume CURSOR (the JSON printed) for the rest. With --csv FILE the
resumed run appends to FILE.partial and renames it once complete.]] },
    trigger = { run = function(argv) return require("luapay.cli.journal").trigger(argv) end,
        options = { id = VALUE, url = VALUE, amount = VALUE, currency = VALUE, list = FLAG, json = FLAG },
        usage = "usage: luapay trigger <provider> <event> [--id ID] [--url URL] [--amount N] [--currency C] [--json]",
        help = [[usage: luapay trigger <provider> <event> [--id ID] [--url URL] [--amount N] [--currency C] [--json]
       luapay trigger --list [--json]

Makes the running sandbox's fake of the provider send a signed notification
of the event, as the provider would: a credit, a declined card, a failed
refund, a payout reversal... --list shows every provider's events, what
each acts on (a payment, a refund or a payout) and what it means.

--id names the operation it acts on (an order, payment or refund id the
sandbox gave: this command and `luapay listen` print them); without one
the fake creates it, of --amount (minor units, default 10000) and
--currency. The actions approve, decline, fail_refund and reverse_payout
(the sandbox page's buttons) name the provider's event for each.

The notification goes to --url, or the operation's own notification URL;
and to the forward target of `luapay listen`. Prints what was sent and
the answers; exit 1 when the operation cannot take the event.]] },
    listen = { run = function(argv) return require("luapay.cli.journal").listen(argv) end,
        options = { ["forward-to"] = VALUE, json = FLAG },
        usage = "usage: luapay listen --forward-to URL [--json]",
        help = [[usage: luapay listen --forward-to URL [--json]

Has the running sandbox send every notification its fakes send (to the
merchant URL of the payment, or for `luapay trigger`) also to URL, the
same bytes, signed the same, with the same headers; and prints each as it
is delivered, with URL's answer: readable on a terminal, one JSON object a
line with --json. Runs until Ctrl-C (exit 130), which stops the
forwarding; were this command killed, it stops on its own within 15 s.]] },
    logs = { run = function(argv) return require("luapay.cli.journal").logs(argv) end,
        options = { follow = FLAG, json = FLAG },
        usage = "usage: luapay logs [--follow] [--json]",
        help = [[usage: luapay logs [--follow] [--json]

Prints the requests the running sandbox's fakes served (method, path,
status, time taken, and a handler's error) and the lines of its nginx
error log, oldest first; --follow then prints each as it comes, until
Ctrl-C. --json: one JSON object a line ({type = "request" | "error", ...}).]] },
    repl = { run = cmd_repl, options = {}, usage = "usage: luapay repl",
        help = [[usage: luapay repl

An interactive Lua session with luapay loaded, a sandbox running, and one
client per provider configured for it. Results print as readable tables,
secrets masked; help() lists what is loaded and how to call it.

On a terminal (with Debian's lua-readline): line editing, TAB completion,
and a history kept in $LUAPAY_HISTORY, else $XDG_STATE_HOME/luapay/history
or ~/.local/state/luapay/history (never a line holding a secret). Ctrl-C
cancels the line; Ctrl-C twice at an empty prompt, Ctrl-D or os.exit()
leave, and the sandbox stops however the session ends.]] },
}

cli.ORDER = { "sandbox", "sign", "verify", "url", "call", "export", "repl", "trigger", "listen", "logs" }

function cli.help()
    local lines = { "usage: luapay <command> [arguments] [--help]", "       luapay --version", "", "commands:" }
    for _, name in ipairs(cli.ORDER) do lines[#lines + 1] = "  " .. cli.commands[name].usage:gsub("^usage: luapay ", "") end
    lines[#lines + 1] = ""
    lines[#lines + 1] = [[options: --name value or --name=value; a flag (--sandbox, --explain) takes no
value, so --sandbox=false is a usage error, never the sandbox. An unknown,
repeated or value-less option is a usage error and nothing is done or sent;
-- ends the options (for an argument that starts with '-').]]
    lines[#lines + 1] = ""
    lines[#lines + 1] = [[output: readable on a terminal (in colour, unless NO_COLOR is set), JSON when
piped or with --json (every command that prints a result takes it).]]
    lines[#lines + 1] = ""
    lines[#lines + 1] = "exit codes: 0 done, 1 the operation failed, 2 usage, 3 configuration, 130 Ctrl-C"
    lines[#lines + 1] = "configuration: " .. default_config_path() .. " and LUAPAY_<PROVIDER>_<FIELD> variables"
    return table.concat(lines, "\n")
end

--- Runs the command line; returns the exit code. Errors end in one line
-- on standard error.
function cli.main(argv)
    cli.load_providers()
    hide_configured_secrets()
    local name = argv[1]
    if name == nil or name == "-h" or name == "--help" or name == "help" then
        cli.out(cli.help(), "\n")
        return name and cli.EXIT.OK or cli.EXIT.USAGE
    end
    if name == "--version" then
        cli.out("luapay ", require("luapay").VERSION, "\n")
        return cli.EXIT.OK
    end
    local command = cli.commands[name]
    local rest = {}
    for i = 2, #argv do rest[#rest + 1] = argv[i] end
    if not command then
        cli.fail(("unknown command '%s' (try luapay --help)"):format(name))
        return cli.EXIT.USAGE
    end
    -- Ctrl-C ends a command at once with 130, even inside a request or a
    -- read of standard input (an export's FILE.partial stays partial); the
    -- REPL cancels the line or the code running instead (repl.run); `listen`
    -- catches Ctrl-C itself, to stop the forwarding first.
    if name ~= "repl" and name ~= "listen" then core.exit_on_interrupt(130) end
    local ok, result = pcall(command.run, rest)
    if ok then return result end
    local mt = getmetatable(result)
    if mt == Usage then
        cli.fail(result.message)
        return cli.EXIT.USAGE
    elseif mt == Config then
        cli.fail(result.message)
        return cli.EXIT.CONFIG
    end
    if tostring(result):find("interrupted!$") then return 130 end -- Ctrl-C in Lua code: not a fault
    cli.fail("internal error: " .. (tostring(result):gsub("\n.*", "")))
    return cli.EXIT.FAILED
end

return cli
