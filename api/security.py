"""Secrets: site API keys, moderator secrets, webhook signatures.

Keys look like `mod_live_<prefix>_<secret>`; only the SHA-256 of the whole key is stored. The key is
looked up by its non-secret prefix and the hash compared with `hmac.compare_digest`, so the check
takes the same time whatever the bytes. SHA-256 (not a slow KDF) is right here: keys are 256-bit
random tokens, not passwords people chose.

    key = new_secret("mod")            # 'mod_3k9x0a1b_Zt...'
    prefix_of(key), hash_secret(key)   # what is stored
    secret_matches(key, stored_hash)   # constant-time check
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_CHARS = 8


def new_secret(kind: str) -> str:
    """A fresh random credential: `<kind>_<8-char prefix>_<43-char secret>`."""
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    return f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(credential: str) -> str | None:
    """The lookup prefix (`<kind>_<prefix>`) of a credential, or None if it is not shaped like one.

    The prefix must be ASCII letters and digits (ours are hex), so a key from a query string or form
    (`?key=mod_ab%00...`) never puts a NUL into the lookup query: PostgreSQL would fail, not miss."""
    parts = credential.split("_", 2)
    if len(parts) != 3 or len(parts[1]) != PREFIX_CHARS or not parts[2]:
        return None
    if not (parts[1].isascii() and parts[1].isalnum()):
        return None
    return f"{parts[0]}_{parts[1]}"


def hash_secret(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(credential: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(credential), stored_hash)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_signature(secret: str, body: bytes) -> str:
    """The `X-Moderato-Signature` header value: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """What a receiving platform does: recompute and compare in constant time."""
    return hmac.compare_digest(webhook_signature(secret, body), header)
