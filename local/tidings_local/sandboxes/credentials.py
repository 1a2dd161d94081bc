"""The documented, local-only credentials the provider sandboxes accept.

They are not secrets: they only open the sandboxes on 127.0.0.1, and the local stack stores them in
(moto's) Secrets Manager exactly where the deployed system keeps the real ones.
"""

STRIPE_API_KEY = "sk_test_tidings_local"
STRIPE_WEBHOOK_SECRET = "whsec_tidings_local"

SENDGRID_API_KEY = "SG.tidings-local.sandbox-key"

TWILIO_ACCOUNT_SID = "AC00000000000000000000000000000000"
TWILIO_API_KEY_SID = "SK00000000000000000000000000000000"
TWILIO_API_KEY_SECRET = "tidings-local-twilio-secret"
TWILIO_AUTH_TOKEN = "tidings-local-auth-token"
TWILIO_FROM_NUMBER = "+15005550006"

# SendGrid signs its Event Webhook with ECDSA P-256 / SHA-256. This fixed, published key pair lets the
# local SendGrid sandbox sign exactly as SendGrid does, and lets the receiver verify with the public key
# in the same form SendGrid's console shows it (base64 DER SubjectPublicKeyInfo).
SENDGRID_WEBHOOK_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3ig2JvJOGQIO0zxI
toeW1hWbfGqfTtcMC88/AcYpFPehRANCAASozzbx0YzkmnT9Mg8gmFbGyt7XMqX1
EBXhQF432IuOkm2kCf4EsZPLqdfA+r0xevNA4/DOJmWUpIR/hYNMGwTN
-----END PRIVATE KEY-----
"""
SENDGRID_WEBHOOK_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqM828dGM5Jp0/TIPIJhWxsre1zKl9RAV4UBeN9iLjpJtpAn+BLGTy6nXwPq9"
    "MXrzQOPwziZllKSEf4WDTBsEzQ=="
)


def provider_secret_values() -> dict[str, dict[str, str]]:
    """Each provider's secrets as Tidings stores them in Secrets Manager, holding these credentials: the
    API credentials under the provider's name, the webhook signing key under ``<provider>-signing``
    (the secrets' last name segments, ``tidings/<stage>/stripe`` and ``tidings/<stage>/stripe-signing``)."""
    return {
        "stripe": {"api_key": STRIPE_API_KEY},
        "sendgrid": {"api_key": SENDGRID_API_KEY},
        "stripe-signing": {"webhook_secret": STRIPE_WEBHOOK_SECRET},
        "sendgrid-signing": {"webhook_public_key": SENDGRID_WEBHOOK_PUBLIC_KEY},
        "twilio-signing": {"auth_token": TWILIO_AUTH_TOKEN},
        "twilio": {
            "account_sid": TWILIO_ACCOUNT_SID,
            "api_key_sid": TWILIO_API_KEY_SID,
            "api_key_secret": TWILIO_API_KEY_SECRET,
            "auth_token": TWILIO_AUTH_TOKEN,
            "from_number": TWILIO_FROM_NUMBER,
        },
    }
