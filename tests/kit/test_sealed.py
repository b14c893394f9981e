"""Sealed tokens: they open only under the key and for the kind they were sealed for."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from assistantd.errors import InvalidRequestError
from assistantd.kit.sealed import Sealer, server_key
from assistantd.settings import Settings


def test_a_token_opens_to_its_payload() -> None:
    sealer = Sealer(b"k")
    token = sealer.seal("reasoning", {"text": "ünïcode", "n": [1, 2]})
    assert sealer.open("reasoning", token, param="input[0]") == {"text": "ünïcode", "n": [1, 2]}
    assert "ünïcode" not in token


@pytest.mark.parametrize("change", ["other key", "other kind", "cut", "flipped", "garbage"])
def test_anything_else_is_a_400_naming_the_param(change: str) -> None:
    sealer = Sealer(b"k")
    token = sealer.seal("reasoning", {"text": "x"})
    opener, kind = sealer, "reasoning"
    if change == "other key":
        opener = Sealer(b"other")
    elif change == "other kind":
        kind = "compaction"
    elif change == "cut":
        token = token[:-8]
    elif change == "flipped":
        raw = bytearray(base64.urlsafe_b64decode(token))
        raw[-1] ^= 1
        token = base64.urlsafe_b64encode(bytes(raw)).decode()
    else:
        token = "not base64 at all!"
    with pytest.raises(InvalidRequestError) as caught:
        opener.open(kind, token, param="input[3].encrypted_content")
    assert caught.value.code == "invalid_encrypted_content"
    assert caught.value.param == "input[3].encrypted_content"


def test_the_generated_key_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = server_key(settings)
    assert server_key(settings) == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o640  # owner and group
    assert list(tmp_path.iterdir()) == [tmp_path / "secret.key"]
    assert server_key(Settings(data_dir=tmp_path, secret_key="set")) == b"set"
