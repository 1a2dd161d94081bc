"""A local OpenID issuer: an RSA key, its JWKS, and RS256 access tokens for the local HTTP API.

It serves what an HTTP API JWT authorizer reads from a real issuer (Cognito, Auth0, ...):
``/.well-known/openid-configuration`` and ``/.well-known/jwks.json``; plus ``POST /token``
(form or JSON fields ``sub``, ``scope``, ``aud``, ``expires_in``) that hands out tokens, in place of a
login. The key lives in memory, or in a PEM file (``.local-state/``) so tokens outlive a restart.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_PORT = 3001
DEFAULT_AUDIENCE = "tidings-api"
DEFAULT_SCOPE = "notifications/write notifications/read"


def _load_or_create_key(path: Path | None) -> rsa.RSAPrivateKey:
    if path is not None and path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return key


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class JwtIssuer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        audience: str = DEFAULT_AUDIENCE,
        key_path: str | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.audience = audience
        self._key = _load_or_create_key(Path(key_path) if key_path else None)
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.kid = public_jwk.get("kid") or _thumbprint(public_jwk)
        self.jwks = {"keys": [{**public_jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The issuer URL: the ``iss`` claim and where its discovery documents live."""
        return f"http://{self.host}:{self.port}"

    def token(
        self,
        sub: str = "local-user",
        scope: str | None = DEFAULT_SCOPE,
        audience: str | list[str] | None = None,
        expires_in: int = 3600,
        issuer: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """An RS256 token; ``claims`` add or replace claims, and a claim given as None is left out (a token
        without ``aud``, say); ``headers`` add or replace JOSE header fields (another ``kid``)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": sub,
            "aud": audience or self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
            **claims,
        }
        if scope:
            payload["scope"] = scope
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks.json",
            "token_endpoint": f"{self.url}/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "grant_types_supported": ["client_credentials"],
        }

    def start(self) -> JwtIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._json(200, issuer.openid_configuration())
                elif self.path == "/.well-known/jwks.json":
                    self._json(200, issuer.jwks)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                if self.path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    fields = json.loads(raw or "{}")
                else:
                    fields = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                try:
                    expires_in = int(fields.get("expires_in", 3600))
                except ValueError:
                    self._json(400, {"error": "invalid_request", "error_description": "expires_in"})
                    return
                token = issuer.token(
                    sub=fields.get("sub", "local-user"),
                    scope=fields.get("scope", DEFAULT_SCOPE),
                    audience=fields.get("aud") or fields.get("audience"),
                    expires_in=expires_in,
                )
                body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
                self._json(200, body)

        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="jwt-issuer", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _thumbprint(jwk: dict[str, Any]) -> str:
    # RFC 7638 thumbprint of the RSA public key: a stable kid for the same key.
    import base64
    import hashlib

    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
