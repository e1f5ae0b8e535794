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

--- cli.run(args, input, env, state) -> stdout, stderr, exit code.
-- input goes to standard input; env is extra "NAME=value ..." text; state
-- names the background sandbox (each spec file keeps its own).
function cli.run(args, input, env, state)
    state = ("%s-%s.json"):format(state_prefix, state or "cli")
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
