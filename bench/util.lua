--- Helpers shared by the Lua benches.
local util = {}

local MIN_SECONDS = 0.5

--- Operations per second of op, run in doubling batches for at least
-- MIN_SECONDS of CPU time (os.clock, as the plain-C baseline measures).
function util.rate(op)
    local clock = os.clock
    local n, batch, start = 0, 16, clock()
    local elapsed
    repeat
        for _ = 1, batch do op() end
        n = n + batch
        batch = batch * 2
        elapsed = clock() - start
    until elapsed >= MIN_SECONDS
    return n / elapsed
end

function util.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

return util
