"""Twilio's 2010-04-01 Messages API, its magic test numbers and signed status callbacks.

Basic auth with the account SID and auth token, or an API key SID and secret. Errors use Twilio's body
``{"code", "message", "more_info", "status"}``. After a message is created (201, ``queued``) the sandbox
moves it to ``sent`` and then ``delivered`` (or ``undelivered``/``failed`` for a number set with the
undeliverable control), posting a status callback signed with ``X-Twilio-Signature`` at each step.

Key management as Twilio does it for credential rotation: ``GET /Accounts/{Sid}.json`` (any valid
credential), and ``POST /Accounts/{Sid}/Keys.json`` -> ``{"sid": "SK...", "secret", ...}`` (the secret is
shown once), ``GET`` / ``DELETE /Accounts/{Sid}/Keys/{KeySid}.json``. Like Twilio, the Keys resource
takes only the account's own credentials (account SID + auth token): a standard API key is refused.
A deleted key no longer authenticates.

The account's phone numbers as an operator's set-up reads and points them: ``GET
/Accounts/{Sid}/IncomingPhoneNumbers.json`` (``PhoneNumber`` filters) and ``GET``/``POST
/Accounts/{Sid}/IncomingPhoneNumbers/{PNSid}.json`` (``SmsUrl``, ``SmsMethod``). An incoming message to a
number with an ``SmsUrl`` is posted there; without one, to the sandbox's configured URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

from tidings_local.sandboxes import credentials
from tidings_local.sandboxes.base import Provider, Request, Response, random_alnum, random_hex
from tidings_local.sandboxes.forms import decode_flat
from tidings_local.sandboxes.ratelimit import Decision
from tidings_local.sandboxes.webhooks import twilio_signature

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
#: Twilio retries a failed status callback once (more only with connection overrides).
STATUS_CALLBACK_RETRIES = 1

#: Twilio's magic test numbers: https://www.twilio.com/docs/iam/test-credentials
MAGIC_FROM = {
    "+15005550001": (
        21212,
        "The 'From' number {From} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    ),
    "+15005550007": (
        21606,
        "The From phone number {From} is not a valid, SMS-capable inbound phone number or short code "
        "for your account.",
    ),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages"),
}
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number {To} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {To}, is not currently reachable using the 'From' phone number: {From} "
        "via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {To}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
#: Advanced Opt-Out's default keywords (the whole body, any case) and the OptOutType each one adds.
OPT_OUT_KEYWORDS = (
    dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"), "STOP")
    | dict.fromkeys(("START", "YES", "UNSTOP"), "START")
    | {"HELP": "HELP", "INFO": "HELP"}
)
DELIVERY_ERRORS = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


def twilio_error(
    status: int, code: int, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response.json(status, body, headers)


def _rfc2822(epoch: float | None = None) -> str:
    return formatdate(epoch if epoch is not None else time.time(), usegmt=False).replace("-0000", "+0000")


def _segments(body: str) -> int:
    gsm = all(ord(c) < 128 for c in body)
    single, multi = (160, 153) if gsm else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


class TwilioProvider(Provider):
    name = "twilio"
    server_header = "Twilio"

    def reset(self) -> None:
        self.account_sid = credentials.TWILIO_ACCOUNT_SID
        self.auth_token = credentials.TWILIO_AUTH_TOKEN
        self.api_keys: dict[str, str] = {credentials.TWILIO_API_KEY_SID: credentials.TWILIO_API_KEY_SECRET}
        #: key sid -> {"friendly_name", "date_created", "date_updated"} (what GET Keys shows; no secret)
        self.key_details: dict[str, dict[str, str]] = {}
        self.from_numbers: set[str] = {credentials.TWILIO_FROM_NUMBER}
        self.messages: dict[str, dict[str, Any]] = {}
        #: recipient -> (final status, error code)
        self.undeliverable: dict[str, tuple[str, int]] = {}
        #: Numbers that texted STOP: a send to one is refused with 21610, as Twilio does.
        self.opted_out: set[str] = set()
        #: from number -> what its IncomingPhoneNumber's SmsUrl / SmsMethod were set to
        self.number_settings: dict[str, dict[str, str]] = {}

    def set_credentials(self, values: dict[str, Any]) -> None:
        if "auth_token" in values:
            self.auth_token = str(values["auth_token"])
        if "api_key_sid" in values or "api_key_secret" in values:
            sid = str(values.get("api_key_sid") or next(iter(self.api_keys), credentials.TWILIO_API_KEY_SID))
            self.api_keys = {sid: str(values.get("api_key_secret") or self.api_keys.get(sid, ""))}
        if "from_numbers" in values:
            self.from_numbers = set(values["from_numbers"])

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"messages": json.loads(json.dumps(list(self.messages.values())))}

    def parse(self, request: Request) -> None:
        request.form = decode_flat(request.body) if request.body else None

    def finalize(self, request: Request, response: Response, decision: Decision | None) -> None:
        request.request_id = request.request_id or "RQ" + random_hex(32)
        response.set_header("Twilio-Request-Id", request.request_id)
        response.set_header("Twilio-Request-Duration", "0.021")
        response.set_header("Content-Type", "application/json; charset=utf-8")

    def error_response(self, status: int, retry_after: int | None = None) -> Response:
        if status == 401:
            return self._unauthorized("Authenticate")
        phrase = HTTPStatus(status).phrase
        code = {429: 20429, 500: 20500, 503: 20503, 404: 20404, 413: 20413}.get(status, 20000 + status % 1000)
        response = twilio_error(status, code, phrase)
        if status == 429 or retry_after:
            response.set_header("Retry-After", str(retry_after or 1))
        return response

    def _unauthorized(self, message: str) -> Response:
        response = twilio_error(401, 20003, message, [("WWW-Authenticate", 'Basic realm="Twilio API"')])
        body = json.loads(response.body)
        body["detail"] = "Your AccountSid or AuthToken was incorrect."
        response.body = json.dumps(body).encode()
        return response

    def _authenticate(
        self, request: Request, account_sid: str, *, account_credentials_only: bool = False
    ) -> Response | None:
        header = request.header("Authorization")
        if not header:
            return self._unauthorized("Authentication Error - No credentials provided")
        scheme, _, encoded = header.partition(" ")
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._unauthorized("Authenticate")
        by_account = username == self.account_sid and password == self.auth_token
        by_key = username in self.api_keys and password == self.api_keys[username]
        valid = scheme.lower() == "basic" and (by_account or by_key)
        if not valid or account_sid != self.account_sid:
            return self._unauthorized("Authenticate")
        if account_credentials_only and not by_account:
            # Twilio: a standard API key cannot use the Accounts' Keys resource.
            return twilio_error(
                401,
                20003,
                "Authentication Error - Standard API keys cannot access this resource",
                [("WWW-Authenticate", 'Basic realm="Twilio API"')],
            )
        return None

    # --- routes ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        account = re.fullmatch(rf"/{API_VERSION}/Accounts/([^/]+)\.json", request.path)
        if account is not None:
            return self._account(request, account[1])
        keys = re.fullmatch(rf"/{API_VERSION}/Accounts/([^/]+)/Keys(?:/([^/]+))?\.json", request.path)
        if keys is not None:
            return self._keys(request, keys[1], keys[2])
        numbers = re.fullmatch(
            rf"/{API_VERSION}/Accounts/([^/]+)/IncomingPhoneNumbers(?:/([^/]+))?\.json", request.path
        )
        if numbers is not None:
            return self._numbers(request, numbers[1], numbers[2])
        match = re.fullmatch(rf"/{API_VERSION}/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json", request.path)
        if match is None:
            return self._not_found(request.path)
        denied = self._authenticate(request, match[1])
        if denied is not None:
            return denied
        self.sandbox.pause(request)
        with self.lock:
            if match[2] is None and request.method == "POST":
                return self._create(request)
            if match[2] is not None and request.method == "GET":
                message = self.messages.get(match[2])
                return Response.json(200, message) if message else self._not_found(request.path)
        return twilio_error(405, 20004, "Method not allowed")

    # --- account and API keys (what credential rotation uses) ------------------------------------

    def _account(self, request: Request, account_sid: str) -> Response:
        denied = self._authenticate(request, account_sid)
        if denied is not None:
            return denied
        self.sandbox.pause(request)
        if request.method != "GET":
            return twilio_error(405, 20004, "Method not allowed")
        base = f"/{API_VERSION}/Accounts/{self.account_sid}"
        # Every property of Twilio's Account resource, as Twilio returns it (the auth token included).
        return Response.json(
            200,
            {
                "auth_token": self.auth_token,
                "date_created": _rfc2822(0),
                "date_updated": _rfc2822(0),
                "friendly_name": "Tidings sandbox account",
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": "active",
                "subresource_uris": {
                    name: f"{base}/{resource}.json"
                    for name, resource in (("keys", "Keys"), ("messages", "Messages"))
                },
                "type": "Full",
                "uri": f"{base}.json",
            },
        )

    def _key_resource(self, sid: str) -> dict[str, Any]:
        details = self.key_details.get(sid) or {
            "friendly_name": "Tidings sandbox key",
            "date_created": _rfc2822(0),
            "date_updated": _rfc2822(0),
        }
        return {"sid": sid, **details}

    def _keys(self, request: Request, account_sid: str, key_sid: str | None) -> Response:
        denied = self._authenticate(request, account_sid, account_credentials_only=True)
        if denied is not None:
            return denied
        self.sandbox.pause(request)
        with self.lock:
            if key_sid is None and request.method == "POST":
                friendly_name = str((request.form or {}).get("FriendlyName") or "")
                if len(friendly_name) > 64:
                    return twilio_error(400, 21201, "FriendlyName must be 64 characters or fewer.")
                sid = "SK" + random_hex(32)
                secret = random_alnum(32)
                now = _rfc2822()
                self.api_keys[sid] = secret
                self.key_details[sid] = {
                    "friendly_name": friendly_name,
                    "date_created": now,
                    "date_updated": now,
                }
                # The secret is returned once, on creation, as Twilio does.
                return Response.json(201, {**self._key_resource(sid), "secret": secret})
            if key_sid is None and request.method == "GET":
                keys = [self._key_resource(sid) for sid in self.api_keys]
                uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Keys.json"
                return Response.json(
                    200,
                    {
                        "keys": keys,
                        "first_page_uri": uri,
                        "next_page_uri": None,
                        "page": 0,
                        "page_size": 50,
                        "previous_page_uri": None,
                        "uri": uri,
                        "end": len(keys) - 1,
                        "start": 0,
                    },
                )
            if key_sid is None:
                return twilio_error(405, 20004, "Method not allowed")
            if key_sid not in self.api_keys:
                return self._not_found(request.path)
            if request.method == "GET":
                return Response.json(200, self._key_resource(key_sid))
            if request.method == "DELETE":
                del self.api_keys[key_sid]
                self.key_details.pop(key_sid, None)
                return Response(204)
        return twilio_error(405, 20004, "Method not allowed")

    # --- the account's phone numbers ---------------------------------------------------------------

    @staticmethod
    def _number_sid(number: str) -> str:
        import hashlib

        return "PN" + hashlib.sha256(number.encode()).hexdigest()[:32]

    def _number_resource(self, number: str) -> dict[str, Any]:
        sid = self._number_sid(number)
        settings = self.number_settings.get(number, {})
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
            "date_created": _rfc2822(0),
            "date_updated": settings.get("date_updated") or _rfc2822(0),
            "friendly_name": number,
            "phone_number": number,
            "sid": sid,
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": settings.get("sms_method", "POST"),
            "sms_url": settings.get("sms_url", ""),
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }

    def _numbers(self, request: Request, account_sid: str, number_sid: str | None) -> Response:
        denied = self._authenticate(request, account_sid)
        if denied is not None:
            return denied
        self.sandbox.pause(request)
        with self.lock:
            if number_sid is None:
                if request.method != "GET":
                    return twilio_error(405, 20004, "Method not allowed")
                wanted = (request.query_params.get("PhoneNumber") or [None])[0]
                numbers = [n for n in sorted(self.from_numbers) if wanted in (None, n)]
                uri = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers.json"
                return Response.json(
                    200,
                    {
                        "incoming_phone_numbers": [self._number_resource(n) for n in numbers],
                        "first_page_uri": uri,
                        "next_page_uri": None,
                        "page": 0,
                        "page_size": 50,
                        "previous_page_uri": None,
                        "uri": uri,
                        "end": max(len(numbers) - 1, 0),
                        "start": 0,
                    },
                )
            number = next((n for n in self.from_numbers if self._number_sid(n) == number_sid), None)
            if number is None:
                return self._not_found(request.path)
            if request.method == "POST":
                form = request.form or {}
                settings = self.number_settings.setdefault(number, {})
                if "SmsUrl" in form:
                    url = str(form["SmsUrl"])
                    if url and urlsplit(url).scheme not in ("http", "https"):
                        return twilio_error(400, 21502, f"SmsUrl is not valid: {url}")
                    settings["sms_url"] = url
                if "SmsMethod" in form:
                    if form["SmsMethod"] not in ("GET", "POST"):
                        return twilio_error(400, 21503, "SmsMethod must be GET or POST")
                    settings["sms_method"] = str(form["SmsMethod"])
                settings["date_updated"] = _rfc2822()
            elif request.method != "GET":
                return twilio_error(405, 20004, "Method not allowed")
            return Response.json(200, self._number_resource(number))

    @staticmethod
    def _not_found(path: str) -> Response:
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _create(self, request: Request) -> Response:
        params = request.form or {}
        to, sender = params.get("To"), params.get("From")
        service = params.get("MessagingServiceSid")
        body = params.get("Body") or ""
        media = params.get("MediaUrl")
        callback = params.get("StatusCallback")
        fields = {"To": to, "From": sender}
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not media:
            return twilio_error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            return twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if service and not _MESSAGING_SERVICE.match(service):
            return twilio_error(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender:
            if sender in MAGIC_FROM:
                code, message = MAGIC_FROM[sender]
                return twilio_error(400, code, message.format(**fields))
            if not (_E164.match(sender) or _ALPHANUMERIC_SENDER.match(sender)):
                return twilio_error(400, 21212, MAGIC_FROM["+15005550001"][1].format(**fields))
            if _E164.match(sender) and sender not in self.from_numbers:
                return twilio_error(400, 21606, MAGIC_FROM["+15005550007"][1].format(**fields))
        if to in MAGIC_TO:
            code, message = MAGIC_TO[to]
            return twilio_error(400, code, message.format(**fields))
        if to in self.opted_out:
            return twilio_error(400, 21610, MAGIC_TO["+15005550004"][1])
        if not _E164.match(to):
            return twilio_error(400, 21211, MAGIC_TO["+15005550001"][1].format(**fields))
        if callback and urlsplit(callback).scheme not in ("http", "https"):
            return twilio_error(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")

        sid = "SM" + random_hex(32)
        now = _rfc2822()
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        media_urls = [media] if isinstance(media, str) else list(media or [])
        message = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": str(len(media_urls)),
            "num_segments": str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": to,
            "uri": f"{base}.json",
        }
        self.messages[sid] = message
        self._schedule_delivery(sid, callback)
        return Response.json(201, message)

    # --- delivery and status callbacks --------------------------------------------------------------

    def _schedule_delivery(self, sid: str, callback: str | None) -> None:
        def advance(status: str, error_code: int | None = None) -> None:
            with self.lock:
                message = self.messages.get(sid)
                if message is None:  # the sandbox was reset meanwhile
                    return
                if message["from"] is None:
                    message["from"] = next(iter(sorted(self.from_numbers)), credentials.TWILIO_FROM_NUMBER)
                message["status"] = status
                message["date_updated"] = _rfc2822()
                if status == "sent":
                    message["date_sent"] = message["date_updated"]
                    message["price"] = "-0.00790"
                if error_code is not None:
                    message["error_code"] = error_code
                    message["error_message"] = DELIVERY_ERRORS.get(error_code, "Unknown error")
                snapshot = dict(message)
            self._status_callback(callback, snapshot)

        def job() -> None:
            with self.lock:
                final = self.undeliverable.get((self.messages.get(sid) or {}).get("to", ""))
            if final and final[0] == "failed":
                advance("failed", final[1])
                return
            advance("sent")
            if final:
                advance(final[0], final[1])
            else:
                advance("delivered")

        self.sandbox.webhooks.submit(job)

    def _status_callback(self, callback: str | None, message: dict[str, Any]) -> None:
        params = {
            "AccountSid": message["account_sid"],
            "ApiVersion": API_VERSION,
            "From": message["from"],
            "MessageSid": message["sid"],
            "MessageStatus": message["status"],
            "SmsSid": message["sid"],
            "SmsStatus": message["status"],
            "To": message["to"],
        }
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if message["error_code"] is not None:
            params["ErrorCode"] = str(message["error_code"])
        if message["status"] == "delivered":
            params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
        url = callback or self.sandbox.webhooks.url
        if not url:
            return
        body = urlencode(params).encode()
        token = str(uuid.uuid4())  # same on retries, as Twilio's I-Twilio-Idempotency-Token

        def sign() -> dict[str, str]:
            return {
                "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
                "I-Twilio-Idempotency-Token": token,
            }

        self.sandbox.webhooks.deliver(
            url=url,
            body=body,
            content_type="application/x-www-form-urlencoded",
            sign=sign,
            event=f"message.{message['status']}",
            retries=STATUS_CALLBACK_RETRIES,
        )

    def _inbound(self, sender: str, body: str, url: str | None) -> dict[str, Any]:
        """A message from ``sender`` to the account's number, posted to the incoming-message webhook as
        Twilio posts it; an opt-out keyword opts the number out (or back in) first, with ``OptOutType``."""
        opt_out_type = OPT_OUT_KEYWORDS.get(body.strip().upper())
        with self.lock:
            if opt_out_type == "STOP":
                self.opted_out.add(sender)
            elif opt_out_type == "START":
                self.opted_out.discard(sender)
            to = next(iter(sorted(self.from_numbers)), credentials.TWILIO_FROM_NUMBER)
            url = url or self.number_settings.get(to, {}).get("sms_url") or None
        sid = "SM" + random_hex(32)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": sender,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(_segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        target = url or self.sandbox.webhooks.url
        encoded = urlencode(params).encode()

        def job() -> None:
            self.sandbox.webhooks.deliver(
                url=target,
                body=encoded,
                content_type="application/x-www-form-urlencoded",
                sign=lambda: {"X-Twilio-Signature": twilio_signature(self.auth_token, target or "", params)},
                event="message.received",
                retries=STATUS_CALLBACK_RETRIES,
            )

        self.sandbox.webhooks.submit(job)
        return {"message_sid": sid, "opt_out_type": opt_out_type, "url": target}

    def control(self, request: Request, subpath: str) -> Response | None:
        if subpath == "inbound" and request.method == "POST":
            payload = request.json_body() or {}
            sender, body = str(payload.get("from") or ""), str(payload.get("body") or "")
            if not _E164.match(sender) or not body:
                raise ValueError('need "from" (E.164) and "body"')
            return Response.json(201, self._inbound(sender, body, payload.get("url")))
        if subpath == "undeliverable" and request.method == "POST":
            payload = request.json_body() or {}
            to = str(payload.get("to") or "")
            status = payload.get("status") or "undelivered"
            code = int(payload.get("error_code") or 30003)
            if not to or status not in ("undelivered", "failed"):
                raise ValueError('need "to" and status "undelivered" or "failed"')
            with self.lock:
                self.undeliverable[to] = (status, code)
            return Response.json(201, {"to": to, "status": status, "error_code": code})
        if subpath == "undeliverable" and request.method == "DELETE":
            with self.lock:
                self.undeliverable.clear()
            return Response.json(200, {"cleared": True})
        return None


PROVIDER = TwilioProvider
