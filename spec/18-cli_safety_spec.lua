-- The luapay command is safe to script against live accounts: a mistyped
-- option is a usage error before anything is sent, an export that fails
-- says so with the cursor to resume from (and never leaves a CSV that
-- looks complete), and no configured secret reaches stdout or stderr.
local core = require "luapay.core"
local sandbox = require "luapay.sandbox"
local providers = require "luapay.sandbox.providers"
local util = require "support.util"

local run = require("support.cli").run

local STATE = "/tmp/luapay-cli-safety-spec.json"

local function luapay(args, input, env)
    return run(args, input, env, STATE)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
end

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

    it("refuses an option given twice", function()
        refused("export begateway --from 2024-06-01 --from 2024-06-02 --to 2024-06-03 --sandbox", "option %-%-from is given twice")
        refused("call trustly Balance --sandbox --sandbox", "option %-%-sandbox is given twice")
    end)

    it("takes --name=value and --name value alike, and -- before positionals that start with '-'", function()
        local out, err, code = luapay("sign ecommpay --explain -- -",
            '{"general":{"project_id":1625,"payment_id":"p-1"}}', "LUAPAY_CONFIG=/nonexistent LUAPAY_ECOMMPAY_PROJECT_ID=1625 LUAPAY_ECOMMPAY_SECRET=s3cret-value")
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

        it(provider .. ": with --csv the file appears only when complete; a failure leaves FILE.partial", function()
            local csv = os.tmpname()
            os.remove(csv)
            fail_page(FAKES[provider], 1)
            local out, err, code = luapay(export .. " --csv " .. csv, nil, SANDBOX_ENV)
            assert.equal(1, code, err)
            assert.equal("", out)
            assert.is_false(exists(csv), "a CSV file that looks complete")
            assert.truthy(err:find(csv .. ".partial", 1, true), err)
            resume_arg(err)

            fail_page(FAKES[provider], 2)
            out, err, code = luapay(export .. " --csv " .. csv, nil, SANDBOX_ENV)
            assert.equal(1, code, err)
            assert.is_false(exists(csv), "a CSV file that looks complete")
            local partial = util.read(csv .. ".partial")
            local rows = select(2, partial:gsub("\r\n", "")) - 1
            assert.is_true(rows > 0)
            assert.matches(("%d transactions"):format(rows), err)
            resume_arg(err)

            get_json(("%s/%s/_control/reset"):format(base, FAKES[provider]))
            out, err, code = luapay(export .. " --csv " .. csv, nil, SANDBOX_ENV)
            assert.equal(0, code, err)
            assert.is_false(exists(csv .. ".partial"))
            local text = util.read(csv)
            assert.equal(core.json_decode(out).written + 1, select(2, text:gsub("\r\n", "")))
            assert.equal(partial, text:sub(1, #partial))
            os.remove(csv)
        end)
    end

    it("refuses a cursor that is not JSON", function()
        local _, err, code = luapay("export begateway --from 2024-06-01 --to 2024-06-01 --sandbox --resume nope", nil, SANDBOX_ENV)
        assert.equal(2, code)
        assert.matches("^luapay: %-%-resume", err)
    end)
end)
