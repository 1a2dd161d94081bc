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
