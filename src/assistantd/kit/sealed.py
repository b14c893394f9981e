"""Sealed content: what a stateless client carries between turns and hands back unread.

`reasoning.encrypted_content` and compaction items hold server-side state (the model's reasoning,
a conversation's summary) in the client's hands. They are sealed with AES-GCM under the server
key, so a client can neither read nor change them, and a token sealed for one purpose (`kind`)
never opens as another.

A token is URL-safe base64 of `version (1 byte) | nonce (12 bytes) | ciphertext + tag`; the
associated data is the version and the kind. The payload is compact JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from assistantd.errors import InvalidRequestError
from assistantd.settings import Settings

_VERSION = 1
_NONCE_BYTES = 12
KEY_FILE = "secret.key"


class Sealer:
    """Seals and opens payloads under one server key."""

    def __init__(self, key: bytes) -> None:
        # Any secret becomes a 256-bit AES key; a generated one already is one.
        self._aead = AESGCM(hashlib.sha256(b"assistantd-sealed-v1\0" + key).digest())

    def seal(self, kind: str, payload: Any) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        header = bytes([_VERSION])
        sealed = self._aead.encrypt(nonce, data, header + kind.encode())
        return base64.urlsafe_b64encode(header + nonce + sealed).decode("ascii")

    def open(self, kind: str, token: str, *, param: str) -> Any:
        """The payload `token` seals as `kind`; a 400 `invalid_encrypted_content` naming `param`
        when it was sealed by another key or for another kind, truncated, or changed."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
            if len(raw) <= 1 + _NONCE_BYTES or raw[0] != _VERSION:
                raise ValueError("not a sealed token")
            nonce = raw[1 : 1 + _NONCE_BYTES]
            data = self._aead.decrypt(nonce, raw[1 + _NONCE_BYTES :], raw[:1] + kind.encode())
            return json.loads(data)
        except (InvalidTag, ValueError, UnicodeError, binascii.Error) as exc:
            raise InvalidRequestError(
                "The encrypted content could not be verified: it was not made by this server "
                "(or another server key), or it was changed or cut short.",
                param=param,
                code="invalid_encrypted_content",
            ) from exc


def server_key(settings: Settings) -> bytes:
    """`ASSISTANTD_SECRET_KEY`, else the data dir's generated key (made at first use, by one
    process: the others read it)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    temporary.write_text(secrets.token_hex(32) + "\n")
    # Its owner's group reads it too: processes of one deployment that run as other users
    # share the data dir through a group (docker-compose.yml's API and workers do).
    temporary.chmod(0o640)
    try:
        os.link(temporary, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_text().strip()
    except PermissionError as exc:
        raise PermissionError(
            f"cannot read the server key {path} ({exc.strerror}): make it readable by this "
            "process's user or group, or set ASSISTANTD_SECRET_KEY on every process"
        ) from exc
    if not key:
        raise FileNotFoundError(path)
    return key.encode()


def sealer_for(settings: Settings) -> Sealer:
    return Sealer(server_key(settings))
