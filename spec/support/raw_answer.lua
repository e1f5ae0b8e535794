--- A sandbox route (mounted at /raw/ by spec/64-fuzz_findings_spec.lua) that
-- answers with exactly the bytes of its `b64` argument, then closes: for the
-- malformed answers fuzzing found, replayed against the libcurl client.
local H = {}

function H.handle()
    local sock = assert(ngx.req.socket(true))
    local length = tonumber(ngx.var.http_content_length or 0)
    if length > 0 then assert(sock:receive(length)) end
    sock:send(ngx.decode_base64(ngx.unescape_uri(ngx.var.arg_b64)))
end

return H
