-- The Trustly messages the benches sign and verify (bench/trustly_bench.lua,
-- bench/icount.lua): a Deposit as Trustly's documentation shows it, and a
-- credit notification.
return {
    uuid = "258a2184-2842-4b85-85ca-293525152425",
    deposit = {
        Username = "merchant_username", Password = "merchant_password",
        NotificationURL = "https://example.com/trustly/notify/a2b63j23dj23883jhfhfh",
        EndUserID = "12345", MessageID = "deposit-0001",
        Attributes = {
            Country = "SE", Locale = "sv_SE", Currency = "SEK", Amount = "103.00", IP = "123.123.123.123",
            MobilePhone = "+46709876543", Firstname = "John", Lastname = "Doe", Email = "test@example.com",
            NationalIdentificationNumber = "790131-1234", ShopperStatement = "MyBrand.com",
            SuccessURL = "https://example.com/success", FailURL = "https://example.com/fail",
        },
    },
    credit = {
        amount = "49.90", currency = "SEK", messageid = "deposit-0001", orderid = "1234567890", enduserid = "12345",
        notificationid = "9876543210", timestamp = "2024-05-01 12:34:56.789012+02", attributes = {},
    },
    notification_uuid = "5f0c6a51-8d2e-4c7b-9a3e-1b2c3d4e5f60",
}
