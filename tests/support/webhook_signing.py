"""Signing helpers for the webhook tests, written independently of the verifiers under test.

Each builds a signature the way the provider's documentation describes it, from primitives only, so a
bug shared between signer and verifier cannot hide.
"""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, a fixed clock


def stripe_header(body: bytes, secret: str, timestamp: int = NOW, extra: str = "") -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}{extra}"


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def form(params: dict[str, str]) -> bytes:
    return urlencode(params).encode()


class SendGridKeyPair:
    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key_b64 = base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int = NOW) -> tuple[str, str]:
        der_sig = self.private_key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der_sig).decode(), str(timestamp)
