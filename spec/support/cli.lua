--- Runs bin/luapay as a user would, for the command's specs.
local cli = {}

local function slurp(path)
    local f = io.open(path, "rb")
    local s = f:read("*a")
    f:close()
    os.remove(path)
    return s
end

-- The background sandboxes' state files are named after a temporary file
-- of this process, so that test runs side by side (other checkouts, CI)
-- never stop each other's sandbox.
local state_prefix = os.tmpname()
os.remove(state_prefix)

local function state_file(state) return ("%s-%s.json"):format(state_prefix, state or "cli") end
cli.state_file = state_file

--- cli.start(args, env, state) -> a command left running in the background
-- (`luapay listen`, `luapay logs --follow`): {pid, out(), err(), wait() ->
-- exit code | nil (still running after 10 s)}; signal it with
-- os.execute("kill -INT " .. pid).
function cli.start(args, env, state)
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    os.execute(("(env -u LD_PRELOAD LUAPAY_SANDBOX_STATE=%s %s bin/luapay %s </dev/null >%s/out 2>%s/err & "
        .. "echo $! >%s/pid; wait $!; echo $? >%s/rc) >/dev/null 2>&1 &"):format(state_file(state), env or "", args,
        dir, dir, dir, dir))
    local function read(name)
        local f = io.open(dir .. "/" .. name, "rb")
        if not f then return nil end
        local s = f:read("*a")
        f:close()
        return s
    end
    local core = require "luapay.core"
    local deadline = core.monotime() + 10
    local pid
    repeat
        pid = tonumber(read("pid") or "")
        if not pid then core.sleep(0.01) end
    until pid or core.monotime() > deadline
    return {
        pid = pid,
        out = function() return read("out") or "" end,
        err = function() return read("err") or "" end,
        wait = function()
            local until_ = core.monotime() + 10
            while core.monotime() < until_ do
                local rc = tonumber(read("rc") or "")
                if rc then
                    os.execute("rm -rf " .. dir)
                    return rc
                end
                core.sleep(0.02)
            end
        end,
    }
end

--- cli.run(args, input, env, state) -> stdout, stderr, exit code.
-- input goes to standard input; env is extra "NAME=value ..." text; state
-- names the background sandbox (each spec file keeps its own).
function cli.run(args, input, env, state)
    state = state_file(state)
    local out, err, inp = os.tmpname(), os.tmpname(), os.tmpname()
    local f = io.open(inp, "wb")
    f:write(input or "")
    f:close()
    local ok, _, code = os.execute(("env -u LD_PRELOAD LUAPAY_SANDBOX_STATE=%s %s bin/luapay %s < %s > %s 2> %s")
        :format(state, env or "", args, inp, out, err))
    if type(ok) == "number" then code = ok / 256 end -- LuaJIT: the raw wait status
    os.remove(inp)
    return slurp(out), slurp(err), code
end

return cli
