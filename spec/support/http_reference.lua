-- The cosocket transport's Lua code for a response, as it read a head and a
-- chunked body before core.http_head and core.http_chunked took those jobs:
-- the reference those C passes must agree with (spec/82, and the fuzz
-- target fuzz/targets/http_head.lua).
local reference = {}

--- reference.head(head) -> status, headers, http10 | nil.
function reference.head(head)
    local status_line = head:match("^[^\r\n]*")
    local code, rest = status_line:match("^HTTP/%d%.%d (%d%d%d)(.*)$")
    local status = code and (rest == "" or rest:sub(1, 1) == " ") and tonumber(code)
    if not status then return nil end
    local headers = {}
    for line in head:gmatch("\r\n([^\r\n]*)") do
        local name, value = line:match("^([%w!#$%%&'*+%-.^_`|~]+):[ \t]*(.-)[ \t]*$")
        if name then
            name = name:lower()
            local old = headers[name]
            if old == nil then
                headers[name] = value
            elseif type(old) == "table" then
                old[#old + 1] = value
            else
                headers[name] = { old, value }
            end
        end
    end
    return status, headers, status_line:match("^HTTP/1%.0") ~= nil
end

--- reference.chunked(buf, pos, cap, trailer_cap) -> body, next | nil: the
-- chunked reader on a body read whole (its read_line and take over one
-- buffer); nil where it reads on or fails.
function reference.chunked(buf, pos, cap, trailer_cap)
    local function line_at(p)
        local e = buf:find("\r\n", p, true)
        if e then return buf:sub(p, e - 1), e + 2 end
    end
    local parts, total = {}, 0
    local line
    while true do
        line, pos = line_at(pos)
        if not line then return nil end
        local size = tonumber(line:match("^%s*(%x+)%s*;?") or "", 16)
        if not size then return nil end
        if size == 0 then break end
        total = total + size
        if total > cap or #buf - pos + 1 < size then return nil end
        parts[#parts + 1] = buf:sub(pos, pos + size - 1)
        line, pos = line_at(pos + size)
        if line ~= "" then return nil end
    end
    repeat
        line, pos = line_at(pos)
        if not line then return nil end
        trailer_cap = trailer_cap - #line - 2
        if trailer_cap < 0 then return nil end
    until line == ""
    return table.concat(parts), pos
end

return reference
