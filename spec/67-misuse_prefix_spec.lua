-- Misuse raises with one prefix style in all five provider modules:
-- "<name>.<function>: ..." or "<name>.Client:<method>: ...", naming a
-- function that exists. Every public function of each module and every
-- method of its client is called with wrong arguments (a boolean in each
-- position after plausible ones), and every error raised is checked.
local keys = require "luapay.sandbox.test_keys"

-- A transport that never sends: a client method gets this far at most.
local function offline() return nil, { type = "network", message = "offline (spec)", sent = false } end

local CLIENT_OPTS = {
    ecommpay = { project_id = 1, secret = "s3cret" },
    trustly = { username = "u", password = "p", private_key = keys.merchant_private },
    trustpay = { account_id = "4107111111", secret = "s3cret", banking = { username = "u", password = "p" } },
    begateway = { psp_id = 1, secret = "s3cret", dwh_url = "https://dwh.example.com" },
    trustly_na = { access_id = "id", access_key = "s3cret" },
}


-- Argument lists: a boolean (never a valid argument) in position n, after
-- plausible values (strings or tables) before it.
local function arg_lists()
    local lists = { {} }
    for n = 1, 5 do
        for _, filler in ipairs({ "x", {} }) do
            local args = {}
            for i = 1, n - 1 do args[i] = filler end
            args[n] = true
            lists[#lists + 1] = args
        end
    end
    return lists
end

local unpack = table.unpack or unpack

for name, opts in pairs(CLIENT_OPTS) do
    describe("misuse messages of luapay." .. name, function()
        local mod = require("luapay." .. name)

        -- The problem with a raised message, or nil when its prefix names
        -- a function that exists.
        local function problem(message, called)
            local text = message:gsub("^[^\n]-:%d+: ", "", 1)
            local fn = text:match("^" .. name .. "%.([%w_]+): ")
            local method = text:match("^" .. name .. "%.Client:([%w_]+): ")
            if fn and type(mod[fn]) == "function" then return nil end
            if method and type(mod.Client[method]) == "function" then return nil end
            return called .. ": " .. text
        end

        -- Calls each function of t (skipping what skip says) with every
        -- argument list after the given leading ones; asserts some raised,
        -- and that every message names a function that exists.
        local function check_all(t, leading, label, skip)
            local raised, problems, seen = 0, {}, {}
            for fname, f in pairs(t) do
                if type(f) == "function" and not (skip and skip(fname)) then
                    for _, args in ipairs(arg_lists()) do
                        local call = {}
                        for i, v in ipairs(leading) do call[i] = v end
                        for i = 1, #args do call[#leading + i] = args[i] end
                        local ok, err = pcall(f, unpack(call, 1, #leading + #args))
                        if not ok then
                            raised = raised + 1
                            local p = problem(tostring(err), label .. fname)
                            if p and not seen[p] then seen[p], problems[#problems + 1] = true, p end
                        end
                    end
                end
            end
            assert.is_true(raised > 0)
            table.sort(problems)
            assert.same({}, problems)
        end

        local function not_a_method(mname) return mname:sub(1, 2) == "__" or mname == "close" end

        it("names an existing function in every error its public functions raise", function()
            check_all(mod, {}, name .. ".")
        end)

        it("names an existing method in every error its client's methods raise", function()
            local o = {}
            for k, v in pairs(opts) do o[k] = v end
            o.transport, o.retries = offline, 0
            local client = mod.new(o)
            check_all(mod.Client, { client }, name .. ".Client:", not_a_method)
            -- and once closed, every method says so under its own name
            client:close()
            for mname, f in pairs(mod.Client) do
                if type(f) == "function" and not not_a_method(mname) then
                    local ok, err = pcall(f, client)
                    assert.is_false(ok, mname)
                    assert.matches(name .. ".Client:" .. mname .. ": called after client:close()", tostring(err), 1, true)
                end
            end
        end)
    end)
end
