rockspec_format = "3.0"
package = "luapay"
version = "0.2.0-1"

source = {
    url = "git+https://github.com/luapay/luapay.git",
    tag = "v0.2.0",
}

description = {
    summary = "Payments client library for Lua with a C core",
    detailed = [[
luapay signs, validates and sends payment requests for ecommpay, Trustly,
TrustPay, beGateway and Trustly North America, and verifies their callbacks.
The C core (luapay.core) does canonical strings, HMAC and RSA signatures over
OpenSSL, field validation, exact money and HTTP over libcurl.]],
    license = "MIT",
}

-- Builds with `luarocks make --deps-mode=none` against Debian's packages
-- (lua-cjson comes from the lua-cjson package).
dependencies = {
    "lua >= 5.1",
    "lua-cjson",
}

external_dependencies = {
    OPENSSL = { header = "openssl/evp.h", library = "crypto" },
    -- No header check: Debian keeps curl/curl.h in the multiarch include
    -- directory, which the compiler searches and luarocks does not.
    CURL = { library = "curl" },
    -- LuaJIT's headers (Debian: libluajit2-5.1-dev; OpenResty: pass
    -- LUAJIT_DIR=/usr/local/openresty/luajit), for the sandbox's core.
    LUAJIT = { header = "luajit-2.1/luajit.h" },
}

local core_sources = {
    "csrc/buf.c", "csrc/checks.c", "csrc/clock.c",
    "csrc/core.c", "csrc/ecommpay.c", "csrc/encode.c", "csrc/equal.c", "csrc/event.c", "csrc/hash.c",
    "csrc/http.c", "csrc/http_head.c", "csrc/json_decode.c", "csrc/json_encode.c", "csrc/money.c", "csrc/names.c",
    "csrc/path.c", "csrc/pattern.c", "csrc/picks.c", "csrc/plain.c", "csrc/pkey.c", "csrc/random.c", "csrc/refdata.c",
    "csrc/trustly.c", "csrc/trustly_notification.c", "csrc/trustpay.c", "csrc/validate.c",
}

build = {
    type = "builtin",
    modules = {
        ["luapay.core"] = {
            sources = core_sources,
            defines = { "_GNU_SOURCE" },
            incdirs = { "$(OPENSSL_INCDIR)" },
            libdirs = { "$(OPENSSL_LIBDIR)", "$(CURL_LIBDIR)" },
            libraries = { "crypto", "curl" },
        },
        -- The same core for LuaJIT, which the sandbox's nginx runs (it adds
        -- <libdir>/luapay/luajit/?.so to nginx's cpath).
        ["luapay.luajit.luapay.core"] = {
            sources = core_sources,
            defines = { "_GNU_SOURCE", "LUAPAY_LUAJIT_HEADERS" },
            incdirs = { "$(LUAJIT_INCDIR)", "$(OPENSSL_INCDIR)" },
            libdirs = { "$(OPENSSL_LIBDIR)", "$(CURL_LIBDIR)" },
            libraries = { "crypto", "curl" },
        },
        ["luapay"] = "lua/luapay/init.lua",
        ["luapay.begateway"] = "lua/luapay/begateway.lua",
        ["luapay.cli"] = "lua/luapay/cli.lua",
        ["luapay.cli.begateway"] = "lua/luapay/cli/begateway.lua",
        ["luapay.cli.ecommpay"] = "lua/luapay/cli/ecommpay.lua",
        ["luapay.cli.export"] = "lua/luapay/cli/export.lua",
        ["luapay.cli.repl"] = "lua/luapay/cli/repl.lua",
        ["luapay.cli.journal"] = "lua/luapay/cli/journal.lua",
        ["luapay.cli.trustly"] = "lua/luapay/cli/trustly.lua",
        ["luapay.cli.trustly_na"] = "lua/luapay/cli/trustly_na.lua",
        ["luapay.cli.trustpay"] = "lua/luapay/cli/trustpay.lua",
        ["luapay.ecommpay"] = "lua/luapay/ecommpay.lua",
        ["luapay.errors"] = "lua/luapay/errors.lua",
        ["luapay.http"] = "lua/luapay/http.lua",
        ["luapay.http.cosocket"] = "lua/luapay/http/cosocket.lua",
        ["luapay.inbox"] = "lua/luapay/inbox.lua",
        ["luapay.money"] = "lua/luapay/money.lua",
        ["luapay.monotime"] = "lua/luapay/monotime.lua",
        ["luapay.pager"] = "lua/luapay/pager.lua",
        ["luapay.pretty"] = "lua/luapay/pretty.lua",
        ["luapay.provider"] = "lua/luapay/provider.lua",
        ["luapay.providers"] = "lua/luapay/providers.lua",
        ["luapay.sandbox"] = "lua/luapay/sandbox.lua",
        ["luapay.sandbox.begateway"] = "lua/luapay/sandbox/begateway.lua",
        ["luapay.sandbox.control"] = "lua/luapay/sandbox/control.lua",
        ["luapay.sandbox.dataset"] = "lua/luapay/sandbox/dataset.lua",
        ["luapay.sandbox.ecommpay"] = "lua/luapay/sandbox/ecommpay.lua",
        ["luapay.sandbox.ecommpay_page"] = "lua/luapay/sandbox/ecommpay_page.lua",
        ["luapay.sandbox.events"] = "lua/luapay/sandbox/events.lua",
        ["luapay.sandbox.journal"] = "lua/luapay/sandbox/journal.lua",
        ["luapay.sandbox.page"] = "lua/luapay/sandbox/page.lua",
        ["luapay.sandbox.providers"] = "lua/luapay/sandbox/providers.lua",
        ["luapay.sandbox.router"] = "lua/luapay/sandbox/router.lua",
        ["luapay.sandbox.test_keys"] = "lua/luapay/sandbox/test_keys.lua",
        ["luapay.sandbox.trustly"] = "lua/luapay/sandbox/trustly.lua",
        ["luapay.sandbox.trustly_na"] = "lua/luapay/sandbox/trustly_na.lua",
        ["luapay.sandbox.trustpay"] = "lua/luapay/sandbox/trustpay.lua",
        ["luapay.store"] = "lua/luapay/store.lua",
        ["luapay.store.memory"] = "lua/luapay/store/memory.lua",
        ["luapay.store.redis"] = "lua/luapay/store/redis.lua",
        ["luapay.store.shared"] = "lua/luapay/store/shared.lua",
        ["luapay.trustly"] = "lua/luapay/trustly.lua",
        ["luapay.trustly.keys"] = "lua/luapay/trustly/keys.lua",
        ["luapay.trustly_na"] = "lua/luapay/trustly_na.lua",
        ["luapay.trustpay"] = "lua/luapay/trustpay.lua",
        ["luapay.trustpay.banking"] = "lua/luapay/trustpay/banking.lua",
        ["luapay.trustpay.fields"] = "lua/luapay/trustpay/fields.lua",
        ["luapay.trustpay.payment_order"] = "lua/luapay/trustpay/payment_order.lua",
    },
    install = {
        bin = { luapay = "bin/luapay" },
    },
}
