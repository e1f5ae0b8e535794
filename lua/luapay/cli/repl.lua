--- luapay.cli.repl: `luapay repl`, an interactive Lua session with luapay
-- loaded, a sandbox running and one client per provider configured for it.
--
-- On a terminal lines are read through Debian's lua-readline (line editing,
-- history kept across sessions, TAB completion of globals, fields and
-- methods); elsewhere (a script piped in) plainly, line by line. Ctrl-C
-- cancels the line being typed or the code running; twice at an empty
-- prompt, Ctrl-D or os.exit() end the session. However it ends, the
-- sandbox's nginx is stopped (Sandbox:stop_with_process). Everything the
-- session prints passes through cli.out: no client's secret shows, and no
-- line holding one is kept in the history.
local cli = require "luapay.cli"
local core = require "luapay.core"
local errors = require "luapay.errors"
local pretty = require "luapay.pretty"

local repl = {}

---------------------------------------------------------------------------
-- Evaluation
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
        if chunk then
            -- LuaJIT checks for a Ctrl-C (a hook) only in code it interprets:
            -- what is typed is never compiled, so that a loop can be stopped.
            if jit then jit.off(chunk, true) end
            return chunk
        end
    end
    return nil, err
end

local function pack(...) return { n = select("#", ...), ... } end

-- An error as the session shows it: a message as is, anything else
-- (an error table) readable, secrets masked either way.
local function error_text(e)
    if type(e) == "string" then return e end
    local mt = getmetatable(e)
    if type(mt) == "table" and mt.__tostring then
        local ok, text = pcall(tostring, e) -- an error's own __tostring may fail too
        if ok and type(text) == "string" then return text end
    end
    return "error: " .. pretty.format(e)
end

local function interrupted(e)
    return type(e) == "string" and e:find("interrupted!$") ~= nil
end

--- repl.loop(env, input, output [, prompt]) -> how it ended: "end" (end of
-- input), or "interrupt" (Ctrl-C twice at an empty prompt).
-- input: a file (input:read("*l")), or a reader whose input:line(prompt)
-- shows the prompt itself and returns the line, nil at the end, or false
-- when Ctrl-C cancelled it (input.empty = false: something had been typed);
-- a reader's input:remember(line) keeps a line for its history. An expression prints
-- its values (pretty, secrets masked); a statement runs; an incomplete chunk
-- asks for more lines.
function repl.loop(env, input, output, prompt)
    local buffer, last_was_interrupt = nil, false
    local function read()
        local p = buffer and ">> " or (prompt or "luapay> ")
        if input.line then return input:line(p) end
        output:write(p)
        output:flush()
        return input:read("*l")
    end
    -- One prompt, line and evaluation; returns "end" when input ended.
    local function step()
        local line = read()
        if line == nil then
            output:write("\n")
            return "end"
        end
        if line == false then error("interrupted!", 0) end
        last_was_interrupt = false
        local code = buffer and (buffer .. "\n" .. line) or line
        local chunk, err = compile(code, env)
        buffer = nil
        if not chunk and err:match("<eof>'?$") then -- Lua 5.1 and LuaJIT quote it
            buffer = code
            return
        end
        if chunk then
            local results = pack(pcall(chunk))
            if not results[1] then
                output:write(error_text(results[2]), "\n")
            elseif results.n > 1 then
                local parts = {}
                for i = 2, results.n do parts[#parts + 1] = pretty.format(results[i]) end
                output:write(table.concat(parts, "\t"), "\n")
            end
        else
            output:write(err, "\n")
        end
        -- After it ran: a line that made a client holds its secret too.
        if input.remember then
            for l in (code .. "\n"):gmatch("(.-)\n") do input:remember(l) end
        end
    end
    while true do
        local ok, result = pcall(step)
        if ok and result == "end" then return "end" end
        if not ok and not interrupted(result) then
            output:write(error_text(result), "\n")
        elseif not ok then
            -- Ctrl-C: at the prompt it drops what was typed; twice in a row
            -- at an empty prompt it ends the session.
            local at_empty_prompt = buffer == nil and input.empty ~= false
            if at_empty_prompt and last_was_interrupt then
                output:write("\n")
                return "interrupt"
            end
            buffer = nil
            last_was_interrupt = at_empty_prompt
            output:write(at_empty_prompt and "^C\n(to leave: Ctrl-C again, Ctrl-D or os.exit())\n" or "^C\n")
        end
    end
end

---------------------------------------------------------------------------
-- Reading from a terminal: lua-readline
---------------------------------------------------------------------------

--- repl.history_path([getenv]) -> the history file: $LUAPAY_HISTORY, else
-- luapay/history under $XDG_STATE_HOME, else ~/.local/state/luapay/history.
function repl.history_path(getenv)
    getenv = getenv or os.getenv
    local set = getenv("LUAPAY_HISTORY")
    if set and set ~= "" then return set end
    local state = getenv("XDG_STATE_HOME")
    if not state or state == "" then state = (getenv("HOME") or ".") .. "/.local/state" end
    return state .. "/luapay/history"
end

local KEEP = 1000 -- history lines kept in the file

-- The lines of the history file, its last KEEP; the file is rewritten when
-- it grew past them.
local function load_history(path)
    local lines = {}
    local f = io.open(path, "rb")
    if not f then return lines end
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    if #lines > KEEP then
        local kept = {}
        for i = #lines - KEEP + 1, #lines do kept[#kept + 1] = lines[i] end
        lines = kept
        f = io.open(path, "wb")
        if f then
            f:write(table.concat(lines, "\n"), "\n")
            f:close()
        end
    end
    return lines
end

local Reader = {}
Reader.__index = Reader

--- repl.terminal(complete, shell_quote) -> a reader on the terminal through
-- lua-readline, or nil and why not (not installed, or not built for this
-- Lua). complete(line, word) -> the words that may replace word.
function repl.terminal(complete, shell_quote)
    local ok, rl = pcall(require, "readline")
    if not ok or type(rl) ~= "table" or not rl.handler_install then
        return nil, ("lua-readline is not installed for %s (%s)"):format(_VERSION,
            (tostring(rl):match("^[^\n]*")))
    end
    -- History is ours (one line at a time, secrets left out), not readline's file.
    rl.set_options{ histfile = "", auto_add = false, completion = true }
    rl.set_readline_name("luapay")
    rl.set_complete_function(function(text, from, to) -- the word is text:sub(from, to - 1)
        -- readline sets " " before each completion: nothing after `x:deposit`
        if rl.set_completion_append_character then rl.set_completion_append_character("") end
        local got, words = pcall(complete, text, text:sub(from, to - 1))
        return got and words or {}
    end)
    local p = io.popen("stty -g 2>/dev/null")
    local tty = p and p:read("*l")
    if p then p:close() end
    local self = setmetatable({ rl = rl, path = repl.history_path(), shell_quote = shell_quote, new = {},
        tty = tty and tty:match("^[%x:]+$") }, Reader)
    for _, line in ipairs(load_history(self.path)) do self:remember(line, true) end
    return self
end

-- lua-readline's handler_remove closes its terminal stream before readline
-- lets go of it; readline then writes to the closed stream (heap damage,
-- "free(): invalid pointer") unless it had already left the terminal, as it
-- has when it hands over a line. So the handler is removed only there; a
-- Ctrl-C keeps it and the next prompt installs it again (its stream stays
-- open, one per Ctrl-C); at the end the terminal is restored from the
-- settings saved at the start (stty).

--- reader:line(prompt) -> the line typed; nil at Ctrl-D on an empty line;
-- false on Ctrl-C (reader.empty: nothing had been typed).
function Reader:line(prompt)
    local rl, line, done = self.rl, nil, false
    rl.handler_install(prompt, function(l)
        line, done = l, true
        rl.handler_remove() -- readline left the terminal: its output comes before a new prompt
        self.installed = false
    end)
    self.installed = true
    local keys = 0
    while not done do
        local ready, why = core.wait_input(0)
        if ready then
            rl.read_char()
            keys = keys + 1
        elseif why == "interrupted" then -- Ctrl-C: the next install drops the line
            if rl.sigcleanup then rl.sigcleanup() end
            self.empty = keys == 0
            return false
        else
            return nil
        end
    end
    self.empty = nil
    return line
end

--- reader:remember(line): kept in the history, except an empty line, a
-- repeat of the last one, and any line that holds a secret a client or the
-- configuration holds.
function Reader:remember(line, loading)
    if not line:find("%S") or line == self.last or errors.hide(line) ~= line then return end
    self.last = line
    self.rl.add_history(line)
    if not loading then self.new[#self.new + 1] = line end
end

--- reader:close(): leaves the terminal as it was, and adds the session's
-- lines to the history file. Only then: a line may hold a value that a
-- client made later in the session holds (`pw = "..."`, then
-- `x.new{secret = pw}`), and no such line is written.
function Reader:close()
    if self.installed and self.tty then -- left at a Ctrl-C: readline still holds the terminal
        io.stdout:write("\27[?2004l\n") -- bracketed paste off
        io.stdout:flush()
        os.execute("stty " .. self.tty .. " 2>/dev/null")
    end
    self.installed = false
    local lines = {}
    for _, line in ipairs(self.new) do
        if errors.hide(line) == line then lines[#lines + 1] = line .. "\n" end
    end
    self.new = {}
    if #lines == 0 then return end
    local f = io.open(self.path, "rb")
    if f then
        f:close()
    elseif self.shell_quote then -- made private: it holds what was typed
        local q = self.shell_quote
        os.execute(("umask 077; mkdir -p %s && : >> %s"):format(q(self.path:match("^(.*)/[^/]*$") or "."), q(self.path)))
    end
    f = io.open(self.path, "ab")
    if f then
        f:write(table.concat(lines))
        f:close()
    end
end

---------------------------------------------------------------------------
-- Completion
---------------------------------------------------------------------------

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- The names value offers: its own string keys, its class's (the metatable
-- and its __index tables: a client's methods) and a string's methods.
local function names_of(value, methods_only)
    local names, seen = {}, {}
    local function add(t, depth)
        if type(t) ~= "table" or seen[t] or depth > 4 then return end
        seen[t] = true
        for k, v in next, t do
            if type(k) == "string" and k:match("^[%a_][%w_]*$") and k:sub(1, 2) ~= "__"
                and (not methods_only or type(v) == "function") then
                names[k] = true
            end
        end
        local mt = getmetatable(t)
        if type(mt) == "table" then
            add(mt, depth + 1)
            add(rawget(mt, "__index"), depth + 1)
        end
    end
    if type(value) == "string" then add(string, 0) else add(value, 0) end
    if type(value) ~= "table" and type(value) ~= "string" then
        local mt = getmetatable(value) -- a userdata: its methods
        if type(mt) == "table" then add(rawget(mt, "__index"), 1) end
    end
    return names
end

--- repl.completer(env) -> complete(line, word): the words that may
-- replace word: globals and keywords; after `x.` x's fields; after `x:` its
-- methods (`trustly_client:de` -> `trustly_client:deposit`).
function repl.completer(env)
    return function(_, word)
        local head, partial = word:match("^(.-)([%a_]?[%w_]*)$")
        local names
        if head == "" then
            names = names_of(env)
            for _, k in ipairs(KEYWORDS) do names[k] = true end
        else
            local path, sep = head:match("^([%a_][%w_%.]*)([%.:])$")
            if not path or path:find("%.%.") or path:find("%.$") then return {} end
            local value = env
            for name in path:gmatch("[^%.]+") do
                local ok, v = pcall(function() return value[name] end)
                if not ok or v == nil then return {} end
                value = v
            end
            names = names_of(value, sep == ":")
        end
        local words = {}
        for k in pairs(names) do
            if k:sub(1, #partial) == partial then words[#words + 1] = head .. k end
        end
        table.sort(words)
        return words
    end
end

---------------------------------------------------------------------------
-- help()
---------------------------------------------------------------------------

local source_lines = {} -- file -> its lines

-- The doc comment above a Lua function's definition, as lines without the
-- comment marks; nil for a C function or one without.
-- The doc comment ending on the line before line n of lines.
local function comment_above(lines, n)
    local doc, i = {}, n - 1
    while i >= 1 and lines[i] and lines[i]:match("^%s*%-%-") do
        table.insert(doc, 1, (lines[i]:gsub("^%s*%-%-%-?%s?", "")))
        if lines[i]:match("^%s*%-%-%-") then break end -- where an ldoc comment starts
        i = i - 1
    end
    return #doc > 0 and doc or nil
end

-- name: the function's name in its table, for one made by another function
-- (Gate.sale = operation("sale")): its doc is above that assignment.
local function doc_of(f, name)
    -- provider.lifetime wraps each client method: the doc is the method's
    for _ = 1, 3 do
        local info = debug.getinfo(f, "S")
        if not (info and info.source:find("luapay/provider%.lua$")) then break end
        for i = 1, 8 do
            local upvalue, v = debug.getupvalue(f, i)
            if upvalue == nil then break end
            if upvalue == "f" and type(v) == "function" then
                f = v
                break
            end
        end
    end
    local info = debug.getinfo(f, "S")
    local file = info and info.source:match("^@(.*)$")
    if not file or not info.linedefined or info.linedefined < 2 then return nil end
    local lines = source_lines[file]
    if not lines then
        lines = {}
        local fh = io.open(file, "rb")
        if fh then
            for l in fh:lines() do lines[#lines + 1] = l end
            fh:close()
        end
        source_lines[file] = lines
    end
    local doc = comment_above(lines, info.linedefined)
    if doc or not name then return doc end
    for n, l in ipairs(lines) do
        if l:match("^[%w_]+[%.:]" .. name .. "%s*=") then return comment_above(lines, n) end
    end
end

local SUMMARY = 110 -- the longest one-line description

-- A doc comment's first sentence, on one line of at most SUMMARY bytes.
local function summary(doc)
    if not doc then return "" end
    local text = table.concat(doc, " "):gsub("%s+", " ")
    text = text:match("^(.-%.)%s+%u") or text
    if #text > SUMMARY then text = text:sub(1, SUMMARY - 3):gsub("%s*%S*$", "") .. " ..." end
    return text
end

-- The functions a table offers (its own and its class's), sorted.
local function functions_of(t)
    local list = {}
    for name in pairs(names_of(t, true)) do list[#list + 1] = name end
    table.sort(list)
    return list
end

-- One line for label<sep>name: the first line of its doc comment, which
-- starts with the call itself ("client:deposit(data) -> ..."), said with
-- label; else the call and the doc's first line.
local function method_line(label, sep, name, f)
    local first = summary(doc_of(f, name))
    local call = first:match("^[%w_%.]*[%.:]" .. name .. "(%f[^%w_].*)$")
    if call then return label .. sep .. name .. call end
    return label .. sep .. name .. "(...)" .. (first ~= "" and ("  " .. first) or "")
end

-- The first line of a module's own doc comment (its file's first "---").
local function module_line(modname)
    local f -- the file require would load (package.searchpath is not in Lua 5.1)
    for template in package.path:gmatch("[^;]+") do
        f = io.open((template:gsub("%?", (modname:gsub("%.", "/")))), "rb")
        if f then break end
    end
    if not f then return nil end
    local doc = {}
    for line in f:lines() do
        if not line:match("^%-%-") or (#doc > 0 and line:match("^%-%-%s*$")) then break end
        doc[#doc + 1] = (line:gsub("^%-%-%-?%s?", ""))
    end
    f:close()
    return summary(doc)
end

-- Text of help(value); label: the name it has in the session.
local function describe(value, label, name)
    label = label or "x"
    if type(value) == "function" then
        local doc = doc_of(value, name)
        return doc and table.concat(doc, "\n") or (label .. ": no description (a C function, or one without a doc comment)")
    end
    if type(value) ~= "table" then return pretty.format(value) end
    local mt = getmetatable(value)
    local is_object = type(mt) == "table" and mt.__tostring ~= nil
    local out = { is_object and tostring(value) or label }
    local names = functions_of(value)
    if #names == 0 then out[#out + 1] = pretty.format(value) end
    for _, method in ipairs(names) do
        out[#out + 1] = "  " .. method_line(label, is_object and ":" or ".", method, value[method])
    end
    return table.concat(out, "\n")
end

-- The name value has in the session ("gate", "gate:sale", "trustly.sign"),
-- and for a function its name in its table.
local function name_in(env, value)
    for k, v in pairs(env) do
        if rawequal(v, value) and type(k) == "string" then return k end
    end
    for k, v in pairs(env) do
        local mt = getmetatable(v)
        if type(k) == "string" and type(v) == "table" then
            for name in pairs(names_of(v, true)) do
                if rawequal(v[name], value) then
                    return k .. (type(mt) == "table" and mt.__tostring and ":" or ".") .. name, name
                end
            end
        end
    end
end

--- repl.help(env, clients, modules) -> the session's help function.
-- help() lists the clients (names in env) with their methods, one line
-- each, and the modules (require names: env[short name]); help(x) tells
-- about x: a client or module (its functions) or a function (its doc).
-- It prints with env.print.
function repl.help(env, clients, modules)
    return function(...)
        if select("#", ...) > 0 then
            local value = ...
            return env.print(describe(value, name_in(env, value)))
        end
        local out = { "Clients for the sandbox: client:method(params) returns the result, or nil, err." }
        for _, name in ipairs(clients) do
            out[#out + 1] = ""
            out[#out + 1] = describe(env[name], name)
        end
        out[#out + 1] = ""
        out[#out + 1] = "Modules (help(name) lists one's functions):"
        for _, m in ipairs(modules) do
            out[#out + 1] = ("  %-11s %s"):format(m[1], module_line(m[2]) or m[3] or "")
        end
        out[#out + 1] = ""
        local example = clients[1] or "core"
        out[#out + 1] = ("help(x) tells about one thing: help(%s), help(%s.%s). TAB completes globals, fields (x.) and"
            .. " methods (x:); Ctrl-C cancels the line; Ctrl-D or os.exit() leaves."):format(example, example,
            functions_of(env[example] or {})[1] or "close")
        env.print(table.concat(out, "\n"))
    end
end

---------------------------------------------------------------------------
-- The command
---------------------------------------------------------------------------

-- A file-like object whose write goes through write_fn; its other methods
-- are the file's.
local function filtered(file, write_fn)
    return setmetatable({ write = function(self, ...)
        write_fn(...)
        return self
    end }, { __index = function(_, k)
        local f = file[k]
        if type(f) ~= "function" then return f end
        return function(_, ...) return f(file, ...) end
    end })
end

--- repl.run(argv) -> exit code: the `luapay repl` command. Starts the
-- sandbox and the clients, and runs the session on standard input.
function repl.run(argv)
    local pos, opts = cli.parse(argv, cli.commands.repl.options)
    if opts.help then
        cli.out(cli.commands.repl.help, "\n")
        return cli.EXIT.OK
    end
    cli.check_count(pos, cli.commands.repl, 0, 0)
    local luapay = require "luapay"
    local sandbox = require "luapay.sandbox"
    local providers = require "luapay.sandbox.providers"
    local env = setmetatable({ luapay = luapay, core = luapay.core, pretty = pretty }, { __index = _G })
    local sb, err = sandbox.start{ routes = providers.routes() }
    if not sb then cli.config_error(err) end
    sb:stop_with_process() -- however the session ends, even by a signal
    env.sandbox = sb
    local names = {}
    for name, p in pairs(cli.providers) do
        local ok, client = pcall(p.client, p.sandbox_settings(sb.url .. "/" .. name))
        if ok then
            env[p.repl_name or name] = client
            names[#names + 1] = p.repl_name or name
        else
            local why = type(client) == "table" and client.message or tostring(client)
            cli.err(("luapay: no %s client in this REPL: %s\n"):format(name, why))
        end
    end
    table.sort(names)
    -- The provider modules, by their names (ecommpay.signature, ...).
    local modules = { { "luapay", "luapay" }, { "pretty", "luapay.pretty" }, { "sandbox", "luapay.sandbox" },
        { "core", "luapay.core", "the C core: signatures, JSON, money, HTTP (help(core) lists its functions)" } }
    for _, name in ipairs(require("luapay.providers").NAMES) do
        if env[name] == nil and cli.providers[name] then
            env[name] = luapay[name]
            modules[#modules + 1] = { name, "luapay." .. name }
        end
    end
    -- What the session prints passes through the same filter as the commands.
    local output = filtered(io.stdout, cli.out)
    env.print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
        cli.out(table.concat(parts, "\t"), "\n")
    end
    -- io.output() is that output too; io.output(file or name) sends io.write
    -- to a file of the session's own, as in Lua, leaving the REPL's alone.
    local current = output
    env.io = setmetatable({ stdout = output, stderr = filtered(io.stderr, cli.err),
        write = function(...) return current:write(...) end,
        output = function(file)
            if file == output or file == io.stdout then current = output
            elseif type(file) == "string" then current = assert(io.open(file, "w"))
            elseif file ~= nil then current = file end
            return current
        end }, { __index = io })
    env.help = repl.help(env, names, modules)

    local reader, why
    if cli.isatty(0) then reader, why = repl.terminal(repl.completer(env), cli.shell_quote) end
    local function leave()
        if reader and reader.close then reader:close() end
        sb:stop()
    end
    env.os = setmetatable({ exit = function(...)
        leave()
        os.exit(...)
    end }, { __index = os })

    cli.out(("luapay %s REPL on %s, sandbox at %s\n"):format(luapay.VERSION, _VERSION, sb.url))
    if #names > 0 then cli.out("clients for the sandbox: ", table.concat(names, ", "), "\n") end
    local short = {}
    for i, m in ipairs(modules) do short[i] = m[1] end
    cli.out("modules: ", table.concat(short, ", "), "; help() says what each offers; end with Ctrl-D\n")
    if why then cli.err("luapay: ", why, "; lines are read without editing, history or completion\n") end
    reader = reader or { line = function(_, prompt) -- not a terminal: plain lines (a script)
        output:write(prompt)
        io.stdout:flush()
        local line, read_err = io.stdin:read("*l")
        if line == nil and read_err then return false end -- a Ctrl-C stopped the read
        return line
    end }
    core.raise_on_interrupt() -- Ctrl-C cancels the line or the code running, never the session
    local ok, how = pcall(repl.loop, env, reader, output)
    leave()
    if not ok then error(how, 0) end
    return how == "interrupt" and 130 or cli.EXIT.OK
end

return repl
