-- bench/icount_nginx.sh's set-up: writes a sandbox prefix (nginx.conf with
-- bench/icount_nginx_handlers.lua at /n/) and prints "prefix port". The
-- shell script then runs that nginx in one process under callgrind.
local sandbox = require "luapay.sandbox"
local sb = assert(sandbox.start{ routes = { ["/n/"] = "icount_nginx_handlers" }, lua_path = "bench/?.lua", keep = true })
assert(sb:stop())
print(sb.prefix, sb.port)
