"""Sessions of the /moderate page: a signed cookie, and a CSRF token derived from it.

    token = issue_session(moderator, now=now)             # the cookie value after login
    moderator_id = session_moderator_id(token)            # who it claims to be (then load the row)
    verify_session(token, moderator, now=now)              # True if signed for this moderator, unexpired
    csrf = csrf_token(token, moderator)                    # put in every form; checked on every POST
    end_sessions(moderator)                                # logout: every token issued so far fails

The cookie is `<moderator id>.<expires unix>.<nonce>.<HMAC-SHA256>`; the HMAC key is the
moderator's stored secret hash, which never leaves the server, and the signed message includes the
moderator's `session_epoch`. Nothing is stored per session, so every worker can check every cookie;
disabling the moderator (or replacing the account) ends all of its sessions, and so does logging
out, which moves the epoch on (`end_sessions`): a copy of the cookie stops working with the
original, on every device the moderator was logged in on. The CSRF token is a second HMAC over
the nonce: a page on another origin can neither read the cookie (HttpOnly) nor compute the token,
and SameSite=Strict keeps the cookie off cross-site requests in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from api.schemas import Moderator

COOKIE = "moderato_session"
LOGIN_CSRF_COOKIE = "moderato_login_csrf"
LIFETIME = timedelta(hours=8)


def _sign(moderator: Moderator, purpose: str, message: str) -> str:
    signed = f"{purpose}:{moderator.session_epoch}:{message}".encode()
    return hmac.new(moderator.secret_hash.encode(), signed, hashlib.sha256).hexdigest()


def end_sessions(moderator: Moderator) -> None:
    """Invalidate every session (and CSRF token) issued to `moderator` so far; the caller saves the row."""
    moderator.session_epoch += 1


def issue_session(moderator: Moderator, *, now: datetime) -> str:
    expires = int((now + LIFETIME).timestamp())
    body = f"{moderator.id}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_sign(moderator, 'session', body)}"


_DIGITS = re.compile(r"[0-9]{1,18}")
_EXPIRES = re.compile(r"[0-9]{1,20}")


def _parts(token: str) -> tuple[int, int, str, str] | None:
    # ASCII digits only: `str.isdigit` also accepts "²", which a raw cookie byte 0xB2 decodes to and
    # `int()` then refuses (a 500 instead of the login page).
    parts = token.split(".")
    if len(parts) != 4 or not _DIGITS.fullmatch(parts[0]) or not _EXPIRES.fullmatch(parts[1]):
        return None
    return int(parts[0]), int(parts[1]), parts[2], parts[3]


def session_moderator_id(token: str | None) -> int | None:
    """The moderator id a cookie claims (unverified: load the row, then `verify_session`)."""
    parts = _parts(token) if token else None
    return parts[0] if parts else None


def verify_session(token: str, moderator: Moderator, *, now: datetime) -> bool:
    parts = _parts(token)
    if parts is None or moderator.disabled_at is not None:
        return False
    moderator_id, expires, _nonce, signature = parts
    body = token.rsplit(".", 1)[0]
    return (
        moderator_id == moderator.id
        and expires > now.timestamp()
        and _same(_sign(moderator, "session", body), signature)
    )


def csrf_token(token: str, moderator: Moderator) -> str:
    return _sign(moderator, "csrf", token.rsplit(".", 1)[0])


def csrf_matches(token: str, moderator: Moderator, candidate: str | None) -> bool:
    return bool(candidate) and _same(csrf_token(token, moderator), candidate or "")


def _same(expected: str, candidate: str) -> bool:
    """Constant-time equality that also takes non-ASCII input (a header or form value can carry
    any character; `hmac.compare_digest` raises TypeError on non-ASCII str, which was a 500)."""
    return hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "surrogatepass"))
