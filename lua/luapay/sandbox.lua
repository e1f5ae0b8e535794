--- luapay.sandbox: fake provider servers on loopback, for specs, the demo
-- and the REPL. Starts Debian's nginx with the Lua module on a free loopback
-- port, from a configuration generated into a temporary prefix; requests are
-- routed by path prefix to handler modules that run inside nginx (LuaJIT)
-- and can use luapay itself (the core built for LuaJIT, cosockets).
--
--   local sandbox = require "luapay.sandbox"
--   local sb = assert(sandbox.start{
--       routes = { ["/ecommpay/"] = "luapay.sandbox.ecommpay" },
--       config = { ... },            -- handed to handlers (router.config)
--       tls = { cert = "server.pem", key = "server.key" },  -- also serve HTTPS
--       trusted_ca = "ca.pem",       -- lua_ssl_trusted_certificate
--       http_config = "server { ... }",  -- more http-level configuration,
--                                        -- e.g. an example's own server block
--   })
--   sb.url, sb.tls_url, sb.port, sb.tls_port
--   sb:error_log(), sb:errors(), sb:stop()
--
-- A handler module has handle(path, config): path is the URI after the
-- route's prefix; it answers with the ngx API. config.ports = {http, https}
-- are the sandbox's own ports. An optional log(path, config) runs in the log
-- phase.
local core = require "luapay.core"

local sandbox = {}

local Sandbox = {}
Sandbox.__index = Sandbox

local NGINX_MODULES = "/usr/lib/nginx/modules"
local START_TIMEOUT, STOP_TIMEOUT = 5, 10

local function sh_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Sanitizer runtimes preloaded into a test process are not for the tools
-- and servers it starts (pgrep even hangs under libasan).
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS "

local function run(cmd)
    local ok = os.execute(CLEAN_ENV .. cmd)
    return ok == true or ok == 0
end

local function capture(cmd)
    local p = io.popen(CLEAN_ENV .. cmd)
    local out = p:read("*a")
    p:close()
    return out
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
end

local function write_file(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

-- Relative to the real working directory: $PWD is only what a shell last
-- set, and a process started elsewhere (or one that changed directory)
-- inherits a stale one.
local function absolute(path)
    if path:sub(1, 1) == "/" then return path end
    local cwd = capture("pwd -P"):gsub("%s+$", "")
    return cwd .. "/" .. path:gsub("^%./", "")
end

-- A zombie counts as gone: the daemonized master is reaped by init, which
-- in a container may take a while.
local function alive(pid)
    local stat = read_file("/proc/" .. pid .. "/stat")
    if stat then return not stat:match("^%d+ %b() Z") end
    return run("kill -0 " .. pid .. " 2>/dev/null") -- no /proc: ask the kernel
end

local function children(pid)
    local pids = {}
    for child in capture("pgrep -P " .. pid .. " 2>/dev/null"):gmatch("%d+") do pids[#pids + 1] = tonumber(child) end
    return pids
end

-- Fast shutdown of an nginx master and its workers; waits until all are
-- gone, killing what is left after STOP_TIMEOUT. Returns the pids killed.
local function terminate(master)
    local pids = children(master)
    table.insert(pids, 1, master)
    run("kill -TERM " .. master .. " 2>/dev/null")
    local deadline = core.monotime() + STOP_TIMEOUT
    local left
    repeat
        left = {}
        for _, pid in ipairs(pids) do
            if alive(pid) then left[#left + 1] = pid end
        end
        if #left > 0 then core.sleep(0.01) end
    until #left == 0 or core.monotime() > deadline
    if #left > 0 then run("kill -KILL " .. table.concat(left, " ") .. " 2>/dev/null") end
    return left
end

-- This file is <root>/lua/luapay/sandbox.lua in a checkout, or
-- <prefix>/share/lua/5.x/luapay/sandbox.lua when installed.
local function source_dirs()
    local src = debug.getinfo(1, "S").source:gsub("^@", "")
    local lua_dir = absolute(src):gsub("/luapay/sandbox%.lua$", "")
    local root = lua_dir:gsub("/lua$", "")
    return lua_dir, root
end

-- nginx runs LuaJIT, which loads the core built for it: a checkout's
-- build/luajit, or the one installed next to these modules (the rockspec
-- and `make install` put it in lib/lua/5.x/luapay/luajit), or an install
-- for Lua 5.1's core (LuaJIT loads it). README, Build and install.
local function luajit_cpath()
    local lua_dir, root = source_dirs()
    local dirs = { root .. "/build/luajit" }
    local prefix, v = lua_dir:match("^(.*)/share/lua/(5%.%d)$")
    if prefix then
        dirs[2] = prefix .. "/lib/lua/" .. v .. "/luapay/luajit"
        dirs[3] = prefix .. "/lib/lua/5.1"
    end
    for _, dir in ipairs(dirs) do
        local f = io.open(dir .. "/luapay/core.so", "rb")
        if f then
            f:close()
            return dir .. "/?.so"
        end
    end
end

--- Serializes plain data (strings, numbers, booleans, tables) as Lua source.
local function serialize(v)
    local t = type(v)
    if t == "string" then return (("%q"):format(v):gsub("\n", "n")) end
    if t == "number" then
        if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
        return ("%.17g"):format(v)
    end
    if t == "boolean" or t == "nil" then return tostring(v) end
    if t == "table" then
        local parts = {}
        for k, x in pairs(v) do parts[#parts + 1] = "[" .. serialize(k) .. "]=" .. serialize(x) end
        table.sort(parts)
        return "{" .. table.concat(parts, ",") .. "}"
    end
    error("luapay.sandbox: cannot pass a " .. t .. " to the handlers")
end
sandbox.serialize = serialize

-- Below Linux's ephemeral range (32768-60999 by default), where outgoing
-- connections take their local ports and a bind could fail even though
-- nothing listens.
local function random_port()
    local b = core.random_bytes(2)
    return 20000 + (b:byte(1) * 256 + b:byte(2)) % 12000
end
sandbox.random_port = random_port

local function nginx_conf(opts, port, tls_port)
    local lua_dir = source_dirs()
    local lpath = { lua_dir .. "/?.lua", lua_dir .. "/?/init.lua" }
    for p in (opts.lua_path or ""):gmatch("[^;]+") do table.insert(lpath, 1, absolute(p)) end
    local cpath = { luajit_cpath() }
    for p in (opts.lua_cpath or ""):gmatch("[^;]+") do table.insert(cpath, 1, absolute(p)) end

    local dicts = { luapay_sandbox = "16m" }
    for name, size in pairs(opts.shared_dicts or {}) do dicts[name] = size end

    local c = {}
    local function add(fmt, ...) c[#c + 1] = fmt:format(...) end
    add("load_module %s/ndk_http_module.so;", NGINX_MODULES)
    add("load_module %s/ngx_http_lua_module.so;", NGINX_MODULES)
    -- As root, nginx would run workers as nobody, who may not read a
    -- checkout under /root; the sandbox only ever listens on loopback.
    if capture("id -u"):match("^0") then add("user root;") end
    add("daemon on;")
    add("worker_processes %d;", opts.workers or 1)
    add("pid logs/nginx.pid;")
    add("error_log logs/error.log %s;", opts.log_level or "warn")
    for name, value in pairs(opts.env or {}) do add("env %s=%s;", name, value) end
    add("events { worker_connections 1024; }")
    add("http {")
    add("  access_log off;")
    for _, t in ipairs({ "client_body", "proxy", "fastcgi", "uwsgi", "scgi" }) do
        add("  %s_temp_path tmp/%s;", t, t)
    end
    add("  client_max_body_size 32m;")
    add("  client_body_buffer_size 32m;")
    add("  keepalive_requests 1000000;")
    add("  lua_package_path '%s;;';", table.concat(lpath, ";"))
    if #cpath > 0 then add("  lua_package_cpath '%s;;';", table.concat(cpath, ";")) end
    for name, size in pairs(dicts) do add("  lua_shared_dict %s %s;", name, size) end
    add("  lua_socket_log_errors off;")
    -- calls out (cosockets) as luapay asks of every nginx: TLS 1.2 at least
    add("  lua_ssl_protocols TLSv1.2 TLSv1.3;")
    if opts.trusted_ca then
        add("  lua_ssl_trusted_certificate %s;", absolute(opts.trusted_ca))
        add("  lua_ssl_verify_depth 4;")
    end
    add("  init_by_lua_block { require('luapay.sandbox.router').init(%s) }",
        serialize({ routes = opts.routes or {}, config = opts.config or {}, ports = { http = port, https = tls_port } }))
    add("  server {")
    add("    listen 127.0.0.1:%d;", port)
    if tls_port then
        add("    listen 127.0.0.1:%d ssl;", tls_port)
        add("    ssl_certificate %s;", absolute(opts.tls.cert))
        add("    ssl_certificate_key %s;", absolute(opts.tls.key))
    end
    add("    location / {")
    add("      content_by_lua_block { require('luapay.sandbox.router').handle() }")
    add("      log_by_lua_block { require('luapay.sandbox.router').log() }")
    add("    }")
    add("  }")
    if opts.http_config then add("%s", opts.http_config) end
    add("}")
    return table.concat(c, "\n") .. "\n"
end

--- sandbox.start(opts) -> sandbox | nil, err. opts: routes, config, tls,
-- trusted_ca, port, tls_port, workers, shared_dicts, lua_path, lua_cpath,
-- env, log_level, http_config (text added to the http block), keep (the
-- prefix after stop), detach (keep running after this process ends; see
-- Sandbox:state and sandbox.attach), nginx (the
-- binary; default /usr/sbin/nginx).
function sandbox.start(opts)
    opts = opts or {}
    local nginx = opts.nginx or os.getenv("LUAPAY_NGINX") or "/usr/sbin/nginx"
    local prefix = capture("mktemp -d /tmp/luapay-sandbox.XXXXXX"):gsub("%s+$", "")
    if prefix == "" then return nil, "luapay.sandbox: mktemp failed" end
    run("mkdir -p " .. sh_quote(prefix .. "/conf") .. " " .. sh_quote(prefix .. "/logs") .. " " .. sh_quote(prefix .. "/tmp"))

    local last_err
    for _ = 1, 20 do
        local port = opts.port or random_port()
        local tls_port = opts.tls and (opts.tls_port or random_port()) or nil
        write_file(prefix .. "/conf/nginx.conf", nginx_conf(opts, port, tls_port))
        -- LUA_PATH and LUA_CPATH (`luarocks path`) are the caller's Lua's: a
        -- Lua 5.4 cjson.so would be loaded by nginx's LuaJIT.
        local started = run(("env -u LUA_PATH -u LUA_CPATH %s -p %s -c conf/nginx.conf -e logs/error.log >%s 2>&1"):format(
            sh_quote(nginx), sh_quote(prefix), sh_quote(prefix .. "/logs/start.out")))
        if started then
            local pid
            local wait_until = core.monotime() + START_TIMEOUT
            repeat
                pid = tonumber(read_file(prefix .. "/logs/nginx.pid") or "")
                if not pid then core.sleep(0.01) end
            until pid or core.monotime() > wait_until
            if not pid then return nil, "luapay.sandbox: nginx started but wrote no pid file" end
            -- Ready means every worker is up, so pids() and stop() see them all.
            while #children(pid) < (opts.workers or 1) and core.monotime() < wait_until do core.sleep(0.005) end
            local self = setmetatable({
                prefix = prefix, pid = pid, port = port, tls_port = tls_port,
                url = ("http://127.0.0.1:%d"):format(port),
                tls_url = tls_port and ("https://127.0.0.1:%d"):format(tls_port) or nil,
                keep = opts.keep or opts.detach,
                detached = opts.detach, -- outlives this process (`luapay sandbox start`)
            }, Sandbox)
            return self
        end
        -- A failed start may still have left a master behind: never leak one.
        local stray = tonumber(read_file(prefix .. "/logs/nginx.pid") or "")
        if stray and alive(stray) then terminate(stray) end
        last_err = (read_file(prefix .. "/logs/start.out") or "") .. (read_file(prefix .. "/logs/error.log") or "")
        if not last_err:find("Address already in use", 1, true) or opts.port then break end
        os.remove(prefix .. "/logs/error.log")
    end
    if not opts.keep then run("rm -rf " .. sh_quote(prefix)) end
    last_err = (last_err or "?"):gsub("%s+$", "")
    if last_err:find("module 'luapay.core' not found", 1, true) then
        last_err = last_err .. "\n(nginx runs LuaJIT and needs luapay.core built for it: `make LUA=luajit` in a"
            .. " checkout; installed, the rockspec or `make install` adds it; README, Build and install)"
    end
    return nil, "luapay.sandbox: nginx did not start: " .. last_err
end

--- What another process needs to find this sandbox again (plain data).
function Sandbox:state()
    return { pid = self.pid, prefix = self.prefix, port = self.port, tls_port = self.tls_port,
             url = self.url, tls_url = self.tls_url }
end

--- sandbox.attach(state) -> the sandbox described by Sandbox:state(), if it
-- still runs (the `luapay sandbox` command starts it in one process and
-- stops it from another); nil, err otherwise.
function sandbox.attach(state)
    if type(state) ~= "table" or not tonumber(state.pid) or type(state.prefix) ~= "string" then
        return nil, "luapay.sandbox: not a sandbox state"
    end
    local pid_text = read_file(state.prefix .. "/logs/nginx.pid")
    if tonumber(pid_text or "") ~= tonumber(state.pid) or not alive(state.pid) then
        return nil, "luapay.sandbox: the sandbox is not running"
    end
    local self = setmetatable({}, Sandbox)
    for k, v in pairs(state) do self[k] = v end
    self.remove_on_stop, self.detached = true, true
    return self
end

--- The pids of the master and its workers, while running.
function Sandbox:pids()
    local pids = children(self.pid)
    table.insert(pids, 1, self.pid)
    return pids
end

function Sandbox:error_log()
    return read_file(self.prefix .. "/logs/error.log") or ""
end

--- Lines of the error log at level error or worse (crit, alert, emerg).
function Sandbox:errors()
    local lines = {}
    for line in self:error_log():gmatch("[^\n]+") do
        -- nginx retries a bind that found its port taken (5 times, 0.5 s
        -- apart) and logs each miss as [emerg]; a sandbox that started got
        -- its ports in the end, so those lines are not errors of the run.
        local bind_retry = line:find("bind() to ", 1, true) and line:find("(98: Address already in use)", 1, true)
        if not bind_retry and (line:find(" %[error%] ") or line:find(" %[crit%] ") or line:find(" %[alert%] ")
            or line:find(" %[emerg%] ")) then
            lines[#lines + 1] = line
        end
    end
    return lines
end

--- Stops nginx (fast shutdown) and waits until the master and every worker
-- have exited. Returns true, or nil and the pids still alive.
function Sandbox:stop()
    if self.stopped then return true end
    local killed = terminate(self.pid)
    self.stopped = true
    self.final_log = self:error_log()
    if not self.keep or self.remove_on_stop then run("rm -rf " .. sh_quote(self.prefix)) end
    if #killed > 0 then
        return nil, "luapay.sandbox: nginx did not stop in time; killed " .. table.concat(killed, " ")
    end
    return true
end

--- Sandbox:stop_with_process(): nginx is also stopped (and its prefix
-- removed) once this process has ended, however it ends: os.exit, a signal,
-- an error nothing catches. A process of its own waits for ours (`tail
-- --pid`, in a session of its own so that a Ctrl-C at the terminal does not
-- reach it); after Sandbox:stop it finds no pid file and does nothing.
-- Returns true, or nil, err without /proc.
function Sandbox:stop_with_process()
    local me = (read_file("/proc/self/stat") or ""):match("^(%d+)")
    if not me then return nil, "luapay.sandbox: cannot tell this process's id (no /proc)" end
    local script = ("tail -s 0.1 --pid=%s -f /dev/null; p=$(cat %s 2>/dev/null) || exit 0; kill -TERM \"$p\"; n=0;"
        .. " while kill -0 \"$p\" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done;"
        .. " [ $n -lt 100 ] || { pkill -KILL -P \"$p\"; kill -KILL \"$p\"; }; rm -rf %s"):format(
        me, sh_quote(self.prefix .. "/logs/nginx.pid"), sh_quote(self.prefix))
    run(("setsid sh -c %s </dev/null >/dev/null 2>&1 &"):format(sh_quote(script)))
    return true
end

Sandbox.__close = Sandbox.stop
-- A sandbox is stopped with the process that started it, unless detached.
Sandbox.__gc = function(self)
    if not self.stopped and not self.detached then pcall(self.stop, self) end
end

return sandbox
