-- No secret in any output (issue 12). Distinct secrets are planted in
-- clients of all five providers, every failure a client can reach is
-- driven (invalid requests, a refused connection, 4xx and 5xx from a
-- server that echoes the request back, the fakes refusing the planted
-- credentials, bad signatures, bad configuration), and every output is
-- searched for each secret: raw, in base64 (alone, at any offset inside a
-- longer base64 text, and as the Basic credentials user:secret), in hex,
-- and as lua-cjson escapes them. The outputs: tostring, luapay.pretty and
-- errors.mask of each client and each error, every string an error holds,
-- the client's own table, and what the REPL prints.
local core = require "luapay.core"
local errors = require "luapay.errors"
local pretty = require "luapay.pretty"
local sandbox = require "luapay.sandbox"
local util = require "support.util"
local ecommpay = require "luapay.ecommpay"
local trustly = require "luapay.trustly"
local trustpay = require "luapay.trustpay"
local begateway = require "luapay.begateway"
local trustly_na = require "luapay.trustly_na"

local b64, hex = core.base64_encode, core.hex_encode

-- 28 random letters and digits: no word in it, so none of its windows
-- (below) turns up by chance, raw or hex-encoded.
local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function planted()
    return (core.random_bytes(28):gsub(".", function(c)
        local i = c:byte() % #ALNUM + 1
        return ALNUM:sub(i, i)
    end))
end

local MERCHANT_PEM = util.fixture("keys/merchant_private.pem")
local ENCRYPTED_PEM = util.fixture("keys/merchant_private_encrypted.pem")
local PKCS1_PEM = util.fixture("keys/merchant_private_pkcs1.pem")
local PROVIDER_PUBLIC = util.fixture("keys/provider_public.pem")
local MERCHANT_PUBLIC = util.fixture("keys/merchant_public.pem")

-- Random letters with a space, punctuation and non-ASCII between them, as
-- a real password may have them: then every echoed form (JSON, percent- and
-- form-encoded, HTML) differs from the raw text.
local BETWEEN = { " ", "&", "<", ">", "/", "+", "=", "\"", "'", "%", "é", "€" }
local function planted_mixed()
    local letters, out = planted(), {}
    for i, c in ipairs(BETWEEN) do out[#out + 1] = letters:sub(2 * i - 1, 2 * i) .. c end
    return table.concat(out) .. letters:sub(-4)
end

-- One secret per option, each recognisable on its own.
local S = {
    ecommpay_secret = planted_mixed(),
    trustly_password = planted(),
    trustly_passphrase = "correct horse", -- the fixture's key is encrypted with it
    trustly_wrong_passphrase = planted(),
    trustly_junk_key = planted(),
    trustpay_secret = planted(),
    trustpay_banking_password = planted_mixed(),
    trustpay_token = planted(),
    begateway_secret = planted(),
    begateway_shop_key = planted(),
    trustly_na_access_key = planted(),
}
-- The user each secret goes with as HTTP Basic.
local USER = {
    trustpay_banking_password = "tp-banking-user",
    begateway_secret = "4242",
    begateway_shop_key = "7777",
    trustly_na_access_key = "tna-access-id",
}

---------------------------------------------------------------------------
-- Recognising a secret: every 12-character window of each of its forms
---------------------------------------------------------------------------

local W = 12
local windows = {} -- window text -> the secret it belongs to

-- The ways other software writes a text, for the forms a server or a log
-- may echo a secret in (written out here, not taken from luapay.errors).
local function pct(s, lower, plus)
    return (s:gsub("[^%w%-%._~]", function(c)
        if c == " " and plus then return "+" end
        return (lower and "%%%02x" or "%%%02X"):format(c:byte())
    end))
end
local NON_ASCII = { ["é"] = "00e9", ["€"] = "20ac" }
local function json_ascii(s, upper) -- as PHP and Python write JSON (Jackson in upper case)
    local json = core.json_encode(s):sub(2, -2)
    for c, code in pairs(NON_ASCII) do json = json:gsub(c, "\\u" .. (upper and code:upper() or code)) end
    return json
end
local function b64url(s, padded)
    local e = b64(s):gsub("[+/]", { ["+"] = "-", ["/"] = "_" })
    return padded and e or (e:gsub("=+$", ""))
end
local function html(s)
    return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local function echoed_forms(secret)
    return {
        json = core.json_encode(secret):sub(2, -2),
        json_ascii = json_ascii(secret), json_ascii_upper = json_ascii(secret, true),
        pct = pct(secret), pct_lower = pct(secret, true),
        form = pct(secret, false, true), form_lower = pct(secret, true, true),
        base64url = b64url(secret, true), base64url_unpadded = b64url(secret), html = html(secret),
    }
end

local function watch(name, form)
    for _, f in ipairs({ form, (form:gsub("/", "\\/")) }) do -- lua-cjson writes "/" as "\/"
        for i = 1, #f - W + 1 do windows[f:sub(i, i + W - 1)] = name end
    end
end

for name, secret in pairs(S) do
    watch(name, secret)
    for _, form in pairs(echoed_forms(secret)) do watch(name, form) end
    watch(name, b64(secret))
    watch(name, hex(secret))
    watch(name, hex(secret, true))
    for offset = 0, 2 do -- inside a longer base64 text, at any offset
        watch(name, b64(("\0"):rep(offset) .. secret):sub(5, -5))
    end
    if USER[name] then -- from the first character that depends on the secret
        local user = USER[name] .. ":"
        watch(name, b64(user .. secret):sub(math.floor(#user * 4 / 3) + 1))
    end
end
for name, pem in pairs({ merchant_pem = MERCHANT_PEM, encrypted_pem = ENCRYPTED_PEM, pkcs1_pem = PKCS1_PEM }) do
    for line in pem:gmatch("[^\r\n]+") do
        if not line:find("-----", 1, true) then watch(name, line) end
    end
end

local function leak(s)
    for i = 1, #s - W + 1 do
        local name = windows[s:sub(i, i + W - 1)]
        if name then return name, s:sub(math.max(1, i - 30), i + W + 30) end
    end
end

-- Every string in value, keys too, following tables (not metatables).
local function texts(value, out, seen)
    out, seen = out or {}, seen or {}
    if type(value) == "string" then
        out[#out + 1] = value
    elseif type(value) == "table" and not seen[value] then
        seen[value] = true
        for k, v in next, value do
            texts(k, out, seen)
            texts(v, out, seen)
        end
    end
    return out
end

local function assert_clean(what, value)
    for _, s in ipairs(texts(value)) do
        local name, context = leak(s)
        assert.is_nil(name, ("%s shows the secret %s: ...%s..."):format(what, tostring(name), tostring(context)))
    end
end

local function assert_clean_error(label, err)
    assert.is_true(errors.is(err), label .. ": expected a luapay error, got " .. tostring(err))
    assert_clean(label .. ": tostring(err)", tostring(err))
    assert_clean(label .. ": pretty(err)", pretty.format(err))
    assert_clean(label .. ": errors.mask(err)", errors.mask(err))
    assert_clean(label .. ": a field of err", err)
end

-- What the REPL prints for the client.
local function repl_output(client)
    local cli = require "luapay.cli"
    local lines, i, out = { "c", "{ client = c, pipeline = c.http }", "getmetatable(c)" }, 0, {}
    local input = { read = function() i = i + 1 return lines[i] end }
    local output = { write = function(_, ...) for _, s in ipairs({ ... }) do out[#out + 1] = s end end, flush = function() end }
    cli.repl(setmetatable({ c = client }, { __index = _G }), input, output)
    return table.concat(out)
end

local function assert_clean_client(label, client, key_object)
    assert_clean(label .. ": tostring(client)", tostring(client))
    assert_clean(label .. ": pretty(client)", pretty.format(client))
    assert_clean(label .. ": errors.mask(client)", errors.mask(client))
    assert_clean(label .. ": the client's table", client)
    assert_clean(label .. ": the REPL", repl_output(client))
    if key_object then -- nor the key itself, for anything that walks the table
        local seen = {}
        local function walk(t)
            if seen[t] then return end
            seen[t] = true
            for k, v in next, t do
                assert.is_false(rawequal(v, key_object), label .. ": the private key object is in the client's table at " .. tostring(k))
                if type(v) == "table" then walk(v) end
            end
        end
        walk(client)
    end
end

-- The error of a failed call (nil, err or false, err), or of the first
-- step of a list.
local function err_of(_, err) return err end
local function first_error(it) return err_of(it()) end

-- Asserts that a message carries "[REDACTED]": the echo did hold a secret
-- (the spec cannot pass because nothing was sent back).
local function assert_redacted(label, err)
    assert.truthy(tostring(err.message):find("[REDACTED]", 1, true), label .. ": the echo should have held a secret: " .. tostring(err))
end

local ECHOES = { "500", "400", "401", "200", "500t", "400t", "200t" }
local REFUSED = "http://127.0.0.1:1"

local sb

setup(function()
    sb = assert(sandbox.start{
        routes = {
            ["/echo/"] = "support.echo_handler",
            ["/ecommpay/"] = "luapay.sandbox.ecommpay",
            ["/trustly/"] = "luapay.sandbox.trustly",
            ["/trustpay/"] = "luapay.sandbox.trustpay",
            ["/begateway/"] = "luapay.sandbox.begateway",
            ["/trustly_na/"] = "luapay.sandbox.trustly_na",
        },
        config = { echo = { token = S.trustpay_token } },
        lua_path = "spec/?.lua",
    })
end)

teardown(function()
    if sb then util.stop_sandbox(sb) end
end)

local QUICK = { retries = 0, sleep = function() end, timeout_ms = 10000 }

local function with(base, extra)
    local o = {}
    for k, v in pairs(QUICK) do o[k] = v end
    for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
end

describe("no secret in any output", function()
    describe("ecommpay", function()
        local function gate(base_url)
            return ecommpay.new(with{ project_id = 1625, secret = S.ecommpay_secret, base_url = base_url })
        end
        local SALE = {
            general = { payment_id = "p-1" }, payment = { amount = 1000, currency = "EUR" },
            customer = { id = "c-1", ip_address = "198.51.100.7" },
            return_url = { success = "https://shop.example/ok", decline = "https://shop.example/no" },
        }

        it("shows a client without its secret", function()
            assert_clean_client("ecommpay", gate(sb.url .. "/ecommpay"))
        end)

        it("keeps the secret out of every error", function()
            local g = gate(sb.url .. "/ecommpay") -- the fake knows another secret
            local list = {
                { "sale, invalid", err_of(g:sale("trustly", {})) },
                { "payment page, invalid", err_of(g:payment_page{}) },
                { "sale, wrong secret", err_of(g:sale("trustly", SALE)) },
                { "callback, forged", err_of(g:callback('{"general":{"project_id":1625,"payment_id":"p","signature":"AAAA"}}')) },
                { "callback, not JSON", err_of(g:callback("secret?")) },
                { "sale, refused", err_of(gate(REFUSED):sale("trustly", SALE)) },
                { "status, refused", err_of(gate(REFUSED):status("p-1")) },
            }
            for _, how in ipairs(ECHOES) do
                list[#list + 1] = { "sale, echo " .. how, err_of(gate(sb.url .. "/echo/" .. how):sale("trustly", SALE)) }
                list[#list + 1] = { "status, echo " .. how, err_of(gate(sb.url .. "/echo/" .. how):status("p-1")) }
            end
            for _, e in ipairs(list) do assert_clean_error("ecommpay " .. e[1], e[2]) end
        end)

        it("names the option, never the secret, when the configuration is wrong", function()
            for _, o in ipairs({
                { project_id = "1625", secret = S.ecommpay_secret },
                { project_id = 1625, secret = S.ecommpay_secret, base_url = "ftp://" .. S.ecommpay_secret },
            }) do
                local ok, msg = pcall(ecommpay.new, o)
                assert.is_false(ok)
                assert_clean("ecommpay.new", msg)
            end
        end)
    end)

    describe("trustly", function()
        local function client(base_url, extra)
            return trustly.new(with({ username = "tly-user", password = S.trustly_password, private_key = MERCHANT_PEM,
                trustly_public_key = PROVIDER_PUBLIC, base_url = base_url }, extra))
        end
        local function deposit()
            return {
                NotificationURL = "https://shop.example/trustly/notify", EndUserID = "user-42", MessageID = core.uuid4(),
                Attributes = {
                    Currency = "SEK", Amount = 10300, Firstname = "John", Lastname = "Doe", Country = "SE",
                    Locale = "sv_SE", SuccessURL = "https://shop.example/ok", FailURL = "https://shop.example/fail",
                },
            }
        end

        it("shows a client without its password or key, however the key was given", function()
            local fake = sb.url .. "/trustly/api/1"
            assert_clean_client("trustly, PEM", client(fake))
            assert_clean_client("trustly, encrypted PEM",
                client(fake, { private_key = ENCRYPTED_PEM, private_key_passphrase = S.trustly_passphrase }))
            local key = assert(core.pkey(PKCS1_PEM))
            assert_clean_client("trustly, key object", client(fake, { private_key = key }), key)
        end)

        it("keeps the password and the key out of every error", function()
            local fake = sb.url .. "/trustly/api/1" -- the fake knows another password
            local c = client(fake, { private_key = ENCRYPTED_PEM, private_key_passphrase = S.trustly_passphrase })
            local list = {
                { "deposit, invalid", err_of(c:deposit{}) },
                { "deposit, wrong password", err_of(c:deposit(deposit())) },
                { "deposit, answer signed by someone else",
                    err_of(client(fake, { trustly_public_key = MERCHANT_PUBLIC }):deposit(deposit())) },
                { "notification, forged", err_of(c:notification(trustly.notification("credit", core.uuid4(),
                    { orderid = "1", amount = "1.00", currency = "SEK" }, MERCHANT_PEM))) },
                { "notification, not JSON", err_of(c:notification(S.trustly_password)) },
                { "deposit, refused", err_of(client(REFUSED):deposit(deposit())) },
                { "balance, refused", err_of(client(REFUSED):balance()) },
            }
            for _, how in ipairs(ECHOES) do
                list[#list + 1] = { "deposit, echo " .. how, err_of(client(sb.url .. "/echo/" .. how):deposit(deposit())) }
            end
            for _, e in ipairs(list) do assert_clean_error("trustly " .. e[1], e[2]) end
            assert_redacted("trustly echo 500", list[#list - #ECHOES + 1][2])
        end)

        it("names the option, never the password or the key, when the configuration is wrong", function()
            local junk = "-----BEGIN PRIVATE KEY-----\n" .. b64(S.trustly_junk_key) .. "\n-----END PRIVATE KEY-----\n"
            for _, extra in ipairs({
                { private_key = ENCRYPTED_PEM, private_key_passphrase = S.trustly_wrong_passphrase },
                { private_key = ENCRYPTED_PEM },
                { private_key = junk },
                { private_key = MERCHANT_PUBLIC },
                { environment = "live", verify = false },
                { base_url = "ftp://" .. S.trustly_password },
            }) do
                local ok, msg = pcall(client, nil, extra)
                assert.is_false(ok)
                assert_clean("trustly.new", msg)
            end
        end)
    end)

    describe("trustpay", function()
        local function client(base_url, banking_url, extra)
            return trustpay.new(with({ account_id = "4107111111", secret = S.trustpay_secret, base_url = base_url,
                banking = { username = USER.trustpay_banking_password, password = S.trustpay_banking_password,
                            base_url = banking_url or base_url } }, extra))
        end
        local REFUND = { Amount = 1000, Currency = "EUR", Reference = "r-1", PaymentRequestId = 12345 }
        local FILTER = { AccountId = "4107111111", DateFrom = "2024-01-01", DateTo = "2024-01-31" }

        it("shows a client without its secret, banking password or token", function()
            local c = client(sb.url .. "/echo/200", sb.url .. "/echo/tok200")
            assert(c:access_token()) -- now it holds a token too
            assert_clean_client("trustpay", c)
        end)

        it("keeps the secret, the banking password and the token out of every error", function()
            local fake = sb.url .. "/trustpay" -- the fake knows other credentials
            local c = client(fake)
            local list = {
                { "refund, invalid", err_of(c:refund{}) },
                { "payment URL, invalid", err_of(c:card_payment_url{}) },
                { "transactions, invalid", first_error(c:transactions{ PageSize = 0 }) },
                { "accounts, wrong password", err_of(c:accounts()) },
                { "refund, wrong secret", err_of(c:refund(REFUND)) },
                { "notification, forged", err_of(c:notification("AccountId=4107111111&Type=CRDT&Amount=1.00&Currency=EUR"
                    .. "&Reference=r-1&ResultCode=0&PaymentId=1&Signature=" .. ("0"):rep(64))) },
                { "accounts, no banking configured", err_of(trustpay.new(with{ account_id = "4107111111",
                    secret = S.trustpay_secret }):accounts()) },
                { "refund, refused", err_of(client(REFUSED):refund(REFUND)) },
                { "accounts, refused", err_of(client(REFUSED):accounts()) },
            }
            for _, how in ipairs(ECHOES) do
                list[#list + 1] = { "refund, echo " .. how, err_of(client(sb.url .. "/echo/" .. how):refund(REFUND)) }
                if how ~= "200" and how ~= "200t" then
                    list[#list + 1] = { "token, echo " .. how, err_of(client(sb.url .. "/echo/" .. how):accounts()) }
                    collectgarbage() -- no other client keeps the same token registered
                    local tok = client(nil, sb.url .. "/echo/tok" .. how)
                    list[#list + 1] = { "accounts, echo tok" .. how, err_of(tok:accounts()) } -- the Bearer token echoed
                    list[#list + 1] = { "transactions, echo tok" .. how, first_error(tok:transactions(FILTER)) }
                end
            end
            for _, e in ipairs(list) do assert_clean_error("trustpay " .. e[1], e[2]) end
            for _, e in ipairs(list) do
                if e[1] == "token, echo 400t" or e[1] == "accounts, echo tok400t" then
                    assert_redacted("trustpay " .. e[1], { message = e[2].raw })
                end
            end
        end)

        it("names the option, never a secret, when the configuration is wrong", function()
            for _, extra in ipairs({ { account_id = "x" }, { base_url = "ftp://" .. S.trustpay_secret },
                                     { banking = { username = "a:b", password = S.trustpay_banking_password } } }) do
                local ok, msg = pcall(client, sb.url, nil, extra)
                assert.is_false(ok)
                assert_clean("trustpay.new", msg)
            end
        end)
    end)

    describe("begateway", function()
        local function client(dwh_url, extra)
            return begateway.new(with({ psp_id = USER.begateway_secret, secret = S.begateway_secret, dwh_url = dwh_url,
                shop_id = USER.begateway_shop_key, shop_key = S.begateway_shop_key }, extra))
        end
        local PERIOD = { date_from = "2024-06-02T10:00:00", date_to = "2024-06-02T11:00:00" }
        local function basic(user, password) return { Authorization = "Basic " .. b64(user .. ":" .. password) } end

        it("shows a client without its secret or shop key", function()
            assert_clean_client("begateway", client(sb.url .. "/begateway"))
        end)

        it("keeps the secret and the shop key out of every error", function()
            local c = client(sb.url .. "/begateway") -- the fake knows another secret
            local list = {
                { "export, invalid", first_error(c:export{ date_from = "yesterday" }) },
                { "export, wrong secret", first_error(c:export(PERIOD)) },
                { "notification, wrong shop key", err_of(c:notification('{"transaction":{}}', basic(USER.begateway_shop_key, "wrong"))) },
                { "notification, no transaction", err_of(c:notification(S.begateway_secret,
                    basic(USER.begateway_shop_key, S.begateway_shop_key))) },
                { "notification, unusable public key", err_of(begateway.verify_notification("{}", {}, { public_key = "bm90IGEga2V5" })) },
                { "export, refused", first_error(client(REFUSED):export(PERIOD)) },
            }
            for _, how in ipairs(ECHOES) do
                list[#list + 1] = { "export, echo " .. how, first_error(client(sb.url .. "/echo/" .. how):export(PERIOD)) }
            end
            for _, e in ipairs(list) do assert_clean_error("begateway " .. e[1], e[2]) end
            assert_redacted("begateway echo 400", list[#list - #ECHOES + 2][2])
        end)

        it("names the option, never a secret, when the configuration is wrong", function()
            for _, extra in ipairs({ { dwh_url = "ftp://" .. S.begateway_secret }, { shop_id = false },
                                     { shop_key = "" }, { public_key = S.begateway_shop_key } }) do
                local ok, msg = pcall(client, sb.url, extra)
                assert.is_false(ok)
                assert_clean("begateway.new", msg)
            end
        end)
    end)

    describe("trustly_na", function()
        local function client(base_url, extra)
            return trustly_na.new(with({ access_id = USER.trustly_na_access_key, access_key = S.trustly_na_access_key,
                base_url = base_url }, extra))
        end

        it("shows a client without its access key", function()
            assert_clean_client("trustly_na", client(sb.url .. "/trustly_na"))
        end)

        it("keeps the access key out of every error", function()
            local c = client(sb.url .. "/trustly_na") -- the fake knows another key
            local list = {
                { "payments, invalid", first_error(c:payments{ count = 1000 }) },
                { "payments, wrong key", first_error(c:payments{}) },
                { "notification, forged", err_of(c:notification("merchantReference=" .. S.trustly_na_access_key,
                    "Basic " .. b64(USER.trustly_na_access_key .. ":AAAA"))) },
                { "notification, no credentials", err_of(c:notification("a=1", {})) },
                { "payments, refused", first_error(client(REFUSED):payments{}) },
            }
            for _, how in ipairs(ECHOES) do
                list[#list + 1] = { "payments, echo " .. how, first_error(client(sb.url .. "/echo/" .. how):payments{}) }
            end
            for _, e in ipairs(list) do assert_clean_error("trustly_na " .. e[1], e[2]) end
            assert_redacted("trustly_na echo 400", list[#list - #ECHOES + 2][2])
        end)

        it("names the option, never the key, when the configuration is wrong", function()
            for _, extra in ipairs({ { access_id = "a:b" }, { base_url = "ftp://" .. S.trustly_na_access_key },
                                     { environment = "prod" } }) do
                local ok, msg = pcall(client, nil, extra)
                assert.is_false(ok)
                assert_clean("trustly_na.new", msg)
            end
        end)
    end)

    it("hides a secret in every form a server or a log may echo it in", function()
        local secret = S.ecommpay_secret -- letters, a space, punctuation and non-ASCII
        local g = ecommpay.new(with{ project_id = 1625, secret = secret, base_url = sb.url .. "/ecommpay" })
        local forms = echoed_forms(secret)
        forms.raw, forms.base64, forms.hex = secret, b64(secret), hex(secret)
        forms.json_php = forms.json_ascii:gsub("/", "\\/") -- PHP's json_encode
        forms.json_dotnet = forms.json_ascii_upper:gsub('\\"', "\\u0022") -- .NET's System.Text.Json
            :gsub("[<>&'+]", function(c) return ("\\u%04X"):format(c:byte()) end)
        for name, form in pairs(forms) do
            local err = errors.new("http", "the server said [" .. form .. "]", { raw = "[" .. form .. "]" })
            assert.equal("the server said [[REDACTED]]", err.message, name)
            assert.equal("[[REDACTED]]", err.raw, name)
            assert.equal("luapay http error: the server said [[REDACTED]]", tostring(err), name)
            assert.equal("[[REDACTED]]", errors.hide("[" .. form .. "]"), name)
        end
        assert.truthy(g)
    end)

    it("hides a client's key by its body however wrapped, and by the hex of its DER", function()
        local c = trustly.new(with{ username = "tly-user", password = planted(), private_key = PKCS1_PEM,
            trustly_public_key = PROVIDER_PUBLIC, base_url = sb.url .. "/trustly/api/1" })
        local body = PKCS1_PEM:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", "")
        local joined = body:gsub("%s+", "")
        local der = assert(core.base64_decode(joined))
        for _, form in ipairs({ joined, body:match("%S+"), hex(der), hex(der, true) }) do
            assert.equal("key: [REDACTED].", errors.hide("key: " .. form .. "."), form:sub(1, 20))
        end
        assert.truthy(c)
    end)

    it("shows no credentials of a URL: not in a client's description, nor in any error", function()
        local function absent(label, text, needles)
            for _, n in ipairs(needles) do
                assert.is_nil(tostring(text):find(n, 1, true), ("%s shows %s: %s"):format(label, n, tostring(text)))
            end
        end
        local pw = { planted(), planted(), planted(), planted() }
        local needles = {}
        for _, p in ipairs(pw) do needles[#needles + 1] = p end
        local b = begateway.new(with{ psp_id = "9", secret = planted(),
            dwh_url = "https://proxyuser:" .. pw[1] .. "@dwh.example.com" })
        local t = trustpay.new(with{ account_id = "4107111111", secret = planted(),
            base_url = "https://tp:" .. pw[2] .. "@amapi.example.com",
            banking = { username = "u", password = planted(), base_url = "https://bk:" .. pw[3] .. "@api.example.com" } })
        -- a server that echoes the request: libcurl sends the URL's credentials as HTTP Basic
        local echo = sb.url:gsub("^http://", "http://gw:" .. pw[4] .. "@") .. "/echo/400t"
        local g = ecommpay.new(with{ project_id = 1625, secret = planted(), base_url = echo })
        needles[#needles + 1] = b64("gw:" .. pw[4])
        for label, c in pairs({ begateway = b, trustpay = t, ecommpay = g }) do
            absent(label .. ": tostring", tostring(c), { "proxyuser", "//tp:", "//gw:", "//bk:", "@" })
            absent(label .. ": pretty", pretty.format(c), needles)
            absent(label .. ": errors.mask", pretty.format(errors.mask(c)), needles)
            absent(label .. ": the REPL", repl_output(c), needles)
        end
        assert.equal("luapay.begateway client (test, psp 9, https://dwh.example.com)", tostring(b))
        local _, err = g:status("p-1")
        assert.equal(400, err.http_status)
        assert_redacted("the echo of the URL's credentials", { message = err.raw })
        for _, text in ipairs(texts(err)) do absent("the error", text, needles) end
        absent("tostring(err)", tostring(err), needles)
        for i, p in ipairs(pw) do assert.equal("[REDACTED]", errors.hide(p), "password " .. i) end
    end)

    it("masks secrets by what they are: declared values anywhere, and keys never masked before", function()
        local secret = planted()
        local c = begateway.new(with{ psp_id = "9", secret = secret, dwh_url = sb.url }) -- declares it a secret
        assert.is_nil(pretty.format(c):find(secret, 1, true))
        local m = errors.mask({ note = "the key is " .. secret, [secret] = 1,
            private_key_passphrase = "pp", shop_key = "sk", basic = { "u", "p" }, bearer = "t", client_secret = "cs",
            banking_password = "bp" })
        assert.equal("***", m.private_key_passphrase)
        assert.equal("***", m.shop_key)
        assert.equal("***", m.basic)
        assert.equal("***", m.bearer)
        assert.equal("***", m.client_secret)
        assert.equal("***", m.banking_password)
        assert.is_nil(pretty.format(m):find(secret, 1, true))
        assert.equal("the key is [REDACTED]", m.note)
        assert.equal("the key is [REDACTED]", errors.hide("the key is " .. hex(secret)))
    end)
end)
