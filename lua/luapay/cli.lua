--- luapay.cli: the `luapay` command.
--
--   luapay sandbox start|stop|status
--   luapay sign <provider> [file] [--explain]
--   luapay verify <provider> [file] [--explain]
--   luapay url <kind> [file]
--   luapay call <provider> <method> [json] [--sandbox]
--   luapay export <provider> --from DATE --to DATE [--csv FILE] [--sandbox]
--   luapay repl
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
-- LUAPAY_TRUSTLY_USERNAME. Secrets are never printed.
local core = require "luapay.core"
local errors = require "luapay.errors"
local pretty = require "luapay.pretty"

local cli = {}

cli.EXIT = { OK = 0, FAILED = 1, USAGE = 2, CONFIG = 3 }

-- Provider commands live in luapay.cli.<provider> (loaded when present):
-- { name, sandbox_settings = fn(base_url), client = fn(settings), sign = fn,
-- verify = fn, call = fn, export = fn, urls = { kind = fn }, repl_name }.
-- The command fns take (ctx, positional args, options) and return a result
-- table or nil, err; the REPL builds its clients from client and
-- sandbox_settings.
cli.providers = {}

function cli.load_providers()
    for _, name in ipairs(require("luapay.sandbox.providers").NAMES) do
        if not cli.providers[name] and package.searchpath("luapay.cli." .. name, package.path) then
            cli.providers[name] = require("luapay.cli." .. name)
        end
    end
end

local Usage = {}  -- error raised for usage problems
local Config = {} -- ... and for configuration problems

local function usage_error(msg) error(setmetatable({ message = msg }, Usage), 0) end
local function config_error(msg) error(setmetatable({ message = msg }, Config), 0) end
cli.usage_error, cli.config_error = usage_error, config_error

---------------------------------------------------------------------------
-- Arguments, input, output
---------------------------------------------------------------------------

--- Splits argv into positionals and options: --name value, --name=value,
-- and the flags listed in `flags` (no value).
function cli.parse(argv, flags)
    local pos, opts = {}, {}
    local i = 1
    while i <= #argv do
        local a = argv[i]
        local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
        if name then
            opts[name] = value
        elseif a == "-h" or a == "--help" then
            opts.help = true
        elseif a:match("^%-%-[%w%-]+$") then
            name = a:sub(3)
            if flags[name] then
                opts[name] = true
            else
                i = i + 1
                if argv[i] == nil then usage_error("option --" .. name .. " needs a value") end
                opts[name] = argv[i]
            end
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return pos, opts
end

--- The text of a file, or of standard input when path is nil or "-".
function cli.read_input(path)
    local f, err = io.stdin, nil
    if path and path ~= "-" then
        f, err = io.open(path, "rb")
        if not f then usage_error("cannot read " .. path .. ": " .. tostring(err)) end
    end
    local text = f:read("*a")
    if f ~= io.stdin then f:close() end
    return text
end

--- Decodes JSON input or raises a usage error naming where it broke.
function cli.json_input(text, what)
    local value, err = core.json_decode(text)
    if value == nil then usage_error(("invalid JSON in %s (%s)"):format(what or "the input", err)) end
    return value
end

function cli.print_json(value)
    io.stdout:write(core.json_encode(errors.mask(value)) or pretty.format(value), "\n")
end

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

local function default_config_path()
    local home = os.getenv("HOME") or "."
    return os.getenv("LUAPAY_CONFIG") or (home .. "/.config/luapay/config.lua")
end
cli.default_config_path = default_config_path

--- The configuration table: the file (if any), then LUAPAY_<P>_<F>
-- variables for the given provider's fields.
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
            chunk, err = loadstring(text, "@" .. path)
            if chunk then setfenv(chunk, {}) end
        else
            chunk, err = load(text, "@" .. path, "t", {})
        end
        if not chunk then config_error("config file " .. path .. ": " .. err) end
        local ok, value = pcall(chunk)
        if not ok or type(value) ~= "table" then
            config_error("config file " .. path .. " must return a table" .. (ok and "" or (": " .. tostring(value))))
        end
        config = value
    end
    return config
end

--- Settings of one provider: the config file's section, overridden by
-- LUAPAY_<PROVIDER>_<FIELD> for each field in `fields`.
function cli.provider_settings(config, provider, fields, env)
    env = env or os.getenv
    local settings = {}
    for k, v in pairs(config[provider] or {}) do settings[k] = v end
    for _, field in ipairs(fields) do
        local v = env(("LUAPAY_%s_%s"):format(provider:upper(), field:upper()))
        if v and v ~= "" then settings[field] = v end
    end
    return settings
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

-- The sandbox's base URL and, per provider, the settings a client needs
-- (public test credentials, printed as they are: that is their point).
local function describe_sandbox(sb)
    local providers = require "luapay.sandbox.providers"
    local out = { url = sb.url, providers = {} }
    for _, name in ipairs(providers.available()) do
        local adapter = cli.providers[name]
        out.providers[name] = adapter and adapter.sandbox_settings and adapter.sandbox_settings(sb.url .. "/" .. name)
            or providers.describe(name, sb)
    end
    return out
end

local function print_sandbox(sb)
    io.stdout:write(core.json_encode(describe_sandbox(sb)), "\n")
end

local function cmd_sandbox(argv)
    local pos, opts = cli.parse(argv, {})
    if opts.help or not pos[1] then
        io.write(cli.commands.sandbox.help, "\n")
        return opts.help and cli.EXIT.OK or cli.EXIT.USAGE
    end
    local action = pos[1]
    if action == "start" then
        local running = cli.running_sandbox()
        if running then
            print_sandbox(running)
            return cli.EXIT.OK
        end
        local sandbox = require "luapay.sandbox"
        local providers = require "luapay.sandbox.providers"
        local sb, err = sandbox.start{ routes = providers.routes(), detach = true }
        if not sb then config_error(err) end
        local f = assert(io.open(state_path(), "wb"))
        f:write(core.json_encode(sb:state()))
        f:close()
        print_sandbox(sb)
        return cli.EXIT.OK
    elseif action == "status" then
        local sb, err = cli.running_sandbox()
        if not sb then
            io.stderr:write("luapay: ", err, "\n")
            return cli.EXIT.FAILED
        end
        print_sandbox(sb)
        return cli.EXIT.OK
    elseif action == "stop" then
        local sb = cli.running_sandbox()
        if sb then
            local ok, err = sb:stop()
            os.remove(state_path())
            if not ok then
                io.stderr:write("luapay: ", err, "\n")
                return cli.EXIT.FAILED
            end
        end
        io.write("sandbox stopped\n")
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

-- Prints a provider function's result (false: it printed its own output);
-- maps errors to exit codes.
local function finish(result, err)
    if result == nil then
        io.stderr:write("luapay: ", tostring(err), "\n")
        return cli.EXIT.FAILED
    end
    if result ~= false then cli.print_json(result) end
    return cli.EXIT.OK
end

local function provider_command(capability, min_args)
    return function(argv)
        local pos, opts = cli.parse(argv, { explain = true, sandbox = true })
        if opts.help then
            io.write(cli.commands[capability].help, "\n")
            return cli.EXIT.OK
        end
        if #pos < min_args then usage_error(cli.commands[capability].usage) end
        local p = provider(pos[1], capability)
        local ctx = { opts = opts, config = cli.load_config() }
        return finish(p[capability](ctx, pos, opts))
    end
end

local function cmd_url(argv)
    local pos, opts = cli.parse(argv, { sandbox = true })
    if opts.help then
        io.write(cli.commands.url.help, "\n")
        return cli.EXIT.OK
    end
    local kind = pos[1]
    if not kind then usage_error(cli.commands.url.usage) end
    for _, p in pairs(cli.providers) do
        local build = p.urls and p.urls[kind]
        if build then return finish(build({ opts = opts, config = cli.load_config() }, pos, opts)) end
    end
    usage_error("unknown URL kind '" .. kind .. "'")
end

---------------------------------------------------------------------------
-- The REPL
---------------------------------------------------------------------------

-- Compiles a line as an expression (to print its values), else as a
-- statement, in env. The error is the statement's ("<eof>" when incomplete).
local function compile(code, env)
    local chunk, err
    for _, src in ipairs({ "return " .. code, code }) do
        if setfenv then
            chunk, err = loadstring(src, "=repl")
            if chunk then setfenv(chunk, env) end
        else
            chunk, err = load(src, "=repl", "t", env)
        end
        if chunk then return chunk end
    end
    return nil, err
end

local function pack(...) return { n = select("#", ...), ... } end

--- Runs a read-eval-print loop on the given input and output: an
-- expression prints its values (pretty, secrets masked); a statement runs;
-- an incomplete chunk asks for more lines.
function cli.repl(env, input, output, prompt)
    input, output = input or io.stdin, output or io.stdout
    local buffer = nil
    while true do
        output:write(buffer and ">> " or (prompt or "luapay> "))
        output:flush()
        local line = input:read("*l")
        if line == nil then
            output:write("\n")
            return
        end
        local code = buffer and (buffer .. "\n" .. line) or line
        local chunk, err = compile(code, env)
        buffer = nil
        if not chunk and err:match("<eof>$") then
            buffer = code
        elseif not chunk then
            output:write(err, "\n")
        else
            local results = pack(pcall(chunk))
            if not results[1] then
                output:write(tostring(results[2]), "\n")
            elseif results.n > 1 then
                local parts = {}
                for i = 2, results.n do parts[#parts + 1] = pretty.format(results[i]) end
                output:write(table.concat(parts, "\t"), "\n")
            end
        end
    end
end

local function cmd_repl(argv)
    local _, opts = cli.parse(argv, {})
    if opts.help then
        io.write(cli.commands.repl.help, "\n")
        return cli.EXIT.OK
    end
    local luapay = require "luapay"
    local sandbox = require "luapay.sandbox"
    local providers = require "luapay.sandbox.providers"
    local env = setmetatable({ luapay = luapay, core = luapay.core, pretty = pretty }, { __index = _G })
    local sb, err = sandbox.start{ routes = providers.routes() }
    if not sb then config_error(err) end
    env.sandbox = sb
    local names = {}
    for name, p in pairs(cli.providers) do
        local ok, client = pcall(p.client, p.sandbox_settings(sb.url .. "/" .. name))
        if ok then
            env[p.repl_name or name] = client
            names[#names + 1] = p.repl_name or name
        else
            io.stderr:write(("luapay: no %s client in this REPL: %s\n"):format(name, tostring(client)))
        end
    end
    table.sort(names)
    io.write(("luapay %s REPL on %s, sandbox at %s\n"):format(luapay.VERSION, _VERSION, sb.url))
    if #names > 0 then io.write("clients for the sandbox: ", table.concat(names, ", "), "\n") end
    io.write("globals: luapay, core, pretty, sandbox; end with Ctrl-D\n")
    cli.repl(env)
    sb:stop()
    return cli.EXIT.OK
end

---------------------------------------------------------------------------
-- Commands and main
---------------------------------------------------------------------------

cli.commands = {
    sandbox = { run = cmd_sandbox, usage = "usage: luapay sandbox start|stop|status",
        help = [[usage: luapay sandbox start|stop|status

Runs the fake providers on loopback in the background (nginx), and prints
their base URLs and test credentials as JSON. `stop` ends it and removes its
files; `status` prints the same as `start` while it runs (exit 1 if not).]] },
    sign = { run = provider_command("sign", 1), usage = "usage: luapay sign <provider> [file] [--explain]",
        help = [[usage: luapay sign <provider> [file] [--explain]

Signs the JSON request in file (standard input without one) the way the
provider expects, and prints the signed request. --explain also prints the
canonical string that was signed. Credentials come from the configuration.]] },
    verify = { run = provider_command("verify", 1), usage = "usage: luapay verify <provider> [file] [--explain]",
        help = [[usage: luapay verify <provider> [file] [--explain]

Verifies a saved callback or notification body (file, or standard input)
and prints the event. Exit 1 when the signature does not verify.]] },
    url = { run = cmd_url, usage = "usage: luapay url <kind> [file] [--sandbox]",
        help = [[usage: luapay url <kind> [file] [--sandbox]

Builds a payment URL for the customer's browser from the JSON parameters in
file (or standard input), for the configured account or the running sandbox.
Kinds: ecommpay-page, trustpay-wire, trustpay-card.]] },
    call = { run = provider_command("call", 2), usage = "usage: luapay call <provider> <method> [json] [--sandbox]",
        help = [[usage: luapay call <provider> <method> [json] [--sandbox]

Makes one API call with the JSON request given (or from standard input)
against the configured account, or against the running sandbox with
--sandbox, and prints the answer.]] },
    export = { run = provider_command("export", 1),
        usage = "usage: luapay export begateway|trustly-na --from DATE --to DATE [--csv FILE] [--sandbox]",
        help = [[usage: luapay export begateway|trustly-na --from DATE --to DATE [--csv FILE] [--sandbox]

Streams every transaction of the period, as JSON lines or into a CSV file,
with a progress line on standard error for long exports.]] },
    repl = { run = cmd_repl, usage = "usage: luapay repl",
        help = [[usage: luapay repl

An interactive Lua session with luapay loaded, a sandbox running, and one
client per provider configured for it. Results print as readable tables,
secrets masked.]] },
}

cli.ORDER = { "sandbox", "sign", "verify", "url", "call", "export", "repl" }

function cli.help()
    local lines = { "usage: luapay <command> [arguments] [--help]", "", "commands:" }
    for _, name in ipairs(cli.ORDER) do lines[#lines + 1] = "  " .. cli.commands[name].usage:gsub("^usage: luapay ", "") end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "exit codes: 0 done, 1 the operation failed, 2 usage, 3 configuration"
    lines[#lines + 1] = "configuration: " .. default_config_path() .. " and LUAPAY_<PROVIDER>_<FIELD> variables"
    return table.concat(lines, "\n")
end

--- Runs the command line; returns the exit code. Errors end in one line
-- on standard error.
function cli.main(argv)
    cli.load_providers()
    local name = argv[1]
    if name == nil or name == "-h" or name == "--help" or name == "help" then
        io.write(cli.help(), "\n")
        return name and cli.EXIT.OK or cli.EXIT.USAGE
    end
    local command = cli.commands[name]
    local rest = {}
    for i = 2, #argv do rest[#rest + 1] = argv[i] end
    if not command then
        io.stderr:write(("luapay: unknown command '%s' (try luapay --help)\n"):format(name))
        return cli.EXIT.USAGE
    end
    local ok, result = pcall(command.run, rest)
    if ok then return result end
    local mt = getmetatable(result)
    if mt == Usage then
        io.stderr:write("luapay: ", result.message, "\n")
        return cli.EXIT.USAGE
    elseif mt == Config then
        io.stderr:write("luapay: ", result.message, "\n")
        return cli.EXIT.CONFIG
    end
    io.stderr:write("luapay: internal error: ", tostring(result):gsub("\n.*", ""), "\n")
    return cli.EXIT.FAILED
end

return cli
