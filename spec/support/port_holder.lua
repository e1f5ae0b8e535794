--- Holds a loopback port while a sandbox starts on it, for spec 12 (run as
-- a script):  lua5.4 spec/support/port_holder.lua PORT
-- Listens on PORT, prints "1", and lets the port go once an nginx has logged
-- that it found it taken (a sandbox's logs/error.log), at most 10 s later.
-- nginx tries a bind 5 times, 0.5 s apart: released after the first miss,
-- the port is free for a later try however slowly the machine runs (a fixed
-- hold raced the sandbox's start-up on a busy machine).
local socket = require "socket"

local port = assert(tonumber(arg[1]), "usage: port_holder.lua PORT")
local server = assert(socket.bind("127.0.0.1", port))
print(1)
io.stdout:flush()
local missed = ("grep -qsF '127.0.0.1:%d failed (98: Address already in use)' /tmp/luapay-sandbox.*/logs/error.log")
    :format(port)
local deadline = socket.gettime() + 10
repeat
    local found = os.execute(missed)
    if found == true or found == 0 then break end
    socket.sleep(0.02)
until socket.gettime() > deadline
server:close()
