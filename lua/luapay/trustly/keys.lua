--- Trustly's published RSA-2048 public keys (SubjectPublicKeyInfo PEM), used
-- to verify Trustly's answers and notifications. They are the keys Trustly
-- ships with its official clients (trustly-client-python
-- trustly/api/keys/{test.trustly.com,api.trustly.com}.public.pem, the same
-- in the PHP, Java, JS and .NET clients) and prints on its authentication
-- page. SHA-256 of the DER SubjectPublicKeyInfo (spec/30-trustly_keys_spec.lua
-- checks them):
--   test  3c45411e0532933c3c97215b375d238c08b6a06d40793999444f6459c917a935
--   live  7e09f288f4ed5b6e31c4665efe9b364347083ad8d03427d2d1cfb963ce7551c5
local keys = {}

keys.fingerprints = {
    test = "3c45411e0532933c3c97215b375d238c08b6a06d40793999444f6459c917a935",
    live = "7e09f288f4ed5b6e31c4665efe9b364347083ad8d03427d2d1cfb963ce7551c5",
}

keys.test = [[
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy7h/yX8DEA2m588SrWye
AC8rTMbErwHt2hoTiP9fte/iOo0FXIZSmNsNu422L+iJyvZQu19ebeL7XgB0UXqt
zA6KtXBMXIKwuMCZhbdeR8sb7OKbX2nlWM+e2Hmrr9CTfkZkFBeSC+iN9fAU6PoR
X0i5PWm0uZnaoWXcZnk5CxQCgnfYgsx7xsd8Au+mrqE8SHeT8zi/Inw0Xp6ba25G
YsZhHfIPD2rcZQOpWbmHRS4Jk4aGzSOBHbAZhKlP97PxoVfUcPI3iCA1+3jMs1l2
PYsHUbP60NMVwkGPjFOTv4m1a1wKsue0mhspDdvswZUeKE+POGOuewqTQJ+gIhXw
mQIDAQAB
-----END PUBLIC KEY-----
]]

keys.live = [[
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoZhnqiELeoX3QNSg7jpU
kbLV4BU32LoSMuABAaPdxhpZaccFYud2z4QUlMq/j46vdVDpaCFaCZ+qNT5+tHbQ
BFgcrx82u7r+aMHvKy4FEczT5aev0NxRlQKHmNQygvp3hNkqeOw4nJy3PoD4cgCp
SlLTiPOBy2ZsWUHQpSVJdDUiLwAQfNV90jMqa3zq1nTfmTBmd6NR1XAjg5eS6SWr
to1nVS1b7XKGv7Cc1kt0RVd54tWqoCMDHwEiU0st66BCKdYk3r5woDZxGZUUjVdm
g9O2xpqRRDcdJGm8HIOVHGSNT9R7LMucH/PGwrfpdWmBDjy0BkuDlssuBgh731l2
cwIDAQAB
-----END PUBLIC KEY-----
]]

return keys
