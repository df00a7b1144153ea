"""Sealed call state: authenticated encryption of a call's state for its action URL.

A seal is bound to the CallSid, the step and the node of the URL it rides in (associated data), so
it cannot be read, changed, replayed into another call or moved to another step. Keys come from a
key ring, newest first (`IVR_STATE_KEYS`): the newest seals, every key opens, so keys rotate without
dropping calls in progress.

The cipher is AES-SIV (RFC 5297), deterministic authenticated encryption: the same state sealed for
the same call and step gives the same seal, so a webhook Twilio retries is answered with the very
same TwiML, and no nonce has to be drawn (or can repeat) per webhook.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from ivr.errors import ConfigError

_KEY_BYTES = 32  # AES-SIV with two 128-bit keys
_KID_BYTES = 2  # which key of the ring sealed it: opening never tries every key
_TAG_BYTES = 16


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Strict: a character outside the URL-safe alphabet is an error, not skipped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def new_key() -> str:
    """A fresh key, as it is written in IVR_STATE_KEYS."""
    return _b64encode(secrets.token_bytes(_KEY_BYTES))


def _kid(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KID_BYTES]


class KeyRing:
    """Seals with the newest key and opens with any key of the ring."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        ring = [bytes(k) for k in keys]
        if not ring:
            raise ValueError("a key ring needs at least one key")
        self._sealer = (_kid(ring[0]), AESSIV(ring[0]))
        self._openers = {_kid(k): AESSIV(k) for k in reversed(ring)}  # the newest wins a kid clash

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Keys written comma-separated, newest first, each 32 bytes in URL-safe base64."""
        keys = []
        for number, part in enumerate((p.strip() for p in text.split(",")), start=1):
            try:
                key = _b64decode(part)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != _KEY_BYTES:
                raise ConfigError(
                    "IVR_STATE_KEYS",
                    f"key {number} of {len(text.split(','))}",
                    "must be 32 bytes in URL-safe base64 (make one with `ivr keys new`)",
                )
            keys.append(key)
        return cls(keys)

    @classmethod
    def for_development(cls, folder: Path) -> KeyRing:
        """The key kept in `folder` (made on first use), so every process of this machine shares it."""
        path = folder / "state-keys"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(new_key() + "\n")
            text = path.read_text().strip()
            if not text:  # another process made the file an instant ago and is still writing it
                text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                "IVR_STATE_KEYS",
                "",
                f"is not set, and the development key file {path} cannot be used ({exc.strerror}): "
                "set IVR_STATE_KEYS (`ivr keys new` makes one), or give that file to the user serving",
            ) from None
        return cls.parse(text)

    def seal(self, plain: bytes, bound_to: bytes) -> str:
        """`plain`, encrypted and authenticated together with `bound_to`."""
        kid, aead = self._sealer
        return _b64encode(kid + aead.encrypt(plain, [bound_to]))

    def open(self, token: str, bound_to: bytes) -> bytes | None:
        """The plain text of a seal made for `bound_to`, or None when it is broken, foreign or forged."""
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        aead = self._openers.get(raw[:_KID_BYTES])
        if aead is None or len(raw) < _KID_BYTES + _TAG_BYTES:
            return None
        try:
            return aead.decrypt(raw[_KID_BYTES:], [bound_to])
        except InvalidTag:
            return None
