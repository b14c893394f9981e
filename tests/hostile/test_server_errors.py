"""What used to be a 500 is the right 400, naming the parameter: list cursors that are no id,
JSON nested deeper than the bound (`kit.nesting`, 100 levels), and file names breaking the text
rule in multipart forms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hostile.conftest import Attack, error_of
from tests.support.scripted_model import Reply, ScriptedModel

DEPTH = 100  # the documented bound: the body's own object counts as one level


def _arrays(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


def _schema(levels: int) -> str:
    """A JSON schema of `levels` objects, each holding the next (two JSON levels apiece)."""
    return '{"type":"object","properties":{"a":' * levels + '{"type":"string"}' + "}}" * levels


def _post(attack: Attack, path: str, raw: str) -> Any:
    return attack.http.post(path, content=raw, headers={"Content-Type": "application/json"})


class TestCursors:
    """A cursor that is no id (no prefix) on a list whose cursors are item positions."""

    @pytest.mark.parametrize("param", ["after", "before"])
    def test_conversation_items(self, attack: Attack, param: str) -> None:
        conversation = attack.http.post(
            "/conversations", json={"items": [{"type": "message", "role": "user", "content": "x"}]}
        ).json()
        response = attack.http.get(f"/conversations/{conversation['id']}/items?{param}=x")
        error = error_of(response, 400)
        assert error["param"] == param
        assert error["code"] == "invalid_value"
        # an id-shaped cursor of no item still works: the list from where it would sit
        listed = attack.http.get(f"/conversations/{conversation['id']}/items?after=msg_0&order=asc")
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["data"]) == 1

    def test_response_input_items(self, attack: Attack, model: ScriptedModel) -> None:
        model.script("cursor-input-items", Reply(text="ok"))
        created = attack.http.post(
            "/responses", json={"model": "gpt-4o", "input": "cursor-input-items"}
        )
        assert created.status_code == 200, created.text
        response_id = created.json()["id"]
        for param in ("after", "before"):
            listing = attack.http.get(f"/responses/{response_id}/input_items?{param}=x")
            error = error_of(listing, 400)
            assert error["param"] == param
            assert error["code"] == "invalid_value"


class TestNesting:
    @pytest.mark.parametrize("levels", [990, 5_000, 200_000])
    def test_deep_array_with_a_nul(self, attack: Attack, levels: int) -> None:
        """The text rule's walk used to recurse (and the parser before it)."""
        raw = '{"model": "gpt-4o", "input": "hi", "x": ' + _arrays(levels, '"\\u0000"') + "}"
        error = error_of(_post(attack, "/responses", raw), 400)
        assert error["param"] == "x" + "[0]" * (DEPTH - 1)
        assert f"more than {DEPTH} levels" in error["message"]
        assert error["code"] == "invalid_value"

    def test_deep_array_in_the_assistants_api(self, attack: Attack) -> None:
        raw = '{"model": "gpt-4o", "metadata": ' + _arrays(5_000) + "}"
        error = error_of(_post(attack, "/assistants", raw), 400)
        assert error["param"] == "metadata" + "[0]" * (DEPTH - 1)
        assert error["code"] is None

    @pytest.mark.parametrize(
        ("path", "raw", "param"),
        [
            (
                "/responses",
                '{"model": "gpt-4o", "input": "hi", "tools": [{"type": "function", '
                '"name": "f", "parameters": %s}]}',
                "tools[0].parameters",
            ),
            (
                "/responses",
                '{"model": "gpt-4o", "input": "hi", "stream": true, "text": {"format": '
                '{"type": "json_schema", "name": "s", "schema": %s}}}',
                "text.format.schema",
            ),
            (
                "/assistants",
                '{"model": "gpt-4o", "tools": [{"type": "function", "function": '
                '{"name": "f", "parameters": %s}}]}',
                "tools[0].function.parameters",
            ),
        ],
        ids=["function-parameters", "text-format-schema", "assistant-function"],
    )
    @pytest.mark.parametrize("levels", [400, 500])
    def test_deep_schema(
        self, attack: Attack, path: str, raw: str, param: str, levels: int
    ) -> None:
        """A 7.5 KB schema used to pass validation and fail in the event encoder."""
        error = error_of(_post(attack, path, raw % _schema(levels)), 400)
        assert error["param"].startswith(f"{param}.properties.a."), error
        assert f"more than {DEPTH} levels" in error["message"]

    def test_at_the_bound_is_accepted(self, attack: Attack) -> None:
        """Down to the bound, nesting is kept and read back as sent; one level more is not."""
        # body, tools, [0], function, parameters: five levels before the arrays
        for arrays, status in ((DEPTH - 5, 200), (DEPTH - 4, 400)):
            parameters = {"type": "object", "default": json.loads(_arrays(arrays, ""))}
            function = {"name": "f", "parameters": parameters}
            body = {"model": "gpt-4o", "tools": [{"type": "function", "function": function}]}
            created = _post(attack, "/assistants", json.dumps(body))
            assert created.status_code == status, created.text[:300]
            if status == 200:
                read = attack.http.get(f"/assistants/{created.json()['id']}").json()
                assert read["tools"][0]["function"]["parameters"] == parameters
                attack.http.delete(f"/assistants/{created.json()['id']}").raise_for_status()


def _form(filename: bytes, purpose: bytes = b"assistants") -> bytes:
    return (
        b'--bnd\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n' + purpose + b"\r\n"
        b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--bnd--\r\n"
    )


class TestMultipartText:
    """The request guard reads no multipart body: the form reader applies the text rule."""

    @pytest.mark.parametrize(
        "filename", [b"a\x00b.txt", b"a\xed\xa0\xbd.txt"], ids=["nul", "surrogate-bytes"]
    )
    def test_file_name(self, attack: Attack, filename: bytes) -> None:
        response = attack.http.post(
            "/files",
            content=_form(filename),
            headers={"Content-Type": "multipart/form-data; boundary=bnd"},
        )
        if b"\x00" in filename:
            error = error_of(response, 400)
            assert error["param"] == "file"
            assert "NUL" in error["message"]
        else:
            # bytes that are no UTF-8 are read as latin-1: text, not a lone surrogate
            assert response.status_code == 200, response.text
            attack.http.delete(f"/files/{response.json()['id']}").raise_for_status()

    def test_text_field(self, attack: Attack) -> None:
        response = attack.http.post(
            "/files",
            content=_form(b"ok.txt", purpose=b"assis\x00tants"),
            headers={"Content-Type": "multipart/form-data; boundary=bnd"},
        )
        assert error_of(response, 400)["param"] == "purpose"
