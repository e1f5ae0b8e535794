-- luacheck configuration (`make lint`; part of `make test`, which wants zero
-- warnings). The library runs on Lua 5.4 and LuaJIT, so the standard globals
-- are those two; code that runs inside nginx also sees ngx_lua's (ngx, ndk).
std = "lua54+luajit"
max_line_length = 140
-- Long literal texts (messages, wire samples) read better unbroken.
max_string_line_length = false
max_comment_line_length = false
-- A method keeps the colon even where it does not need its client (the
-- same call shape for every method of the API).
self = false

include_files = { "**/*.lua", "bin/luapay", ".busted", ".luacheckrc", "config.ld" }
exclude_files = { "build/", ".git/", "luarocks-tree/" }

-- Inside nginx: the cosocket transport, the sandbox's fakes, the example
-- nginx handlers, the specs' and the benchmark's nginx handlers.
local nginx = "+ngx_lua"
files["lua/luapay/http/cosocket.lua"] = { std = nginx }
files["lua/luapay/sandbox/"] = { std = nginx }
files["examples/nginx/"] = { std = nginx }
files["examples/merchant_day_shop.lua"] = { std = nginx }
files["examples/trustpay_shop.lua"] = { std = nginx }
files["spec/support/"] = { std = nginx }
files["bench/handlers.lua"] = { std = nginx }
files["bench/icount_nginx_handlers.lua"] = { std = nginx }
-- The store's ngx.shared and Redis backends and the inbox run in nginx and in scripts.
files["lua/luapay/store/"] = { std = nginx }
files["lua/luapay/inbox.lua"] = { std = nginx }
-- The pipeline only looks for ngx to pick the transport and the clock.
files["lua/luapay/http.lua"] = { read_globals = { "ngx" } }

files["spec/"] = { std = "+busted" }
files["spec/support/"] = { std = nginx .. "+busted" }

-- ldoc's configuration: its options are globals that ldoc reads (131,
-- "unused global", says otherwise).
files["config.ld"] = { allow_defined_top = true, ignore = { "131" } }
-- The libFuzzer targets run in fuzz/driver.c's Lua 5.4 state, which sets fuzz.respond.
files["fuzz/targets/"] = { std = "lua54", read_globals = { "fuzz" } }
