local core = require "luapay.core"

describe("core.random_bytes", function()
    it("gives exactly n bytes", function()
        for _, n in ipairs({ 0, 1, 16, 32, 1000, 65536 }) do
            assert.equal(n, #core.random_bytes(n))
        end
    end)

    it("does not repeat itself", function()
        local seen = {}
        for _ = 1, 1000 do
            local r = core.random_bytes(16)
            assert.is_nil(seen[r])
            seen[r] = true
        end
    end)

    it("uses every byte value over a large sample", function()
        local counts = {}
        local s = core.random_bytes(65536)
        for i = 1, #s do counts[s:byte(i)] = true end
        for b = 0, 255 do assert.is_true(counts[b], "byte " .. b .. " never seen") end
    end)
end)

describe("core.uuid4", function()
    it("is an RFC 4122 version 4 UUID in lowercase", function()
        for _ = 1, 200 do
            local u = core.uuid4()
            assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u)
            assert.equal(u:lower(), u)
        end
    end)

    it("is unique over many draws", function()
        local seen = {}
        for _ = 1, 10000 do
            local u = core.uuid4()
            assert.is_nil(seen[u])
            seen[u] = true
        end
    end)
end)
