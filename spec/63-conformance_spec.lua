-- The provider contract (README.md, "One contract for every provider"),
-- checked the same way on each of the five providers: the constructor's
-- options (listed, the one set of transport options, unknown ones refused),
-- the environment, TLS verification, secrets, close and `<close>`, a
-- genuine notification read into the one event shape, a tampered one
-- refused, the answer to send back, and misuse messages that name a
-- function that exists.
local core = require "luapay.core"
local http = require "luapay.http"
local provider = require "luapay.provider"
local pretty = require "luapay.pretty"
local keys = require "luapay.sandbox.test_keys"

local function transport() return core.http_client{} end

-- Every transport option (provider.TRANSPORT_OPTIONS) but the two that
-- bring their own: the options luapay builds a transport and pipeline from.
local BUILD = {
    timeout_ms = 1000, connect_timeout_ms = 500, deadline_ms = 2000, retries = 0, verify = true,
    ca_file = "/etc/ssl/certs/ca-certificates.crt", proxy = "http://127.0.0.1:3128", user_agent = "spec",
    pool_size = 2, keepalive_ms = 5000, max_head_bytes = 4096, max_body_bytes = 65536,
    sleep = function() end, clock = function() return 0 end, random = math.random,
}

-- Per provider: the smallest valid options, every option of its own with a
-- usable value, a misspelling of a real option, and a method to call.
local PROVIDERS = {
    {
        name = "ecommpay",
        base = { project_id = 1, secret = "s3cret-ecommpay" },
        own = {
            project_id = 1, secret = "s3cret-ecommpay", base_url = "https://api.example.com",
            payment_page_base = "https://pp.example.com", callback_url = "https://shop.example.com/cb",
            clarification = true, min_purchase = { SEK = 1200 }, environment = "test", live = false,
        },
        typo = "project_Id",
        method = "status",
    },
    {
        name = "trustly",
        base = { username = "u", password = "p", private_key = keys.merchant_private },
        own = {
            username = "u", password = "p", private_key = keys.merchant_private, private_key_passphrase = "unused",
            environment = "test", trustly_public_key = keys.provider_public, base_url = "https://t.example.com/api",
            store = require("luapay.trustly").memory_store(), message_id = function() return "m-1" end,
        },
        typo = "enviroment",
        method = "deposit",
    },
    {
        name = "trustpay",
        base = { account_id = "4107111111", secret = "s3cret-trustpay" },
        own = {
            account_id = "4107111111", secret = "s3cret-trustpay", base_url = "https://tp.example.com",
            banking = { username = "bu", password = "bp", base_url = "https://ab.example.com" },
            environment = "test", live = false, store = require("luapay.store").memory(),
        },
        typo = "acount_id",
        method = "notification",
    },
    {
        name = "begateway",
        base = { psp_id = 1, secret = "s3cret-begateway", dwh_url = "https://dwh.example.com" },
        own = {
            psp_id = 1, secret = "s3cret-begateway", dwh_url = "https://dwh.example.com", shop_id = 2,
            shop_key = "s3cret-shop", public_key = keys.provider_public, accept_test = true, environment = "test",
        },
        typo = "dwh_uri",
        method = "export",
    },
    {
        name = "trustly_na",
        base = { access_id = "id", access_key = "s3cret-na" },
        own = {
            access_id = "id", access_key = "s3cret-na", environment = "test", base_url = "https://na.example.com",
        },
        typo = "enviroment",
        method = "payments",
    },
}

local function with(t, k, v)
    local c = {}
    for key, x in pairs(t) do c[key] = x end
    c[k] = v
    return c
end

-- The error a call raises, as text.
local function raised(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return tostring(err)
end

for _, p in ipairs(PROVIDERS) do
    local mod = require("luapay." .. p.name)
    local new = p.name .. ".new"

    describe("conformance: " .. p.name .. ", options and lifetime", function()
        it("lists its own options and the one set of transport options, and accepts every one of them", function()
            local listed, expected = {}, {}
            for _, name in ipairs(mod.OPTIONS) do listed[name] = true end
            for name in pairs(p.own) do expected[name] = true end
            for _, name in ipairs(provider.TRANSPORT_OPTIONS) do expected[name] = true end
            assert.same(expected, listed)
            local all = {}
            for k, v in pairs(p.own) do all[k] = v end
            for k, v in pairs(BUILD) do all[k] = v end
            local c = mod.new(all)
            assert.equal("test", c.environment)
            c:close()
            c = mod.new(with(with(p.base, "transport", transport()), "timeout_ms", 1000))
            c:close()
            c = mod.new(with(p.base, "http", http.new{ transport = transport() }))
            c:close()
        end)

        it("raises on a ready pipeline (http) given with another transport option, naming it", function()
            for name, value in pairs(BUILD) do
                local opts = with(with(p.base, "http", http.new{ transport = transport() }), name, value)
                local err = raised(mod.new, opts)
                assert.matches(new .. ": option '" .. name .. "' cannot be given with 'http'", err, 1, true)
            end
            local err = raised(mod.new, with(p.base, "http", {}))
            assert.matches(new .. ": option 'http' must be a luapay.http pipeline", err, 1, true)
        end)

        it("raises on an unknown option, naming it and the function", function()
            local err = raised(mod.new, with(p.base, "no_such_option", 1))
            assert.matches(new .. ": unknown option 'no_such_option'", err, 1, true)
        end)

        it("raises on a misspelt option (" .. p.typo .. ")", function()
            local err = raised(mod.new, with(p.base, p.typo, "live"))
            assert.matches(new .. ": unknown option '" .. p.typo .. "'", err, 1, true)
            -- the secret never shows in the message
            assert.not_matches("s3cret", err, 1, true)
        end)

        it("close releases the transport it built and may be called twice", function()
            local c = mod.new(p.base)
            local t = c.http.transport
            c:close()
            c:close()
            assert.matches("(closed)", tostring(t), 1, true)
        end)

        it("close leaves a transport passed in open", function()
            local t = transport()
            local c = mod.new(with(p.base, "transport", t))
            c:close()
            assert.not_matches("(closed)", tostring(t), 1, true)
            t:close()
        end)

        it("collecting a client leaves its transport to whatever still uses it (an iterator)", function()
            local pipeline = mod.new(p.base).http
            collectgarbage()
            collectgarbage()
            assert.not_matches("(closed)", tostring(pipeline.transport), 1, true)
            pipeline:close()
        end)

        it("raises on use after close, naming the method", function()
            local c = mod.new(p.base)
            c:close()
            local err = raised(c[p.method], c, {})
            assert.matches(p.name .. ".Client:" .. p.method .. ": called after client:close()", err, 1, true)
        end)

        -- `<close>` is Lua 5.4 syntax: LuaJIT cannot even parse it, so the
        -- chunk is compiled only there and this test alone is skipped.
        local it54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and it or pending
        it54("works as a to-be-closed variable (Lua 5.4 <close>)", function()
            local chunk = assert(load([[
                local new, opts = ...
                local t
                do
                    local c <close> = new(opts)
                    t = c.http.transport
                end
                return t
            ]]))
            local t = chunk(mod.new, p.base)
            assert.matches("(closed)", tostring(t), 1, true)
        end)
    end)
end

describe("provider contract: trustpay's banking table", function()
    local trustpay = require "luapay.trustpay"
    it("raises on an unknown banking option, naming it and the function", function()
        local err = raised(trustpay.new, { account_id = "4107111111", secret = "s3cret-trustpay",
            banking = { username = "bu", password = "s3cret-bp", pasword = "x" } })
        assert.matches("trustpay.new: unknown option 'banking.pasword'", err, 1, true)
        assert.not_matches("s3cret", err, 1, true)
    end)
end)

local function hmac_b64(alg, key, text) return core.hmac(alg, key, text, "base64") end

-- Per provider: the options of a client, its secrets, where it sends
-- requests (to point them at loopback), a genuine notification (raw body and
-- headers, signed as the provider signs), the keys its pure verifier takes,
-- what the event must say, and how to tamper with the body.
local CASES = {
    {
        name = "ecommpay",
        opts = { project_id = 200, secret = "s3cret-ecommpay-key" },
        secrets = { "s3cret-ecommpay-key" },
        urls = { "base_url" },
        keys = { secret = "s3cret-ecommpay-key" },
        genuine = function()
            local body = {
                project_id = 200,
                payment = { id = "order-1", type = "purchase", status = "success",
                            sum = { amount = 1000, currency = "EUR" } },
                operation = { id = 77, type = "sale", status = "success",
                              sum_initial = { amount = 1000, currency = "EUR" } },
            }
            body.signature = hmac_b64("sha512", "s3cret-ecommpay-key", assert(core.ecommpay_canonical(body)))
            return assert(core.json_encode(body)), { ["Content-Type"] = "application/json" }
        end,
        expect = { kind = "payment", status = "succeeded", merchant_ref = "order-1", amount = 1000, currency = "EUR" },
    },
    {
        name = "trustly",
        opts = { username = "merchant", password = "s3cret-trustly-pw", private_key = keys.merchant_private,
                 trustly_public_key = keys.provider_public },
        secrets = { "s3cret-trustly-pw" },
        urls = { "base_url" },
        keys = { trustly_public_key = keys.provider_public },
        genuine = function()
            local trustly = require "luapay.trustly"
            local data = { notificationid = "9901", messageid = "order-1", orderid = "4400", amount = "10.00",
                           currency = "EUR", enduserid = "user-1", timestamp = "2026-12-01 10:00:00.000+00" }
            return trustly.notification("credit", "2f4f6fe6-1ad1-4b8e-9d2b-6b2b0b6f4c11", data,
                keys.provider_private), { ["Content-Type"] = "application/json" }
        end,
        expect = { kind = "payment", status = "succeeded", merchant_ref = "order-1", provider_ref = "4400",
                   amount = 1000, currency = "EUR" },
    },
    {
        name = "trustpay",
        opts = { account_id = "4107111111", secret = "s3cret-trustpay-key" },
        secrets = { "s3cret-trustpay-key" },
        urls = { "base_url" },
        keys = { account_id = "4107111111", secret = "s3cret-trustpay-key" },
        genuine = function()
            local trustpay = require "luapay.trustpay"
            local f = { AccountId = "4107111111", Type = "CRDT", Amount = "10.00", Currency = "EUR",
                        ResultCode = "0", PaymentId = "5566", Reference = "order-1" }
            local sig = assert(trustpay.sign("s3cret-trustpay-key", "wire_notification", f))
            local q = {}
            for _, k in ipairs { "AccountId", "Type", "Amount", "Currency", "ResultCode", "PaymentId", "Reference" } do
                q[#q + 1] = k .. "=" .. f[k]
            end
            q[#q + 1] = "Signature=" .. sig
            return table.concat(q, "&"), {}
        end,
        expect = { kind = "payment", status = "succeeded", merchant_ref = "order-1", provider_ref = "5566",
                   amount = 1000, currency = "EUR" },
    },
    {
        name = "begateway",
        opts = { psp_id = 1, secret = "s3cret-begateway-key", dwh_url = "https://dwh.example.com",
                 public_key = keys.provider_public },
        secrets = { "s3cret-begateway-key" },
        urls = { "dwh_url" },
        keys = { public_key = keys.provider_public },
        genuine = function()
            local body = assert(core.json_encode { transaction = {
                uid = "tx-5566", type = "payment", status = "successful", amount = 1000, currency = "EUR",
                tracking_id = "order-1", test = false } })
            local key = assert(core.pkey(keys.provider_private))
            return body, { ["Content-Type"] = "application/json",
                           ["Content-Signature"] = core.base64_encode(key:sign(body, "sha256")) }
        end,
        expect = { kind = "payment", status = "succeeded", merchant_ref = "order-1", provider_ref = "tx-5566",
                   amount = 1000, currency = "EUR" },
    },
    {
        name = "trustly_na",
        opts = { access_id = "merchant-na", access_key = "s3cret-trustly-na-key" },
        secrets = { "s3cret-trustly-na-key" },
        urls = { "base_url" },
        keys = { access_id = "merchant-na", access_key = "s3cret-trustly-na-key" },
        genuine = function()
            local body = "merchantId=1002&merchantReference=order-1&transactionId=5566&objectId=5566"
                .. "&transactionType=2&eventType=Capture&status=4&amount=10.00&currency=USD"
            local sig = hmac_b64("sha1", "s3cret-trustly-na-key", body)
            return body, { ["Content-Type"] = "application/x-www-form-urlencoded",
                           Authorization = "Basic " .. core.base64_encode("merchant-na:" .. sig) }
        end,
        expect = { kind = "payment", status = "succeeded", merchant_ref = "order-1", provider_ref = "5566",
                   amount = 1000, currency = "USD" },
    },
}

local function with_all(t, changes)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    for k, v in pairs(changes) do c[k] = v end
    return c
end

-- The body with one amount changed (what an attacker would want).
local function tampered(raw)
    local t, n = raw:gsub("10%.00", "99.00", 1)
    if n == 0 then t, n = raw:gsub("1000", "9900", 1) end
    assert(n == 1, "nothing to tamper with")
    return t
end

local KIND, STATUS = {}, {}
for _, k in ipairs(provider.KINDS) do KIND[k] = true end
for _, s in ipairs(provider.STATUSES) do STATUS[s] = true end
local COMMON = { provider = true, kind = true, status = true, merchant_ref = true, provider_ref = true,
                 amount = true, currency = true, raw = true, extra = true }

-- The function a misuse message names ("trustly.verify_notification: ...",
-- "trustpay.Client:refund: ..."), looked up in the module: it must exist.
local function named_function(mod, name, message)
    local prefix = tostring(message):match("^[^:]*:%d+: (.-): ") or tostring(message):match("^(.-): ")
    assert(prefix, "no prefix in: " .. tostring(message))
    local fn = prefix:match("^" .. name .. "%.([%w_]+)$")
    if fn then return type(mod[fn]) == "function", prefix end
    local method = prefix:match("^" .. name .. "%.Client:([%w_]+)$")
    if method then return type(mod.Client[method]) == "function", prefix end
    return false, prefix
end


for _, case in ipairs(CASES) do
    local mod = require("luapay." .. case.name)

    describe("conformance: " .. case.name, function()
        local client
        before_each(function() client = mod.new(case.opts) end)
        after_each(function() client:close() end)

        it("is built as <name>.Client, in the test environment unless told otherwise", function()
            assert.equals(mod.Client, getmetatable(client))
            assert.equals("test", client.environment)
            local live = mod.new(with_all(case.opts, { environment = "live" }))
            assert.equals("live", live.environment)
            live:close()
            local err = raised(mod.new, with_all(case.opts, { environment = "production-ish" }))
            assert.matches(case.name .. ".new: option 'environment'", err, 1, true)
        end)

        it("accepts every transport option of the one set", function()
            for _, name in ipairs(provider.TRANSPORT_OPTIONS) do
                local listed = false
                for _, o in ipairs(mod.OPTIONS) do listed = listed or o == name end
                assert.is_true(listed, name .. " is not accepted by " .. case.name .. ".new")
            end
        end)

        it("refuses verify = false off loopback, and takes it on loopback", function()
            local err = raised(mod.new, with_all(case.opts, { verify = false }))
            assert.matches("verify", err, 1, true)
            local loop = {}
            for _, u in ipairs(case.urls) do loop[u] = "https://127.0.0.1:9/" end
            local c = mod.new(with_all(case.opts, with_all(loop, { verify = false })))
            c:close()
            err = raised(mod.new, with_all(case.opts, with_all(loop, { verify = false, environment = "live" })))
            assert.matches("verify", err, 1, true)
        end)

        it("keeps its secrets out of the client table, tostring and pretty", function()
            for _, secret in ipairs(case.secrets) do
                for k, v in pairs(client) do
                    assert.is_false(v == secret, "secret held in client." .. tostring(k))
                end
                assert.not_matches(secret, tostring(client), 1, true)
                assert.not_matches(secret, pretty.format(client), 1, true)
            end
        end)

        it("reads a genuine notification into the one event shape, raw as received", function()
            local raw, headers = case.genuine()
            local event, err = client:notification(raw, headers)
            assert.is_nil(err)
            assert.equals(case.name, event.provider)
            assert.is_true(KIND[event.kind], "kind " .. tostring(event.kind))
            assert.is_true(STATUS[event.status], "status " .. tostring(event.status))
            assert.equals(raw, event.raw)
            assert.equals("table", type(event.extra))
            for k in pairs(event) do assert.is_true(COMMON[k], "top-level field " .. tostring(k)) end
            for k, v in pairs(case.expect) do assert.equals(v, event[k], k) end
            assert.is_true(provider.is_integer(event.amount))
        end)

        it("has a pure verifier that gives the same event", function()
            local raw, headers = case.genuine()
            local event = assert(mod.verify_notification(raw, headers, case.keys))
            local from_client = assert(client:notification(raw, headers))
            for k in pairs(COMMON) do
                if k ~= "extra" then assert.equals(from_client[k], event[k], k) end
            end
        end)

        it("refuses a tampered notification as a signature error, with no secret in it", function()
            local raw, headers = case.genuine()
            local event, err = client:notification(tampered(raw), headers)
            assert.is_nil(event)
            assert.equals("signature", err.type)
            for _, secret in ipairs(case.secrets) do assert.not_matches(secret, tostring(err), 1, true) end
        end)

        it("builds the answer: received, not received, and for no event", function()
            local event = assert(client:notification(case.genuine()))
            local yes = client:notification_response(event, true)
            local no = client:notification_response(event, false)
            local none = client:notification_response(nil, false)
            for _, r in ipairs { yes, no, none } do
                assert.is_true(math.type == nil or math.type(r.status) == "integer")
                assert.equals("string", type(r.body))
                assert.equals("table", type(r.headers))
            end
            assert.is_true(yes.status >= 200 and yes.status < 300)
            assert.is_true(no.status ~= yes.status or no.body ~= yes.body, "not received answered as received")
            assert.is_true(none.status >= 400, "an unverified notification is never acknowledged")
        end)

        it("raises on misuse with a message naming a function that exists", function()
            local messages = {
                raised(mod.new, 42),
                raised(mod.verify_notification, 42, {}, case.keys),
                raised(client.notification, client, 42),
            }
            for _, m in ipairs(messages) do
                local ok, prefix = named_function(mod, case.name, m)
                assert.is_true(ok, "names no function of " .. case.name .. ": " .. tostring(prefix) .. " in " .. m)
            end
        end)
    end)
end

describe("conformance: every provider of the registry", function()
    it("is checked here", function()
        local names, checked, cases = {}, {}, {}
        for _, name in ipairs(require("luapay.providers").NAMES) do names[#names + 1] = name end
        for _, p in ipairs(PROVIDERS) do checked[#checked + 1] = p.name end
        for _, c in ipairs(CASES) do cases[#cases + 1] = c.name end
        table.sort(names)
        table.sort(checked)
        table.sort(cases)
        assert.same(names, checked)
        assert.same(names, cases)
    end)
end)
