"""The notify API's domain (accept, start, report, bulk); the HTTP mapping lives in functions/notify_api."""
