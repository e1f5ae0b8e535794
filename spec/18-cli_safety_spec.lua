-- The luapay command is safe to script against live accounts: a mistyped
-- option is a usage error before anything is sent, an export that fails
-- says so with the cursor to resume from (and never leaves a CSV that
-- looks complete), and no configured secret reaches stdout or stderr.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local providers = require "luapay.sandbox.providers"
local util = require "support.util"

local run = require("support.cli").run

local STATE = "safety"

local function luapay(args, input, env)
    return run(args, input, env, STATE)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local write = util.write
local exists = util.exists

local http = core.http_client{}
local function get_json(url)
    local res = assert(http:request{ method = "GET", url = url })
    assert.equal(200, res.status, res.body)
    return core.json_decode(res.body)
end

-- A sandbox of our own: every fake, plus /live/, a stand-in for a live
-- endpoint that counts what reaches it and echoes it back.
local live_sb
local function live_sandbox()
    if not live_sb then
        local routes = providers.routes()
        routes["/live/"] = "support.live_endpoint"
        live_sb = assert(sandbox.start{ routes = routes, lua_path = "spec/?.lua" })
    end
    return live_sb
end
local function live_requests() return get_json(live_sandbox().url .. "/live/_count").requests end

teardown(function()
    if live_sb then util.stop_sandbox(live_sb) end
    http:close()
end)

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------

describe("luapay options", function()
    local env
    setup(function()
        -- Every provider configured for a "live" endpoint that counts requests.
        local live = live_sandbox().url .. "/live/500"
        env = table.concat({
            "LUAPAY_CONFIG=/nonexistent",
            "LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=live-secret LUAPAY_ECOMMPAY_BASE_URL=" .. live,
            "LUAPAY_TRUSTPAY_ACCOUNT_ID=4107111111 LUAPAY_TRUSTPAY_SECRET=live-secret LUAPAY_TRUSTPAY_BASE_URL=" .. live,
            "LUAPAY_TRUSTPAY_BANKING_USERNAME=u LUAPAY_TRUSTPAY_BANKING_PASSWORD=live-pw LUAPAY_TRUSTPAY_BANKING_BASE_URL=" .. live,
            "LUAPAY_TRUSTLY_USERNAME=u LUAPAY_TRUSTLY_PASSWORD=live-pw LUAPAY_TRUSTLY_BASE_URL=" .. live,
            "LUAPAY_TRUSTLY_PRIVATE_KEY=spec/fixtures/keys/merchant_private.pem",
            "LUAPAY_BEGATEWAY_PSP_ID=1 LUAPAY_BEGATEWAY_SECRET=live-secret LUAPAY_BEGATEWAY_DWH_URL=" .. live,
            "LUAPAY_TRUSTLY_NA_ACCESS_ID=a LUAPAY_TRUSTLY_NA_ACCESS_KEY=live-key LUAPAY_TRUSTLY_NA_BASE_URL=" .. live,
        }, " ")
    end)

    -- Each must end in a usage error (exit 2, one line, nothing on stdout)
    -- with nothing sent to the live endpoint.
    local function refused(args, message, input)
        local before = live_requests()
        local out, err, code = luapay(args, input, env)
        assert.equal(2, code, args .. ": " .. err)
        assert.equal("", out, args)
        assert.matches("^luapay: " .. message, err, 1, args)
        assert.equal(1, select(2, err:gsub("\n", "")), args .. ": " .. err)
        assert.equal(before, live_requests(), args .. " reached the live endpoint")
    end

    it("refuses an unknown option and sends nothing (call ... --dry-run --sandbox went live)", function()
        refused("call ecommpay status --dry-run --sandbox '{\"payment_id\":\"p-1\"}'", "unknown option %-%-dry%-run")
        refused("call trustly Balance --dry-run --sandbox", "unknown option %-%-dry%-run")
        refused("call trustpay accounts --dry-run --sandbox", "unknown option %-%-dry%-run")
    end)

    it("refuses unknown options in every subcommand", function()
        local body = '{"payment_id":"p-9","payment_amount":1000,"payment_currency":"EUR","customer_id":"c-1"}'
        refused("sandbox --dry-run status", "unknown option %-%-dry%-run")
        refused("sign ecommpay --dry-run -", "unknown option %-%-dry%-run", body)
        refused("verify trustpay --dry-run -", "unknown option %-%-dry%-run", "a=b")
        refused("url ecommpay-page --dry-run -", "unknown option %-%-dry%-run", body)
        refused("url ecommpay-page --explain -", "unknown option %-%-explain", body)
        refused("export begateway --from 2024-06-03 --to 2024-06-03 --dry-run --sandbox", "unknown option %-%-dry%-run")
        refused("export trustly-na --from 2024-06-03 --to 2024-06-03 --limit 5", "unknown option %-%-limit")
        refused("repl --dry-run x", "unknown option %-%-dry%-run")
        refused("call ecommpay status -n '{\"payment_id\":\"p-1\"}'", "unknown option %-n")
    end)

    it("refuses an option that belongs to another provider", function()
        refused("verify ecommpay --signature abc -", "option %-%-signature is not one of 'luapay verify ecommpay'", "{}")
        refused("verify trustly-na --signature abc -", "option %-%-signature is not one of 'luapay verify trustly%-na'", "{}")
    end)

    it("never reads --flag=value as the flag: --sandbox=false is a usage error", function()
        refused("call ecommpay status --sandbox=false '{\"payment_id\":\"p-1\"}'", "option %-%-sandbox takes no value")
        refused("call trustly Balance --sandbox=no", "option %-%-sandbox takes no value")
        refused("sign ecommpay --explain=0 -", "option %-%-explain takes no value", "{}")
    end)

    it("refuses an option without its value instead of taking the next option as it", function()
        refused("export trustly-na --from 2024-06-01 --to 2024-06-01 --csv --sandbox", "option %-%-csv needs a value")
        refused("export begateway --from 2024-06-01 --to --sandbox", "option %-%-to needs a value")
        refused("export begateway --sandbox --from 2024-06-01 --to", "option %-%-to needs a value")
        refused("export begateway --sandbox --from= --to 2024-06-01", "option %-%-from needs a value")
        refused("verify begateway --signature", "option %-%-signature needs a value")
    end)

    it("refuses arguments a command does not take: a flag without its dashes never goes live", function()
        refused("export begateway sandbox --from 2024-06-03 --to 2024-06-03", "too many arguments; usage: luapay export")
        refused("call trustly Balance '{}' sandbox", "too many arguments; usage: luapay call")
        refused("sign ecommpay - sandbox", "too many arguments; usage: luapay sign", "{}")
        refused("url ecommpay-page - sandbox", "too many arguments; usage: luapay url", "{}")
        refused("sandbox start now", "too many arguments; usage: luapay sandbox")
        refused("repl sandbox", "too many arguments; usage: luapay repl")
    end)

    it("refuses an option given twice", function()
        refused("export begateway --from 2024-06-01 --from 2024-06-02 --to 2024-06-03 --sandbox", "option %-%-from is given twice")
        refused("call trustly Balance --sandbox --sandbox", "option %-%-sandbox is given twice")
    end)

    it("takes --name=value and --name value alike, and -- before positionals that start with '-'", function()
        local out, err, code = luapay("sign ecommpay --explain -- -",
            '{"general":{"project_id":1625,"payment_id":"p-1"}}',
            "LUAPAY_CONFIG=/nonexistent LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=s3cret-value")
        assert.equal(0, code, err)
        assert.equal("general:payment_id:p-1;general:project_id:1625", core.json_decode(out).string_to_sign)
        local _, err2, code2 = luapay("export begateway --from=2024-06-03 --to=yesterday", nil, env)
        assert.equal(2, code2)
        assert.equal("luapay: --to must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ss\n", err2)
    end)

    it("documents the option rules in --help", function()
        local out = luapay("--help")
        assert.truthy(out:find("--name value or --name=value", 1, true), out)
        assert.truthy(out:find("--sandbox=false", 1, true), out)
        out = luapay("export --help")
        assert.truthy(out:find("--resume CURSOR", 1, true), out)
    end)
end)

---------------------------------------------------------------------------
-- Exports that fail
---------------------------------------------------------------------------

describe("luapay export when a page fails", function()
    local base
    local SANDBOX_ENV = "LUAPAY_CONFIG=/nonexistent"
    setup(function()
        local out, err, code = luapay("sandbox start", nil, SANDBOX_ENV)
        assert.equal(0, code, err)
        base = core.json_decode(out).url
    end)
    teardown(function() luapay("sandbox stop", nil, SANDBOX_ENV) end)

    -- Fails the fake's page number `page` (1 = the first) with HTTP 401.
    local function fail_page(fake, page)
        get_json(("%s/%s/_control/reset"):format(base, fake))
        get_json(("%s/%s/_control/fail?after=%d&status=401&times=1"):format(base, fake, page - 1))
    end

    local function lines(text)
        local list = {}
        for line in text:gmatch("[^\n]+") do list[#list + 1] = line end
        return list
    end

    -- The cursor printed on stderr, as the argument to pass back.
    local function resume_arg(err)
        local cursor = err:match("%-%-resume '([^']*)'")
        assert.is_string(cursor, err)
        assert.is_table(core.json_decode(cursor), cursor)
        return cursor
    end

    local PERIODS = {
        begateway = "--from 2024-06-01 --to 2024-06-05",
        ["trustly-na"] = "--from 2024-06-01 --to 2024-06-05",
    }
    local FAKES = { begateway = "begateway", ["trustly-na"] = "trustly_na" }

    for _, provider in ipairs({ "begateway", "trustly-na" }) do
        local export = "export " .. provider .. " " .. PERIODS[provider] .. " --sandbox"

        it(provider .. ": a failing first page exits 1, says why and prints the cursor", function()
            fail_page(FAKES[provider], 1)
            local out, err, code = luapay(export, nil, SANDBOX_ENV)
            assert.equal(1, code, err)
            assert.equal("", out)
            assert.matches("^luapay: export incomplete", err)
            assert.matches("HTTP 401", err)
            assert.matches("0 transactions", err)
            resume_arg(err)
            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
        end)

        it(provider .. ": a failing later page exits 1 and the cursor continues exactly there", function()
            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
            local full, ferr, fcode = luapay(export, nil, SANDBOX_ENV)
            assert.equal(0, fcode, ferr)
            full = lines(full)
            assert.is_true(#full > 1000, "more than one page")

            fail_page(FAKES[provider], 2)
            local out, err, code = luapay(export, nil, SANDBOX_ENV)
            assert.equal(1, code, err)
            local before = lines(out)
            assert.is_true(#before > 0 and #before < #full)
            assert.matches(("%d transactions"):format(#before), err)
            local cursor = resume_arg(err)

            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
            local rest, rerr, rcode = luapay(export .. " --resume " .. q(cursor), nil, SANDBOX_ENV)
            assert.equal(0, rcode, rerr)
            for _, line in ipairs(lines(rest)) do before[#before + 1] = line end
            assert.same(full, before)
        end)

        it(provider .. ": with --csv the file appears only when complete; --resume completes FILE.partial", function()
            local csv, full_csv = os.tmpname(), os.tmpname()
            os.remove(csv)
            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
            local err, code = select(2, luapay(export .. " --csv " .. full_csv, nil, SANDBOX_ENV))
            assert.equal(0, code, err)
            local full = util.read(full_csv)
            os.remove(full_csv)

            fail_page(FAKES[provider], 1)
            local out
            out, err, code = luapay(export .. " --csv " .. csv, nil, SANDBOX_ENV)
            assert.equal(1, code, err)
            assert.equal("", out)
            assert.is_false(exists(csv), "a CSV file that looks complete")
            assert.truthy(err:find("kept in " .. csv .. ".partial", 1, true), err)
            resume_arg(err)

            fail_page(FAKES[provider], 2)
            err, code = select(2, luapay(export .. " --csv " .. csv, nil, SANDBOX_ENV))
            assert.equal(1, code, err)
            assert.is_false(exists(csv), "a CSV file that looks complete")
            local partial = util.read(csv .. ".partial")
            local rows = select(2, partial:gsub("\r\n", "")) - 1
            assert.is_true(rows > 0)
            assert.matches(("%d transactions"):format(rows), err)
            local cursor = resume_arg(err)

            -- The resumed run appends the rest to FILE.partial, then renames it.
            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
            out, err, code = luapay(export .. " --csv " .. csv .. " --resume " .. q(cursor), nil, SANDBOX_ENV)
            assert.equal(0, code, err)
            assert.is_false(exists(csv .. ".partial"))
            local text = util.read(csv)
            os.remove(csv)
            assert.equal(full, text)
            assert.equal(core.json_decode(out).written + 1, select(2, text:gsub("\r\n", "")))
        end)

        it(provider .. ": --resume with --csv needs the FILE.partial it continues", function()
            local csv = os.tmpname()
            os.remove(csv)
            local _, err, code = luapay(export .. " --csv " .. csv .. " --resume '{}'", nil, SANDBOX_ENV)
            assert.equal(2, code, err)
            assert.matches("%-%-resume with %-%-csv continues .*%.partial", err)
            assert.is_false(exists(csv))
        end)
    end

    it("a request refused before anything is sent exits 1 with the reason, not an empty success", function()
        for _, args in ipairs({ "export begateway --from 2024-01-01 --to 2024-12-31 --sandbox",
            "export trustly-na --from 2024-06-02 --to 2024-06-01 --sandbox" }) do
            local out, err, code = luapay(args, nil, SANDBOX_ENV)
            assert.equal(1, code, args)
            assert.equal("", out)
            assert.matches("^luapay: validation error: ", err)
        end
    end)

    it("refuses a cursor that is not JSON", function()
        local _, err, code = luapay("export begateway --from 2024-06-01 --to 2024-06-01 --sandbox --resume nope", nil, SANDBOX_ENV)
        assert.equal(2, code)
        assert.matches("^luapay: %-%-resume", err)
    end)
end)

---------------------------------------------------------------------------
-- Secrets
---------------------------------------------------------------------------

describe("luapay output never holds a configured secret", function()
    -- Distinct planted credentials, one per secret setting; the Trustly
    -- password is a number in the config file.
    local S = {
        ecommpay = "ecp-Secret-91f3a7c2", trustly_password = 31415926535, trustpay = "tp-Secret-0b7d44e1",
        trustpay_banking = "tp-BankPw-e3a1f09c", begateway = "bg-Secret-7aa2c9d4",
        begateway_shop = "bg-ShopKey-41de77b0", trustly_na = "tna-AccessKey-9d02c8aa",
    }
    local dir, key_pem, key_file, config_file, csv_file
    local outputs -- { {label, text}, ... } everything the command printed or wrote

    local function sh(cmd)
        local ok = os.execute(cmd)
        assert(ok == true or ok == 0, cmd)
    end

    setup(function()
        dir = os.tmpname()
        os.remove(dir)
        sh("mkdir -p " .. dir)
        key_file = dir .. "/merchant_private.pem"
        sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. key_file .. " 2>/dev/null")
        key_pem = util.read(key_file)
        config_file = dir .. "/config.lua"
        csv_file = dir .. "/export.csv"
        live_sandbox()
    end)
    teardown(function() sh("rm -rf " .. dir) end)
    before_each(function() outputs = {} end)

    -- A config file pointing every provider at urls[provider].
    local function configure(urls)
        write(config_file, ([[
return {
    ecommpay = { project_id = 1625, secret = %q, base_url = %q },
    trustly = { username = "shop", password = %d, private_key = %q, base_url = %q },
    trustpay = { account_id = "4107111111", secret = %q, base_url = %q,
                 banking_username = "bank-user", banking_password = %q, banking_base_url = %q },
    begateway = { psp_id = "1", secret = %q, dwh_url = %q, shop_id = "361", shop_key = %q },
    trustly_na = { access_id = "tna-id", access_key = %q, base_url = %q },
}
]]):format(S.ecommpay, urls.ecommpay, S.trustly_password, key_file, urls.trustly, S.trustpay, urls.trustpay,
            S.trustpay_banking, urls.trustpay, S.begateway, urls.begateway, S.begateway_shop, S.trustly_na, urls.trustly_na))
    end

    local function probe(args, input, env)
        local out, err, code = luapay(args, input, "LUAPAY_CONFIG=" .. config_file .. " " .. (env or ""))
        outputs[#outputs + 1] = { args, out .. err }
        return out, err, code
    end

    local function forms(secret)
        secret = tostring(secret)
        local b64 = core.base64_encode(secret)
        return { raw = secret, base64 = b64, base64_unpadded = (b64:gsub("=+$", "")),
            hex = core.hex_encode(secret), HEX = core.hex_encode(secret, true) }
    end

    -- Every form of every planted secret, and of the private key: its PEM
    -- body whole and line by line, and its DER in hex.
    local function all_forms()
        local list = {}
        for name, secret in pairs(S) do
            for form, text in pairs(forms(secret)) do list[#list + 1] = { name .. " (" .. form .. ")", text } end
        end
        local body = key_pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", "")
        list[#list + 1] = { "the private key's body", (body:gsub("%s+", "")) }
        for line in body:gmatch("%S+") do list[#list + 1] = { "a line of the private key's body", line } end
        local der = core.base64_decode((body:gsub("%s+", "")))
        list[#list + 1] = { "the private key's DER (hex)", core.hex_encode(der) }
        list[#list + 1] = { "the private key's DER (HEX)", core.hex_encode(der, true) }
        return list
    end

    -- Every leak found, "<what> in `luapay <args>`", so that one run lists them all.
    local function assert_no_secret()
        local leaks, forms_list = {}, all_forms()
        for _, o in ipairs(outputs) do
            for _, f in ipairs(forms_list) do
                if o[2]:find(f[2], 1, true) then leaks[#leaks + 1] = ("%s in `luapay %s`"):format(f[1], o[1]) end
            end
        end
        assert.same({}, leaks)
    end

    local function basic(user, password) return "Basic " .. core.base64_encode(user .. ":" .. password) end

    -- Every command a merchant may run against the configured account.
    local function every_command()
        local ecommpay = require "luapay.ecommpay"
        probe("sign ecommpay --explain", '{"general":{"project_id":1625,"payment_id":"p-1"},"payment":{"amount":1000,"currency":"EUR"}}')
        probe("sign trustpay --explain",
            '{"kind":"refund","fields":{"AccountId":"4107111111","Amount":150,"Currency":"EUR","Reference":"R-1"}}')
        probe("sign trustly --explain", ('{"method":"Balance","data":{"Username":"shop","Password":%d}}'):format(S.trustly_password))
        probe("sign trustly", '{"method":"Balance","data":{"Username":"shop","Password":"x"}}')

        local cb = { payment = { id = "p-1", status = "success", amount = 1000, currency = "EUR" },
            operation = { type = "sale", status = "success", sum_initial = { amount = 1000, currency = "EUR" } }, project_id = 1625 }
        cb.signature = ecommpay.signature(cb, S.ecommpay)
        local raw = core.json_encode(cb)
        probe("verify ecommpay --explain", raw)
        probe("verify ecommpay", (raw:gsub("1000", "9000")))
        probe("verify trustpay --explain", "AccountId=4107111111&Type=CRDT&Amount=1.00&Currency=EUR&ResultCode=0&Signature=00")
        probe("verify trustly", '{"method":"credit","params":{"uuid":"u","signature":"c2ln","data":{"orderid":"1"}},"version":"1.1"}')
        probe("verify trustly", "not json")
        local webhook = core.json_encode{ transaction = { uid = "u-1", status = "successful", type = "payment",
            amount = 1000, currency = "EUR", tracking_id = "ORD-1" } }
        probe("verify begateway --authorization " .. q(basic("361", S.begateway_shop)), webhook)
        probe("verify begateway --authorization " .. q(basic("361", "wrong")), webhook)
        probe("verify begateway --signature c2ln", webhook)
        probe("verify trustly-na --authorization " .. q(basic("tna-id", S.trustly_na)), "a=b")

        probe("call ecommpay status '{\"payment_id\":\"p-1\"}'")
        probe("call ecommpay sale '{\"general\":{\"payment_id\":\"p-2\"},\"payment\":{\"amount\":2500,\"currency\":\"EUR\"},"
            .. "\"customer\":{\"id\":\"c-42\",\"ip_address\":\"198.51.100.7\",\"first_name\":\"Asa\",\"last_name\":\"L\","
            .. "\"email\":\"asa@example.se\",\"country\":\"SE\",\"language\":\"sv\"},"
            .. "\"return_url\":{\"success\":\"https://shop.example/ok\",\"decline\":\"https://shop.example/no\"}}'")
        probe("call trustly Balance")
        probe("call trustpay accounts")
        probe("call trustpay refund '{\"Amount\":150,\"Currency\":\"EUR\",\"Reference\":\"R-1\",\"PaymentRequestId\":\"123\"}'")

        for _, provider in ipairs({ "begateway", "trustly-na" }) do
            probe("export " .. provider .. " --from 2024-06-03 --to 2024-06-03")
            os.remove(csv_file)
            os.remove(csv_file .. ".partial")
            probe("export " .. provider .. " --from 2024-06-03 --to 2024-06-03 --csv " .. csv_file)
            for _, path in ipairs({ csv_file, csv_file .. ".partial" }) do
                if exists(path) then outputs[#outputs + 1] = { "export " .. provider .. " (the CSV file)", util.read(path) } end
            end
        end

        probe("url ecommpay-page", '{"payment_id":"p-9","payment_amount":1000,"payment_currency":"EUR","customer_id":"c-1"}')
        probe("url trustpay-card", '{"Amount":2500,"Currency":"EUR","Reference":"ORD-7","CardHolder":"Jane Doe",'
            .. '"BillingStreet":"Main 1","BillingCity":"Bratislava","BillingPostcode":"81101","BillingCountry":"SK",'
            .. '"Email":"jane@example.com"}')
        probe("url trustpay-wire", '{"Amount":2500,"Currency":"EUR","Reference":"ORD-8"}')
        probe("--help")
    end

    local function everywhere(path)
        local url = live_sandbox().url
        return { ecommpay = url .. path, trustly = url .. path, trustpay = url .. path, begateway = url .. path,
            trustly_na = url .. path }
    end

    it("hides a secret from the command's output in every form it may take", function()
        local cli = require "luapay.cli"
        local secret = "out-Filter/Secret+\"7x"
        cli.add_secret(secret)
        cli.add_secret(key_pem)
        cli.add_secret(27182818284)
        local body = key_pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", "")
        local der = core.base64_decode((body:gsub("%s+", "")))
        for _, form in ipairs({ secret, core.json_encode(secret):sub(2, -2), "out-Filter%2FSecret%2B%227x",
            core.base64_encode(secret), core.hex_encode(secret), core.hex_encode(secret, true), "27182818284",
            core.hex_encode("27182818284"), key_pem, body:match("%S+"), (body:gsub("%s+", "")), core.hex_encode(der) }) do
            assert.equal("a [REDACTED] b", cli.redact("a " .. form .. " b"), form)
        end
        assert.equal("a short one b", cli.redact("a short one b"))
    end)

    it("hides a secret as luapay.errors does, with one minimum length, and keeps it out of errors too", function()
        local cli = require "luapay.cli"
        local errors = require "luapay.errors"
        local secret = "cli-Secret/9+x"
        cli.add_secret(secret)
        cli.add_secret("k3Y9") -- as short as errors.MIN_SECRET
        cli.add_secret("q7!") -- shorter: not searched for
        assert.equal(4, errors.MIN_SECRET)
        for _, form in ipairs({ "k3Y9", core.base64_encode("k3Y9"),
            core.base64_encode("ab" .. secret .. "yz"):sub(4, -4), -- inside a longer base64 text
            "cli-Secret%2f9%2bx",                                    -- percent-encoded in lower case
            (core.base64_encode(secret):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }):gsub("=+$", "")) }) do
            assert.equal("a [REDACTED] b", cli.redact("a " .. form .. " b"), form)
            local err = errors.new("http", "a " .. form .. " b")
            assert.equal("luapay http error: a [REDACTED] b", tostring(err), form)
        end
        assert.equal("a q7! b", cli.redact("a q7! b"))
    end)

    it("hides them from every command against the provider fakes (wrong credentials)", function()
        local url = live_sandbox().url
        configure{ ecommpay = url .. "/ecommpay", trustly = url .. "/trustly/api/1", trustpay = url .. "/trustpay",
            begateway = url .. "/begateway", trustly_na = url .. "/trustly_na" }
        every_command()
        assert_no_secret()
    end)

    it("says each thing once: no 'luapay: luapay ...', no 'HTTP 500 (HTTP 500)'", function()
        configure(everywhere("/live/500"))
        every_command()
        local failed = 0
        for _, o in ipairs(outputs) do
            assert.is_nil(o[2]:find("luapay: luapay", 1, true), o[1] .. ": " .. o[2])
            for status in o[2]:gmatch("HTTP (%d%d%d)") do
                assert.equal(1, select(2, o[2]:gsub("HTTP " .. status, "")), o[1] .. ": " .. o[2])
            end
            if o[2]:find("HTTP 500", 1, true) then failed = failed + 1 end
        end
        assert.is_true(failed >= 5, "the calls reached the server")
    end)

    for _, status in ipairs({ "200", "401", "500" }) do
        it("hides them from every command against a server that echoes the request with HTTP " .. status, function()
            configure(everywhere("/live/" .. status))
            every_command()
            assert_no_secret()
        end)
    end

    it("sign trustly --explain redacts the credentials whatever the key's case or the value's type", function()
        configure(everywhere("/live/500"))
        local pw = ("%d"):format(S.trustly_password)
        for _, data in ipairs({
            '{"Username":"shop","password":"' .. pw .. '"}',     -- lower case key
            '{"Username":"shop","Password":' .. pw .. '}',       -- a number
            '{"Username":"shop","Password":"' .. pw .. '"}',
            '{"Username":"shop","Notes":"' .. pw .. '"}',        -- the configured password under any key
            '{"Username":"shop","Attributes":{"PASSWORD":"other-pass-2024"}}',
        }) do
            local out, err, code = probe("sign trustly --explain", '{"method":"Balance","uuid":"u-1","data":' .. data .. '}')
            assert.equal(0, code, err)
            local plaintext = core.json_decode(out).plaintext
            assert.matches("^Balanceu%-1", plaintext)
            assert.is_nil(plaintext:find("other-pass-2024", 1, true), plaintext)
            assert.is_nil(out:find("other-pass-2024", 1, true), out)
        end
        assert_no_secret()
    end)

    it("names a broken config file and the line at fault, never its text", function()
        -- A forgotten closing quote: Lua's message quotes the rest of the line.
        write(config_file, 'return {\n    ecommpay = { project_id = 1625,\n        secret = "' .. S.ecommpay .. ', base_url = "x" },\n}\n')
        local _, err, code = probe("call ecommpay status '{\"payment_id\":\"p-1\"}'")
        assert.equal(3, code)
        assert.equal("luapay: config file " .. config_file .. ": syntax error on line 3"
            .. " (its text is not shown: it holds credentials)\n", err)
        -- A password without quotes runs as arithmetic on globals named by it.
        write(config_file, 'return { trustpay = { account_id = "4107111111",\n secret = Tq7xWm-Zp94Rk } }\n')
        _, err, code = probe("sign trustpay", '{"kind":"refund","fields":{}}')
        assert.equal(3, code)
        assert.matches("^luapay: config file .*: error on line 2; it must return a table", err)
        assert.is_nil(err:find("Tq7xWm", 1, true), err)
        assert.is_nil(err:find("Zp94Rk", 1, true), err)
        assert_no_secret()
    end)

    it("never echoes a key setting: a bare base64 body, a file holding one, a bad path", function()
        configure(everywhere("/live/500"))
        local body = key_pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s+", "")
        local body_file = dir .. "/body.b64"
        write(body_file, key_pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-\n?", ""))
        for _, setting in ipairs({ body, body_file, "/no/such/dir/" .. body:sub(1, 40) }) do
            local env = "LUAPAY_TRUSTLY_PRIVATE_KEY=" .. q(setting)
            local _, err, code = probe("sign trustly", '{"method":"Balance","data":{"Username":"shop"}}', env)
            assert.equal(3, code, err)
            _, err, code = probe("call trustly Balance", nil, env)
            assert.equal(3, code, err)
            assert.is_nil(err:find(body:sub(1, 40), 1, true), err)
        end
        assert_no_secret()
    end)

    it("prints the sandbox's test credentials, never the configured ones", function()
        configure(everywhere("/live/500"))
        finally(function() luapay("sandbox stop", nil, "LUAPAY_CONFIG=/nonexistent") end)
        local out, err, code = probe("sandbox start")
        assert.equal(0, code, err)
        assert.is_table(core.json_decode(out).providers.trustly)
        probe("sandbox status")
        probe("call trustly Balance --sandbox")
        probe("export begateway --from 2024-06-03 --to 2024-06-03 --sandbox")
        probe("sandbox stop")
        probe("repl", 'gate\nrequire("luapay.cli").load_config()\n')
        assert_no_secret()
    end)
end)

describe("luapay: the environment setting, for every provider", function()
    -- A command that builds the provider's client, with its credentials.
    local CASES = {
        { "ecommpay", "call ecommpay status", '"p1"', "LUAPAY_ECOMMPAY_PROJECT_ID=1 LUAPAY_ECOMMPAY_SECRET=s3cret-x" },
        { "trustly", "call trustly Balance", "{}", "LUAPAY_TRUSTLY_USERNAME=u LUAPAY_TRUSTLY_PASSWORD=s3cret-x"
            .. " LUAPAY_TRUSTLY_PRIVATE_KEY=spec/fixtures/keys/merchant_private.pem" },
        { "trustpay", "call trustpay accounts", "", "LUAPAY_TRUSTPAY_ACCOUNT_ID=1 LUAPAY_TRUSTPAY_SECRET=s3cret-x" },
        { "begateway", "export begateway --from 2024-06-03 --to 2024-06-03", "", "LUAPAY_BEGATEWAY_PSP_ID=1"
            .. " LUAPAY_BEGATEWAY_SECRET=s3cret-x LUAPAY_BEGATEWAY_DWH_URL=https://dwh.example" },
        { "trustly_na", "export trustly-na --from 2024-06-03 --to 2024-06-03", "",
            "LUAPAY_TRUSTLY_NA_ACCESS_ID=a LUAPAY_TRUSTLY_NA_ACCESS_KEY=s3cret-x" },
    }
    for _, c in ipairs(CASES) do
        local name, args, input, env = c[1], c[2], c[3], c[4]
        it("is passed to " .. name .. ".new, which refuses a value other than test or live", function()
            local var = "LUAPAY_" .. name:upper() .. "_ENVIRONMENT=staging"
            local out, err, code = luapay(args, input, "LUAPAY_CONFIG=/nonexistent " .. env .. " " .. var)
            assert.equal(3, code, err)
            assert.equal("", out)
            assert.matches(name .. ".new: option 'environment' must be \"test\" or \"live\"", err, 1, true)
            assert.not_matches("s3cret-x", err, 1, true)
        end)
    end
end)
