-- Every block of README.md can be pasted as it stands, and the README names
-- no file outside the repository.
--
-- Each fenced block has a language: lua, sh, nginx or text. A lua block is
-- compiled, then run as a script from a temporary directory outside the
-- checkout (starting its own sandbox where it needs one). A sh block names
-- commands and files that exist: `make` lines run as `make -n`, each
-- `luapay` command answers --help, and a block marked `run` runs whole. An
-- nginx block passes `nginx -t` inside a minimal main context.
--
-- The comment line just before a block changes how it is checked:
--   <!-- readme-spec: repl -->               lines pasted into `luapay repl`
--   <!-- readme-spec: lua-repl -->           lines pasted into the plain Lua REPL (`lua -i`)
--   <!-- readme-spec: from the checkout -->  run from the repository root, as its text says
--   <!-- readme-spec: env A=1 B=$SANDBOX/x --> run with these variables; $SANDBOX is a
--                                            sandbox with every fake, started by this spec
--   <!-- readme-spec: run -->                (sh) run the whole block
--   <!-- readme-spec: not run: REASON -->    compiled and checked, not run (NOT_RUN lists them)
local util = require "support.util"

local ROOT = io.popen("pwd"):read("*l")
local LUA, BUILD = util.LUA, ROOT .. "/" .. util.PLAIN_BUILD
local LUA_ENV = ("env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;'"
    .. " LUA_CPATH='%s/?.so;;' LUAPAY_CONFIG=/nonexistent"):format(ROOT, ROOT, BUILD)

-- The blocks that are deliberately not run, by section: keep it short.
local NOT_RUN = {
    "One contract for every provider",   -- a content_by_lua_block of the shop
    "Running on several boxes",          -- the shop's clients and Redis; spec/71 and 73 run the inbox
    "HTTP: the pipeline and its transports", -- api.example.com stands for a provider
}

local LANGUAGES = { lua = true, sh = true, nginx = true, text = true }

local compile = loadstring or load -- (text, name): Lua 5.1 and LuaJIT's load takes a function

-- Splits text into its fenced blocks: {line, lang, code, section, marks}.
local function fenced_blocks(text)
    local lines, list = {}, {}
    for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    local section, i = "", 1
    while i <= #lines do
        section = lines[i]:match("^##+ (.*)") or section
        local indent, lang = lines[i]:match("^( *)```(%S*)%s*$")
        if indent then
            local b = { line = i, lang = lang, section = section, marks = {} }
            local mark = (lines[i - 1] or ""):match("^%s*<!%-%- readme%-spec: (.-) %-%->%s*$")
            if mark then
                b.mark = mark
                b.marks.reason = mark:match("^not run: (.+)$")
                if not b.marks.reason then
                    for word in mark:gmatch("[^,]+") do
                        word = word:match("^%s*(.-)%s*$")
                        local env = word:match("^env (.+)$")
                        if env then b.marks.env = env else b.marks[word] = true end
                    end
                end
            end
            local body = {}
            i = i + 1
            while i <= #lines and not lines[i]:match("^" .. indent .. "```%s*$") do
                body[#body + 1] = lines[i]:sub(#indent + 1)
                i = i + 1
            end
            assert(i <= #lines, "README.md: the block at line " .. b.line .. " is not closed")
            b.code = table.concat(body, "\n") .. "\n"
            list[#list + 1] = b
        end
        i = i + 1
    end
    return list
end

local README = util.read("README.md")
local BLOCKS = fenced_blocks(README)

local function where(b) return ("README.md:%d (%s)"):format(b.line, b.section) end

local function tmpdir()
    local p = io.popen("mktemp -d")
    local dir = p:read("*l")
    p:close()
    return dir
end

local function run(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    local code = tonumber(out:match("exit=(%d+)\n$"))
    return out:gsub("exit=%d+\n$", ""), code
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The REPLs compile a line as an expression, else as a statement, and wait
-- for more lines while the chunk is incomplete: the same here.
local function compile_repl_lines(code)
    local pending = nil
    for line in code:gmatch("(.-)\n") do
        local chunk = pending and pending .. "\n" .. line or line
        local ok = compile("return " .. chunk, "=repl")
        local err
        if not ok then ok, err = compile(chunk, "=repl") end
        if ok then
            pending = nil
        elseif err:match("<eof>") then
            pending = chunk
        else
            return nil, err
        end
    end
    if pending then return nil, "unfinished at the end: " .. pending end
    return true
end

describe("README.md's blocks", function()
    it("each have a language the spec checks, and marks it knows", function()
        assert.is_true(#BLOCKS >= 20)
        for _, b in ipairs(BLOCKS) do
            assert.is_true(LANGUAGES[b.lang] == true, where(b) .. ": a block needs one of lua, sh, nginx, text; got '" .. b.lang .. "'")
            for k in pairs(b.marks) do
                assert.is_true(({ repl = true, ["lua-repl"] = true, ["from the checkout"] = true, env = true, run = true,
                    reason = true })[k] == true, where(b) .. ": unknown mark '" .. tostring(k) .. "'")
            end
            if b.marks.run then assert.equal("sh", b.lang, where(b)) end
        end
        -- every comment meant for this spec sits just before a block
        local marks = select(2, README:gsub("<!%-%- readme%-spec:", ""))
        local marked = 0
        for _, b in ipairs(BLOCKS) do if b.mark then marked = marked + 1 end end
        assert.equal(marks, marked)
    end)

    it("are all run but the few listed as not run, each with its reason", function()
        local not_run = {}
        for _, b in ipairs(BLOCKS) do
            if b.marks.reason then not_run[#not_run + 1] = b.section end
        end
        assert.same(NOT_RUN, not_run)
    end)

    it("compile, every lua block (REPL sessions line by line)", function()
        for _, b in ipairs(BLOCKS) do
            if b.lang == "lua" then
                local ok, err
                if b.marks.repl or b.marks["lua-repl"] then
                    ok, err = compile_repl_lines(b.code)
                else
                    ok, err = compile(b.code, "=" .. where(b))
                end
                assert.is_truthy(ok, where(b) .. ": " .. tostring(err))
            end
        end
    end)
end)

describe("README.md's lua blocks run as pasted", function()
    local sandbox = require "luapay.sandbox"

    for _, b in ipairs(BLOCKS) do
        if b.lang == "lua" and not b.marks.reason then
            it(where(b), function()
                local dir = tmpdir()
                local sb
                finally(function()
                    if sb then util.stop_sandbox(sb) end
                    os.execute("rm -rf " .. shell_quote(dir))
                end)
                local cwd = b.marks["from the checkout"] and ROOT or dir
                local input = dir .. "/block.lua"
                util.write(input, b.code)
                local env = ""
                if b.marks.env then
                    sb = assert(sandbox.start { routes = require("luapay.sandbox.providers").routes() })
                    env = b.marks.env:gsub("%$SANDBOX", sb.url)
                end
                local cmd
                if b.marks.repl then
                    cmd = ("%s %s/bin/luapay repl < %s"):format(LUA_ENV, ROOT, shell_quote(input))
                elseif b.marks["lua-repl"] then
                    cmd = ("%s %s -i < %s"):format(LUA_ENV, LUA, shell_quote(input))
                else
                    cmd = ("%s %s %s %s"):format(LUA_ENV, env, LUA, shell_quote(input))
                end
                local out, code = run(("cd %s && %s"):format(shell_quote(cwd), cmd))
                assert.equal(0, code, where(b) .. ":\n" .. out)
                if b.marks.repl or b.marks["lua-repl"] then
                    -- a REPL goes on after an error: every line ran, none was left unfinished
                    assert.is_nil(out:find("stdin:%d+:") or out:find("repl:%d+:"), where(b) .. ":\n" .. out)
                    assert.is_nil(out:find("stack traceback", 1, true), where(b) .. ":\n" .. out)
                    assert.is_nil(out:find(">> ", 1, true), where(b) .. ":\n" .. out)
                end
            end)
        end
    end
end)

-- The words of a shell command line, comments dropped; quoted text is one word.
local function words(line)
    local list, i = {}, 1
    while i <= #line do
        local c = line:sub(i, i)
        if c:match("%s") then
            i = i + 1
        elseif c == "#" then
            break
        elseif c == "'" or c == '"' then
            local j = line:find(c, i + 1, true) or #line
            list[#list + 1] = { text = line:sub(i + 1, j - 1), quoted = true }
            i = j + 1
        elseif c:match("[|;<>]") then
            list[#list + 1] = { text = c, op = true }
            i = i + 1
        else
            local j = line:find("[%s|;<>'\"]", i) or #line + 1
            list[#list + 1] = { text = line:sub(i, j - 1) }
            i = j
        end
    end
    return list
end

-- An argument that names a file of the repository: a path with a directory,
-- a rockspec, JSON or Lua file; not the file an option such as --csv writes.
local function repository_file(w, previous)
    if w.quoted or previous.text == "--csv" then return false end
    return w.text:match("^[%w_.-]+/[%w_./-]+$") or w.text:match("^[%w_.-]+%.rockspec$")
        or w.text:match("^[%w_.-]+%.json$") or w.text:match("^[%w_.-]+%.lua$")
end

-- Each command of a sh block: {name, args = {...}, inputs = {...}, outputs = {...}}.
local function commands(code)
    local list = {}
    for line in code:gmatch("(.-)\n") do
        local cmd = nil
        local ws = words(line)
        for k, w in ipairs(ws) do
            if w.op and w.text ~= "<" and w.text ~= ">" then
                cmd = nil
            elseif w.op then
                cmd.redirect = w.text
            elseif cmd == nil then
                cmd = { name = w.text, args = {}, inputs = {}, outputs = {}, line = line }
                list[#list + 1] = cmd
            elseif cmd.redirect == "<" then
                cmd.inputs[#cmd.inputs + 1] = w.text
                cmd.redirect = nil
            elseif cmd.redirect == ">" then
                cmd.outputs[#cmd.outputs + 1] = w.text
                cmd.redirect = nil
            else
                cmd.args[#cmd.args + 1] = w.text
                if repository_file(w, ws[k - 1]) then cmd.inputs[#cmd.inputs + 1] = w.text end
                if ws[k - 1].text == "--csv" then cmd.outputs[#cmd.outputs + 1] = w.text end
            end
        end
    end
    return list
end

describe("README.md's sh blocks", function()
    for _, b in ipairs(BLOCKS) do
        if b.lang == "sh" then
            it(where(b) .. " name commands and files that exist", function()
                local cmds = commands(b.code)
                assert.is_true(#cmds > 0, where(b))
                for _, c in ipairs(cmds) do
                    local context = where(b) .. ": " .. c.line
                    if c.name == "luapay" then
                        local _, code = run(("%s %s/bin/luapay %s --help"):format(LUA_ENV, ROOT, c.args[1] or ""))
                        assert.equal(0, code, context)
                    elseif c.name == "make" then
                        local args = {}
                        for _, a in ipairs(c.args) do args[#args + 1] = shell_quote(a) end
                        local out, code = run(("%s make -n %s"):format(LUA_ENV, table.concat(args, " ")))
                        assert.equal(0, code, context .. "\n" .. out)
                    elseif c.name ~= "eval" then
                        local _, code = run("command -v " .. shell_quote(c.name))
                        assert.equal(0, code, context .. ": no command '" .. c.name .. "'")
                    end
                    for _, file in ipairs(c.inputs) do
                        assert.is_true(util.exists(file), context .. ": no file " .. file .. " in the repository")
                    end
                end
            end)
            if b.marks.run then
                it(where(b) .. " runs as it stands", function()
                    local dir = tmpdir()
                    local env = ("%s LUAPAY_SANDBOX_STATE=%s/sandbox.json HOME=%s PATH=%s/bin:\"$PATH\"")
                        :format(LUA_ENV, dir, dir, ROOT)
                    local cwd = b.marks["from the checkout"] and ROOT or dir
                    local written = {} -- what the block writes, removed after it
                    for _, c in ipairs(commands(b.code)) do
                        for _, file in ipairs(c.outputs) do
                            if not util.exists(cwd .. "/" .. file) then written[#written + 1] = cwd .. "/" .. file end
                        end
                    end
                    finally(function()
                        run(("cd %s && %s luapay sandbox stop"):format(shell_quote(cwd), env))
                        for _, file in ipairs(written) do os.remove(file) end
                        os.execute("rm -rf " .. shell_quote(dir))
                    end)
                    util.write(dir .. "/block.sh", b.code)
                    local out, code = run(("cd %s && %s sh -e %s/block.sh </dev/null"):format(shell_quote(cwd), env, dir))
                    assert.equal(0, code, where(b) .. ":\n" .. out)
                end)
            end
        end
    end
end)

describe("README.md's nginx blocks", function()
    for _, b in ipairs(BLOCKS) do
        if b.lang == "nginx" then
            it(where(b) .. " pass nginx -t in a minimal main context", function()
                local dir = tmpdir()
                finally(function() os.execute("rm -rf " .. shell_quote(dir)) end)
                -- the server's own certificate: a throw-away one
                local _, code = run(("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=shop.example -days 1"
                    .. " -keyout %s/shop.key -out %s/shop.pem"):format(dir, dir))
                assert.equal(0, code)
                local conf = b.code:gsub("(ssl_certificate%s+)%S+;", "%1" .. dir .. "/shop.pem;")
                    :gsub("(ssl_certificate_key%s+)%S+;", "%1" .. dir .. "/shop.key;")
                util.write(dir .. "/nginx.conf", table.concat({
                    "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
                    "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
                    "pid " .. dir .. "/nginx.pid;",
                    "error_log " .. dir .. "/error.log;",
                    "events {}",
                    conf,
                }, "\n"))
                local out
                out, code = run(("env -u LD_PRELOAD nginx -t -q -p %s -e %s/error.log -c %s/nginx.conf"):format(dir, dir, dir))
                assert.equal(0, code, where(b) .. ":\n" .. out)
            end)
        end
    end
end)

-- Text that names a file outside the repository: a parent directory, or a
-- path of the machine the docs were written on.
local function outside_names(text)
    local found = {}
    for path in text:gmatch("[%s`'\"(=](%.%./[^%s`'\"]*)") do found[#found + 1] = path end
    for path in text:gmatch("[%s`'\"(=](/[%w_.-]+/?[^%s`'\"]*)") do
        local top = path:match("^/([%w_.-]+)")
        if ({ work = true, home = true, root = true, srv = true, mnt = true, media = true, shared = true })[top] then
            found[#found + 1] = path
        end
    end
    if text:find(ROOT, 1, true) then found[#found + 1] = ROOT end
    -- a document by name: one of the repository's
    for name in text:gmatch("([%w_.-]+%.md)%f[^%w_]") do
        if not util.exists(name) then found[#found + 1] = name end
    end
    return found
end

-- The repository's files that text names and that do not exist: paths from
-- a top-level directory (a glob, or "spec/63" for the spec numbered 63)
-- and C files by name; a name with `placeholder` in it is a recipe's example.
local function missing_files(text, placeholder)
    local missing = {}
    local function check(path)
        if placeholder and path:find(placeholder) then return end
        local _, code = run(("cd %s && ls -d %s >/dev/null"):format(shell_quote(ROOT), path))
        if code ~= 0 then missing[#missing + 1] = path end
    end
    for path in text:gmatch("%f[%w_.](%.?[%w_]+/[%w_./*-]*)") do
        local top = path:match("^[^/]+")
        if ({ lua = true, spec = true, examples = true, csrc = true, bench = true, fuzz = true, scripts = true,
                bin = true, [".ci"] = true })[top] then
            path = path:gsub("[.,:]+$", "")
            if path:match("^spec/%d+$") then path = path .. "-*" end
            check(path)
        end
    end
    for name in text:gmatch("`([%w_]+%.[ch])`") do
        if not (util.exists("csrc/" .. name) or util.exists("fuzz/" .. name) or util.exists("bench/" .. name)) then
            missing[#missing + 1] = name
        end
    end
    return missing
end

describe("the documentation", function()
    it("README.md names no file outside the repository, and every file of it that it names exists", function()
        assert.same({}, outside_names(README))
        assert.same({}, missing_files(README))
    end)

    it("ARCHITECTURE.md names files of the repository that exist", function()
        assert.same({}, missing_files(util.read("ARCHITECTURE.md"), "paynow"))
    end)

    it("ARCHITECTURE.md, CHANGELOG.md and the reference's doc comments name no file outside the repository", function()
        local config = {}
        local chunk = assert(compile(util.read("config.ld"), "=config.ld"))
        if setfenv then setfenv(chunk, config) else chunk = assert(load(util.read("config.ld"), "=config.ld", "t", config)) end
        chunk()
        local excluded = config.file.exclude
        local p = io.popen("find " .. config.file[1] .. " -name '*.lua' | sort")
        local files = { "ARCHITECTURE.md", "CHANGELOG.md", "config.ld" }
        for path in p:lines() do
            local skip = false
            for _, e in ipairs(excluded) do
                if path == e or path:sub(1, #e + 1) == e .. "/" then skip = true end
            end
            if not skip then files[#files + 1] = path end
        end
        p:close()
        assert.is_true(#files > 20)
        for _, path in ipairs(files) do
            local text = util.read(path)
            if path:match("%.lua$") then
                -- the comments: what the reference shows
                local comments = {}
                for c in text:gmatch("%-%-([^\n]*)") do comments[#comments + 1] = c end
                text = " " .. table.concat(comments, "\n ")
            end
            assert.same({}, outside_names(text), path)
        end
    end)
end)
