--- A merchant's notification endpoint for the sandbox page's spec, at
-- /merchant/<anything>: answers 200 with markup, as a careless (or
-- hostile) endpoint might; the page must show it as text.
local H = {}

H.ANSWER = [[<b>thanks</b><img src="x" onerror="document.title='pwned by the answer'">]]

function H.handle()
    ngx.req.read_body()
    ngx.header["Content-Type"] = "text/html"
    ngx.print(H.ANSWER)
end

return H
