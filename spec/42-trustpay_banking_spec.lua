-- TrustPay API Banking against the sandbox: the OAuth token (fetched on
-- first use, cached, refreshed when it expires or is refused), accounts,
-- the transaction history over several pages, statements, pain.001 orders
-- with hostile text, and refunds.
local core = require "luapay.core"
local http = require "luapay.http"
local env = require "support.trustpay_env"

local function paths(err)
    local out = {}
    for _, f in ipairs(err.fields or {}) do out[#out + 1] = f.path .. ":" .. f.code end
    return out
end

local MARCH = { AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-31" }
local function filter(extra)
    local f = {}
    for k, v in pairs(MARCH) do f[k] = v end
    for k, v in pairs(extra or {}) do f[k] = v end
    return f
end

local function collect(iter)
    local list = {}
    for tx, err in iter do
        if not tx then error(tostring(err)) end
        list[#list + 1] = tx
    end
    return list
end

local function tomorrow() return os.date("!%Y-%m-%d", os.time() + 86400) end

local function order(extra)
    local o = {
        Amount = 12345, Currency = "EUR", MessageId = "MSG-" .. core.hex_encode(core.random_bytes(6)),
        DebtorAccount = "4107111111", DebtorName = "Shop s.r.o.", CityCode = "Bratislava",
        CreditorName = "Creditor", CreditorAccount = "SK3399520000002107425307", CreditorBankBic = "TPAYSKBX",
        CreditorBankName = "TrustPay", CreditorBankAddress = "Za kasarnou 1", CreditorBankCity = "Bratislava",
        CreditorBankCountry = "SK", RequestedExecutionDate = tomorrow(),
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
end

describe("TrustPay API Banking in the sandbox", function()
    local world, tp

    setup(function()
        world = env.start{ trustpay = { transactions = 25 } }
        tp = world:client()
    end)

    teardown(function()
        world:stop()
    end)

    describe("the OAuth token", function()
        it("is fetched on first use and reused for the next calls", function()
            local client = world:client()
            local before = world:stats().tokens_issued
            assert.is_table(assert(client:accounts()))
            assert.is_table(assert(client:account(4107111111)))
            assert.is_table(assert(client:accounts()))
            assert.equal(before + 1, world:stats().tokens_issued)
        end)

        it("is replaced shortly before expires_in", function()
            local now = 0
            local client = world:client{ clock = function() return now end }
            local before = world:stats().tokens_issued
            assert(client:accounts())
            now = 1700
            assert(client:accounts())
            assert.equal(before + 1, world:stats().tokens_issued)
            now = 1790 -- expires_in is 1799
            assert(client:accounts())
            assert.equal(before + 2, world:stats().tokens_issued)
        end)

        it("is refreshed once when TrustPay refuses it (401), and the call goes through", function()
            local client = world:client()
            assert(client:accounts())
            local before = world:stats()
            world:post("/trustpay/_sandbox/expire_tokens")
            local list = assert(client:accounts())
            assert.equal(2, #list)
            local after = world:stats()
            assert.equal(before.tokens_issued + 1, after.tokens_issued)
            assert.equal(before.banking_calls + 2, after.banking_calls) -- the refused call and the retry
        end)

        it("expires in the sandbox as it says, and the client follows", function()
            local short = env.start{ trustpay = { token_ttl = 1 } }
            local now = 0
            local client = short:client{ clock = function() return now end }
            assert(client:accounts())
            core.sleep(1.1) -- the fake's token is gone; the client's clock says it is still fresh
            assert(client:accounts()) -- refused, refreshed, retried
            now = 1 -- past expires_in - margin: a new token without being refused first
            assert(client:accounts())
            local stats = short:stats()
            short:stop() -- stops cleanly, nothing logged
            assert.equal(3, stats.tokens_issued)
            assert.equal(4, stats.banking_calls)
        end)

        it("fails with the HTTP status on wrong credentials, without showing the password", function()
            local client = world:client{ banking = { username = "sandbox", password = "wrong-password-42",
                base_url = world.sb.url .. "/trustpay" } }
            local res, err = client:accounts()
            assert.is_nil(res)
            assert.equal("http", err.type)
            assert.equal(401, err.http_status)
            assert.is_nil(tostring(err):find("wrong-password-42", 1, true))
            assert.is_nil((err.raw or ""):find("wrong-password-42", 1, true))
        end)
    end)

    -- The fake carries out the next token request (call = "token") or API
    -- Banking call, then answers 200 with body instead.
    local function answer_next(body, call)
        local path = "/trustpay/_sandbox/answer_next?body=" .. http.escape(body) .. (call and "&call=" .. call or "")
        assert.equal(200, world:post(path).status)
    end

    describe("a token that could not go into a header", function()
        local BAD = {
            ["CR LF and a header"] = '"abc\\r\\nX-Injected: 1"', ["LF"] = '"abc\\ndef"', ["NUL"] = '"abc\\u0000def"',
            ["a space"] = '"abc def"', ["a quote"] = '"abc\\"def"', ["non-ASCII"] = '"abcd\\u00e9f"', ["empty"] = '""',
            ["too long"] = '"' .. ("a"):rep(4097) .. '"', ["a number"] = "12345", ["an object"] = '{"a":"b"}',
        }
        for what, token in pairs(BAD) do
            it("(" .. what .. ") is a provider error, and nothing is sent with it", function()
                local client = world:client()
                local before = world:stats().banking_calls
                answer_next('{"access_token":' .. token .. ',"token_type":"Bearer","expires_in":1799}', "token")
                local ok, list, err = pcall(client.accounts, client)
                assert.is_true(ok, "raised: " .. tostring(list))
                assert.is_nil(list)
                assert.equal("provider", err.type)
                assert.matches("TrustPay OAuth: the answer's access_token is not a Bearer token", err.message, 1, true)
                assert.equal(before, world:stats().banking_calls)
            end)
        end

        it("with an expires_in that is no number of seconds is a provider error", function()
            local client = world:client()
            for _, v in ipairs({ "-1", "1e999", '"soon"' }) do
                answer_next('{"access_token":"abc","token_type":"Bearer","expires_in":' .. v .. '}', "token")
                local list, err = client:accounts()
                assert.is_nil(list, v)
                assert.equal("provider", err.type)
                assert.matches("expires_in is not a number of seconds", err.message, 1, true)
            end
        end)

        it("of every RFC 6750 b64token character is taken", function()
            local client = world:client()
            answer_next('{"access_token":"aZ09-._~+/==","token_type":"Bearer","expires_in":1799}', "token")
            assert.equal("aZ09-._~+/==", assert(client:access_token()))
        end)
    end)

    describe("an answer without what TrustPay documents for a read", function()
        -- each read, the answer TrustPay documents for it, and what is missing
        local READS = {
            { "accounts", function(c) return c:accounts() end, "no AccountList list" },
            { "accounts, not a list of objects", function(c) return c:accounts() end,
                "AccountList is not a list of objects", '{"AccountList":[1,2]}' },
            { "account", function(c) return c:account(4107111111) end, "no AccountDetails object" },
            { "transactions", function(c) return c:transactions(filter())() end, "no Transactions list" },
            { "transactions, null", function(c) return c:transactions(filter())() end, "no Transactions list",
                '{"Transactions":null,"TotalCount":25}' },
            { "transaction", function(c) return c:transaction{ TransactionId = 652801 } end,
                "no TransactionDetails object" },
            { "order", function(c) return c:order(123456789) end, "no OrderDetail object" },
            { "statement", function(c) return c:statement(filter{ FileFormat = "Csv" }) end, "no StatementBytes" },
        }
        for _, r in ipairs(READS) do
            it("(" .. r[1] .. ") is a provider error naming what is missing", function()
                local client = world:client()
                assert(client:access_token())
                answer_next(r[4] or '{"ResultCode":"0"}')
                local res, err = r[2](client)
                assert.is_falsy(res)
                assert.equal("provider", err.type)
                assert.matches(r[3], err.message, 1, true)
                assert.equal(200, err.http_status)
                assert.is_not_true(err.retryable)
                assert.not_matches("outcome is unknown", err.message, 1, true) -- a read moves no money
            end)
        end
    end)

    describe("accounts", function()
        it("lists the accounts and gives one account's details", function()
            local list = assert(tp:accounts())
            assert.equal(2, #list)
            local ids = {}
            for _, a in ipairs(list) do ids[#ids + 1] = tostring(a.AccountId) end
            table.sort(ids)
            assert.same({ "4107111111", "4107222222" }, ids)
            local a = assert(tp:account("4107111111"))
            assert.equal("EUR", a.CurrencyCode)
            assert.equal("Merchant", a.AccountType)
        end)

        it("refuses an id that is not Numeric(10) before sending", function()
            local before = world:stats().banking_calls
            local _, err = tp:account("41071111112")
            assert.same({ "AccountId:max_len", "AccountId:pattern" }, paths(err))
            _, err = tp:account("SK123")
            assert.same({ "AccountId:pattern" }, paths(err))
            assert.equal(before, world:stats().banking_calls)
        end)
    end)

    describe("the transaction history", function()
        it("walks every page, in order, each transaction once", function()
            local before = world:stats().banking_calls
            local list = collect(tp:transactions(filter{ PageSize = 10 }))
            assert.equal(25, #list)
            assert.equal(before + 3, world:stats().banking_calls) -- 10 + 10 + 5
            local seen = {}
            for i, tx in ipairs(list) do
                assert.is_nil(seen[tx.TransactionId])
                seen[tx.TransactionId] = true
                if i > 1 then assert.is_true(tx.TransactionId > list[i - 1].TransactionId) end
                assert.equal(tonumber((("%.2f"):format(tx.Amount):gsub("%.", ""))), tx.amount)
                assert.equal(0, tx.refunded_amount)
            end
            -- the same transactions whatever the page size
            local again = collect(tp:transactions(filter{ PageSize = 7 }))
            assert.equal(#list, #again)
            for i = 1, #list do assert.equal(list[i].TransactionId, again[i].TransactionId) end
            assert.equal(25, #collect(tp:transactions(filter{ PageSize = 5 })))
            assert.equal(25, #collect(tp:transactions(filter())))
        end)

        it("narrows by the filter", function()
            local credits = collect(tp:transactions(filter{ Direction = "Credit", PageSize = 4 }))
            assert.is_true(#credits > 4)
            for _, tx in ipairs(credits) do assert.is_true(tx.amount > 0) end
            local debits = collect(tp:transactions(filter{ Direction = "Debit" }))
            assert.equal(25, #credits + #debits)
            for _, tx in ipairs(debits) do assert.is_true(tx.amount < 0) end
            local week = collect(tp:transactions(filter{ DateFrom = "2024-03-05", DateTo = "2024-03-11", PageSize = 3 }))
            assert.equal(7, #week)
            for _, tx in ipairs(week) do assert.is_true(tx.Date >= "2024-03-05" and tx.Date <= "2024-03-11") end
            local big = collect(tp:transactions(filter{ AmountFrom = 10000 }))
            for _, tx in ipairs(big) do assert.is_true(tx.amount >= 10000) end
            assert.is_true(#big > 0)
            local one = collect(tp:transactions(filter{ PaymentId = credits[2].PaymentId }))
            assert.equal(1, #one)
            assert.equal(credits[2].TransactionId, one[1].TransactionId)
            assert.equal(0, #collect(tp:transactions(filter{ DateFrom = "2023-01-01", DateTo = "2023-01-31" })))
        end)

        it("yields an invalid filter once as false, err and sends nothing", function()
            local before = world:stats().banking_calls
            local seen = {}
            for tx, err in tp:transactions{ AccountId = 4107111111, DateFrom = "2024-03-31", DateTo = "2024-03-01",
                Direction = "Sideways", PageSize = 1000 } do
                seen[#seen + 1] = { tx, err }
            end
            assert.equal(1, #seen)
            assert.is_false(seen[1][1])
            assert.equal("validation", seen[1][2].type)
            assert.same({ "DateTo:range", "Direction:enum", "PageSize:range" }, paths(seen[1][2]))
            assert.equal(before, world:stats().banking_calls)
        end)

        -- The fake lets `after` API Banking calls through, then fails the next one.
        local function fail_after(after, status)
            assert.equal(200, world:get("/trustpay/_control/fail?after=" .. after .. "&status=" .. status .. "&times=1").status)
        end

        local function ids(list)
            local out = {}
            for i, tx in ipairs(list) do out[i] = tx.TransactionId end
            return out
        end

        for _, case in ipairs({ { "500", "http" }, { "garbage", "provider" } }) do
            it("ends at a failed page (" .. case[1] .. ") with err.resume, and resume gives exactly the rest", function()
                local all = collect(tp:transactions(filter{ PageSize = 10 }))
                assert.equal(25, #all)
                fail_after(1, case[1]) -- the token is cached: page 0 goes through, page 1 fails
                local got, failure, after = {}, nil, 0
                for tx, err in tp:transactions(filter{ PageSize = 10 }) do
                    if not tx then failure = err else got[#got + 1] = tx end
                end
                assert.equal(10, #got)
                assert.equal(case[2], failure.type)
                assert.same({ Page = 1 }, failure.resume)
                assert.equal(1, failure.page) -- deprecated alias until 0.3
                for tx, err in tp:transactions(filter{ PageSize = 10, resume = failure.resume }) do
                    assert(tx, err)
                    got[#got + 1] = tx
                    after = after + 1
                end
                assert.equal(15, after)
                assert.same(ids(all), ids(got)) -- in order, nothing lost, nothing twice
            end)
        end

        it("called directly, returns nil, err at the failed page and then nil", function()
            fail_after(0, "500")
            local it = tp:transactions(filter{ PageSize = 10 })
            local tx, err = it()
            assert.is_nil(tx)
            assert.equal(500, err.http_status)
            assert.same({ Page = 0 }, err.resume)
            assert.is_nil(it())
            assert.equal(25, #collect(tp:transactions(filter{ PageSize = 10, resume = err.resume })))
        end)

        it("refuses a resume that is not {Page = n} before sending", function()
            local before = world:stats().banking_calls
            local it = tp:transactions(filter{ resume = { Page = -1, page = 2 } })
            local tx, err = it()
            assert.is_nil(tx)
            assert.equal("validation", err.type)
            assert.same({ "resume.Page:range", "resume.page:unknown" }, paths(err))
            assert.equal(before, world:stats().banking_calls)
        end)

        it("yields a failure in the middle as false, err with the page to resume from (err.page, deprecated)", function()
            local client = world:client()
            local n, failure = 0, nil
            for tx, err in client:transactions(filter{ PageSize = 10 }) do
                if not tx then
                    failure = err
                else
                    n = n + 1
                    if n == 10 then client.banking.password = "changed" ; client.token = nil end
                end
            end
            assert.equal(10, n)
            assert.equal(401, failure.http_status)
            assert.equal(1, failure.page)
            local rest = collect(world:client():transactions(filter{ PageSize = 10, Page = failure.page }))
            assert.equal(15, #rest)
        end)
    end)

    describe("one transaction", function()
        it("is found by exactly one of TransactionId, PaymentId, OrderId", function()
            local first = collect(tp:transactions(filter{ PageSize = 2 }))[2]
            for _, key in ipairs({ "TransactionId", "PaymentId", "OrderId" }) do
                local tx = assert(tp:transaction{ [key] = first[key] })
                assert.equal(first.TransactionId, tx.TransactionId)
                assert.equal(first.amount, tx.amount)
            end
        end)

        it("refuses none or two ids before sending", function()
            local before = world:stats().banking_calls
            local _, err = tp:transaction{}
            assert.equal("validation", err.type)
            assert.same({ ":required" }, paths(err))
            _, err = tp:transaction{ TransactionId = 1, PaymentId = 2 }
            assert.same({ ":required" }, paths(err))
            assert.matches("exactly one of TransactionId, PaymentId, OrderId", tostring(err))
            assert.equal(before, world:stats().banking_calls)
        end)
    end)

    describe("statements", function()
        it("come back as the decoded bytes", function()
            local csv = assert(tp:statement{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-10", FileFormat = "Csv" })
            local lines = {}
            for line in csv:gmatch("[^\r\n]+") do lines[#lines + 1] = line end
            assert.equal("TransactionId;Date;Amount;Currency;CounterAccount;CounterAccountName", lines[1])
            local txs = collect(tp:transactions{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-10" })
            assert.equal(#txs + 1, #lines)
            assert.equal(tostring(txs[1].TransactionId), lines[2]:match("^(%d+);"))
            assert.truthy(csv:find("Ján Nováček", 1, true))
            local camt = assert(tp:statement{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-10",
                FileFormat = "Camt53V4" })
            assert.truthy(camt:find("camt.053.001.04", 1, true))
            local _, err = tp:statement{ AccountId = 4107111111, DateFrom = "2024-03-01", DateTo = "2024-03-10", FileFormat = "Pdf" }
            assert.same({ "FileFormat:enum" }, paths(err))
        end)
    end)

    describe("orders", function()
        it("sends a pain.001.001.03 order whose hostile text arrives intact", function()
            local hostile = {
                CreditorName = [[<Müller & "Söhne" 'Ltd'>]],
                Description = "Záloha </Ustrd><Ustrd>injected</Ustrd> & ☃ Привет 東京",
                ClientReference = "A&B<C>'\"",
                CreditorBankName = "Banka & <Co>",
            }
            local id = assert(tp:create_order(order(hostile)))
            assert.matches("^%d+$", id)
            local parsed = world:json("/trustpay/_sandbox/order?id=" .. id).parsed
            assert.equal(hostile.CreditorName, parsed.CreditorName)
            assert.equal(hostile.Description, parsed.Description)
            assert.equal(hostile.CreditorBankName, parsed.CreditorBankName)
            assert.equal("CREF:" .. hostile.ClientReference, parsed.Structured[1])
            assert.equal("123.45", parsed.Amount)
            assert.equal("EUR", parsed.Currency)
            local detail = assert(tp:order(id))
            assert.equal("Waiting", detail.State)
            assert.equal(12345, detail.amount)
            assert.equal("SK3399520000002107425307", detail.DestinationAccount)
            assert.truthy(detail.Xml:find("&lt;Müller &amp; &quot;Söhne&quot; &apos;Ltd&apos;&gt;", 1, true))
        end)

        it("sends several orders in one message and gets an id for each", function()
            local first = order()
            first.CityCode = nil
            local list = { first }
            for i = 2, 3 do
                local o = order{ MessageId = first.MessageId, Amount = i * 100, CreditorName = "Creditor " .. i }
                o.CityCode = nil
                list[i] = o
            end
            local ids = assert(tp:create_orders(list))
            assert.equal(3, #ids)
            for i, id in ipairs(ids) do
                local parsed = world:json("/trustpay/_sandbox/order?id=" .. id).parsed
                assert.equal(list[i].CreditorName, parsed.CreditorName)
            end
        end)

        it("sends an order outside SEPA with the creditor's address and the clearing code", function()
            local id = assert(tp:create_order(order{ Currency = "USD", CreditorAccount = "000123456789", CreditorBankCountry = "US",
                CreditorBankBic = "CHASUS33", AbaCode = "021000021", CreditorAddress = "1 Main St", CreditorCity = "New York",
                CreditorCountry = "US", SymbolVariable = "1234567890" }))
            local detail = assert(tp:order(id))
            assert.truthy(detail.Xml:find("<Cd>USABA</Cd></ClrSysId><MmbId>021000021</MmbId>", 1, true))
            assert.truthy(detail.Xml:find("<Othr><Id>000123456789</Id></Othr>", 1, true))
            assert.equal("USD", detail.Currency)
        end)

        it("refuses an invalid order before sending, listing every field", function()
            local before = world:stats().banking_calls
            local o = order{ CreditorBankCountry = "CA", Currency = "CAD", CreditorAccount = "12345", Amount = 0,
                RequestedExecutionDate = "2020-02-30", MessageId = ("m"):rep(36) }
            o.DebtorName = nil
            local id, err = tp:create_order(o)
            assert.is_nil(id)
            assert.same({ "Amount:range", "CreditorAddress:required", "CreditorCity:required", "CreditorCountry:required",
                "DebtorName:required", "MessageId:max_len", "RequestedExecutionDate:format", "TransitCode:required" }, paths(err))
            assert.equal(before, world:stats().banking_calls)
        end)

        it("gets TrustPay's refusal of a reused MessageId as an HTTP error", function()
            local o = order()
            assert(tp:create_order(o))
            local id, err = tp:create_order(o)
            assert.is_nil(id)
            assert.equal("http", err.type)
            assert.equal(400, err.http_status)
            assert.matches("MessageId", err.raw)
        end)
    end)

    describe("refunds", function()
        local function credit(account) -- the account's first credit of March
            local next_credit = tp:transactions{ AccountId = account, DateFrom = "2024-03-01", DateTo = "2024-03-31",
                Direction = "Credit" }
            return assert(next_credit())
        end

        it("refund a EUR payment to a named beneficiary", function()
            local tx = credit(4107111111)
            local id = assert(tp:refund_payment{ PaymentId = tx.PaymentId, Amount = 100, Currency = "EUR",
                BeneficiaryName = "Ján Nováček", Description = "refund of order 42" })
            local rec = world:json("/trustpay/_sandbox/order?id=" .. id).refund
            assert.equal("Ján Nováček", rec.BeneficiaryName)
            assert.equal(tx.PaymentId, rec.PaymentId)
            assert.equal(100, assert(tp:order(id)).amount)
        end)

        it("need no beneficiary name in CZK", function()
            local tx = credit(4107222222)
            assert.equal("CZK", tx.Currency)
            assert.matches("^%d+$", assert(tp:refund_payment{ PaymentId = tx.PaymentId, Amount = 100, Currency = "CZK" }))
        end)

        it("refuse a EUR refund without beneficiary before sending", function()
            local before = world:stats().banking_calls
            local id, err = tp:refund_payment{ PaymentId = 325801, Amount = 100.5, Currency = "EUR" }
            assert.is_nil(id)
            assert.same({ "Amount:type", "BeneficiaryName:required" }, paths(err))
            assert.equal(before, world:stats().banking_calls)
        end)
    end)
end)
