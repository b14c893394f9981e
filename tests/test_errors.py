"""Every error rule: status, OpenAI's envelope and wording, and that bad input changes nothing.

The SDK's exceptions are the judge where the SDK can express the request (`.status_code`, and
`.body`, which is the inner `error` object); raw httpx covers what it cannot send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openai import (
    AuthenticationError,
    AzureOpenAI,
    BadRequestError,
    NotFoundError,
    OpenAI,
)

from tests.conftest import AZURE_API_VERSION
from tests.support.server import LiveServer

ERROR_KEYS = {"message", "type", "param", "code"}
BAD_JSON = (
    "We could not parse the JSON body of your request. The API expects a JSON payload, "
    "but what was sent was not valid JSON."
)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The inner error object, after checking the status and the exact envelope."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    return body["error"]  # type: ignore[no-any-return]


def envelope(body: object) -> dict[str, Any]:
    """An SDK exception's `.body`, checked to be exactly the four-key error object."""
    assert isinstance(body, dict)
    assert set(body) == ERROR_KEYS
    return body


@pytest.fixture
def http(server: LiveServer, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {api_key}"}
    ) as c:
        yield c


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as c:
        yield c


class TestAuthentication:
    def test_missing_key(self, anonymous: httpx.Client) -> None:
        error = error_of(anonymous.get("/v1/assistants"), 401)
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("You didn't provide an API key.")

    def test_missing_key_azure_path(self, anonymous: httpx.Client) -> None:
        response = anonymous.get("/openai/assistants", params={"api-version": AZURE_API_VERSION})
        error_of(response, 401)

    @pytest.mark.parametrize(
        "headers",
        [
            {"Authorization": "Bearer sk-not-a-real-key-123456"},
            {"api-key": "sk-not-a-real-key-123456"},
        ],
    )
    def test_bad_key_raw(self, anonymous: httpx.Client, headers: dict[str, str]) -> None:
        error = error_of(anonymous.get("/v1/assistants", headers=headers), 401)
        assert error["code"] == "invalid_api_key"
        assert error["message"].startswith("Incorrect API key provided: ")
        assert "sk-not-a-real-key-123456" not in error["message"]  # redacted

    @pytest.mark.parametrize("authorization", ["Basic abc", "Bearer", "sk-bare"])
    def test_not_bearer(self, anonymous: httpx.Client, authorization: str) -> None:
        error_of(anonymous.get("/v1/assistants", headers={"Authorization": authorization}), 401)

    def test_bad_key_openai_client(self, server: LiveServer) -> None:
        with OpenAI(api_key="sk-wrong", base_url=f"{server.url}/v1", max_retries=0) as bad:
            with pytest.raises(AuthenticationError) as err:
                bad.beta.assistants.list()
        assert err.value.status_code == 401
        body = envelope(err.value.body)
        assert body["code"] == "invalid_api_key"
        assert err.value.code == "invalid_api_key"

    def test_bad_key_azure_client(self, server: LiveServer) -> None:
        with AzureOpenAI(
            api_key="wrong",
            api_version=AZURE_API_VERSION,
            azure_endpoint=server.url,
            max_retries=0,
        ) as bad:
            with pytest.raises(AuthenticationError) as err:
                bad.beta.assistants.create(model="m")
        envelope(err.value.body)

    def test_auth_before_validation(self, anonymous: httpx.Client) -> None:
        """A request that is both unauthenticated and invalid is refused for the key."""
        error_of(anonymous.post("/v1/assistants", json={"bogus": 1}), 401)
        error_of(anonymous.get("/v1/assistants/thread_wrongprefix"), 401)


class TestNotFound:
    def test_assistant(self, client: OpenAI) -> None:
        for call in (
            lambda: client.beta.assistants.retrieve("asst_x"),
            lambda: client.beta.assistants.update("asst_x", name="n"),
            lambda: client.beta.assistants.delete("asst_x"),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert err.value.status_code == 404
            assert envelope(err.value.body) == {
                "message": "No assistant found with id 'asst_x'.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            assert err.value.message == "Error code: 404 - No assistant found with id 'asst_x'."

    def test_thread(self, client: OpenAI) -> None:
        for call in (
            lambda: client.beta.threads.retrieve("thread_x"),
            lambda: client.beta.threads.update("thread_x", metadata={}),
            lambda: client.beta.threads.delete("thread_x"),
            lambda: client.beta.threads.messages.list("thread_x"),
            lambda: client.beta.threads.messages.create("thread_x", role="user", content="x"),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert envelope(err.value.body)["message"] == "No thread found with id 'thread_x'."

    def test_message(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        for call in (
            lambda: client.beta.threads.messages.retrieve("msg_x", thread_id=thread.id),
            lambda: client.beta.threads.messages.update("msg_x", thread_id=thread.id),
            lambda: client.beta.threads.messages.delete("msg_x", thread_id=thread.id),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert envelope(err.value.body)["message"] == "No message found with id 'msg_x'."

    def test_message_of_another_thread(self, client: OpenAI) -> None:
        one = client.beta.threads.create()
        two = client.beta.threads.create()
        message = client.beta.threads.messages.create(one.id, role="user", content="hi")
        with pytest.raises(NotFoundError) as err:
            client.beta.threads.messages.retrieve(message.id, thread_id=two.id)
        assert envelope(err.value.body)["message"] == f"No message found with id '{message.id}'."

    def test_file(self, client: OpenAI) -> None:
        for call in (
            lambda: client.files.retrieve("file-x"),
            lambda: client.files.delete("file-x"),
            lambda: client.files.content("file-x"),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert envelope(err.value.body)["message"] == "No file found with id 'file-x'."

    def test_upload(self, client: OpenAI) -> None:
        for call in (
            lambda: client.uploads.cancel("upload_x"),
            lambda: client.uploads.complete("upload_x", part_ids=[]),
            lambda: client.uploads.parts.create("upload_x", data=b"x"),
        ):
            with pytest.raises(NotFoundError) as err:
                call()
            assert envelope(err.value.body)["message"] == "No upload found with id 'upload_x'."

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/nope"),
            ("POST", "/v1/assistants/asst_x/files"),
            ("GET", "/v2/assistants"),
            ("GET", "/openai/nope?api-version=2024-08-01-preview"),
            ("GET", "/"),
        ],
    )
    def test_unknown_route(self, http: httpx.Client, method: str, path: str) -> None:
        url = str(http.base_url.copy_with(path="/")).rstrip("/") + path
        error = error_of(http.request(method, url), 404)
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith(f"Invalid URL ({method} /")

    def test_a_base_url_without_v1_is_told_the_right_one(
        self, server: LiveServer, api_key: str
    ) -> None:
        with OpenAI(api_key=api_key, base_url=server.url, max_retries=0) as client:
            with pytest.raises(NotFoundError) as err:
                client.beta.assistants.create(model="gpt-4o")
            with pytest.raises(NotFoundError) as listed:
                client.responses.retrieve("resp_x")
        message = envelope(err.value.body)["message"]
        assert message.startswith("Invalid URL (POST /assistants): the API is under /v1")
        assert f"base_url to {server.url}/v1" in message
        assert "(GET /v1/responses/resp_x)" in envelope(listed.value.body)["message"]

    def test_an_unknown_path_without_v1_gets_no_hint(self, http: httpx.Client) -> None:
        url = str(http.base_url.copy_with(path="/nothing/here"))
        error = error_of(http.get(url), 404)
        assert error["message"] == "Invalid URL (GET /nothing/here)"


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("PUT", "/assistants"),
            ("PATCH", "/assistants/asst_x"),
            ("DELETE", "/assistants"),
            ("GET", "/threads"),
            ("PUT", "/threads/thread_x/messages"),
        ],
    )
    def test_wrong_method(self, http: httpx.Client, method: str, path: str) -> None:
        response = http.request(method, path)
        error = error_of(response, 405)
        assert method in error["message"]
        assert "allow" in response.headers

    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            ("/files/file-x", "DELETE, GET"),  # one route per method: all of them
            ("/assistants", "GET, POST"),
            ("/responses/compact", "POST"),  # not `/responses/{response_id}`'s GET, DELETE
        ],
    )
    def test_allow_names_every_method(self, http: httpx.Client, path: str, allowed: str) -> None:
        response = http.request("PUT", path)
        error_of(response, 405)
        assert response.headers["allow"] == allowed


class TestAzureApiVersion:
    """Azure answers its `/openai/...` routes without `?api-version=` with 404, code "404"."""

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/openai/assistants"),
            ("POST", "/openai/threads"),
            ("GET", "/openai/threads/thread_x/runs"),
            ("POST", "/openai/assistants?api-version="),
        ],
    )
    def test_missing_api_version(
        self, server: LiveServer, api_key: str, method: str, path: str
    ) -> None:
        response = httpx.request(
            method, f"{server.url}{path}", headers={"api-key": api_key}, json={"model": "m"}
        )
        error = error_of(response, 404)
        assert error["code"] == "404"
        assert error["message"].startswith("Resource not found")
        assert "api-version" in error["message"]

    def test_nothing_was_created(self, server: LiveServer, client: OpenAI) -> None:
        httpx.post(
            f"{server.url}/openai/assistants",
            headers={"Authorization": f"Bearer {client.api_key}"},
            json={"model": "m"},
        )
        assert client.beta.assistants.list().data == []

    def test_openai_v1_needs_none(self, server: LiveServer, api_key: str) -> None:
        response = httpx.get(f"{server.url}/openai/v1/assistants", headers={"api-key": api_key})
        assert response.status_code == 200, response.text

    def test_with_api_version(self, azure_client: AzureOpenAI) -> None:
        assert azure_client.beta.assistants.list().object == "list"


class TestBadIds:
    @pytest.mark.parametrize(
        ("path", "param", "prefix"),
        [
            ("/assistants/thread_abc", "assistant_id", "asst"),
            ("/threads/asst_abc", "thread_id", "thread"),
            ("/files/asst_abc", "file_id", "file"),
        ],
    )
    def test_wrong_prefix_raw(self, http: httpx.Client, path: str, param: str, prefix: str) -> None:
        wrong = path.rsplit("/", 1)[1]
        error = error_of(http.get(path), 400)
        assert error == {
            "message": f"Invalid '{param}': '{wrong}'. Expected an ID that begins with '{prefix}'.",
            "type": "invalid_request_error",
            "param": param,
            "code": "invalid_value",
        }

    def test_wrong_prefix_sdk(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.assistants.retrieve("undefined")
        assert err.value.status_code == 400
        assert envelope(err.value.body)["param"] == "assistant_id"
        thread = client.beta.threads.create()
        with pytest.raises(BadRequestError) as err:
            client.beta.threads.messages.retrieve("asst_1", thread_id=thread.id)
        assert envelope(err.value.body)["param"] == "message_id"


class TestMetadata:
    @pytest.mark.parametrize(
        "metadata",
        [
            {f"k{i}": "v" for i in range(17)},
            {"k" * 65: "v"},
            {"k": "v" * 513},
        ],
        ids=["17 keys", "65-char key", "513-char value"],
    )
    def test_refused_everywhere(self, client: OpenAI, metadata: dict[str, str]) -> None:
        assistant = client.beta.assistants.create(model="m")
        thread = client.beta.threads.create()
        message = client.beta.threads.messages.create(thread.id, role="user", content="x")
        calls: list[Callable[[], object]] = [
            lambda: client.beta.assistants.create(model="m", metadata=metadata),
            lambda: client.beta.assistants.update(assistant.id, metadata=metadata),
            lambda: client.beta.threads.create(metadata=metadata),
            lambda: client.beta.threads.update(thread.id, metadata=metadata),
            lambda: client.beta.threads.messages.create(
                thread.id, role="user", content="x", metadata=metadata
            ),
            lambda: client.beta.threads.messages.update(
                message.id, thread_id=thread.id, metadata=metadata
            ),
        ]
        for call in calls:
            with pytest.raises(BadRequestError) as err:
                call()
            body = envelope(err.value.body)
            assert body["param"] is not None
            assert body["param"].startswith("metadata"), body
            assert body["type"] == "invalid_request_error"

    def test_limits_are_inclusive(self, client: OpenAI) -> None:
        metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
        assert client.beta.assistants.create(model="m", metadata=metadata).metadata == metadata
        assert client.beta.threads.create(metadata=metadata).metadata == metadata

    def test_values_must_be_strings(self, http: httpx.Client) -> None:
        error = error_of(http.post("/assistants", json={"model": "m", "metadata": {"a": 1}}), 400)
        assert error["param"] == "metadata.a"


class TestListParameters:
    @pytest.mark.parametrize("limit", [0, 101, -1])
    def test_limit_out_of_range(self, client: OpenAI, limit: int) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.assistants.list(limit=limit)
        body = envelope(err.value.body)
        assert body["param"] == "limit"

    def test_limit_bounds_accepted(self, client: OpenAI) -> None:
        assert client.beta.assistants.list(limit=1).data == []
        assert client.beta.assistants.list(limit=100).data == []

    def test_limit_on_messages(self, client: OpenAI) -> None:
        thread = client.beta.threads.create()
        for limit in (0, 101):
            with pytest.raises(BadRequestError) as err:
                client.beta.threads.messages.list(thread.id, limit=limit)
            assert envelope(err.value.body)["param"] == "limit"

    def test_limit_not_a_number(self, http: httpx.Client) -> None:
        assert error_of(http.get("/assistants", params={"limit": "ten"}), 400)["param"] == "limit"

    def test_order(self, http: httpx.Client) -> None:
        error = error_of(http.get("/assistants", params={"order": "sideways"}), 400)
        assert error["param"] == "order"
        assert "'asc'" in error["message"]
        assert "'desc'" in error["message"]


class TestRequestBodies:
    def test_mcp_call_error_content_of_any_shape(self, http: httpx.Client) -> None:
        """A client's copy of an MCP call, whose error content holds what is no text part."""
        error = {"type": "mcp_tool_execution_error", "content": [None, 7, {"text": "boom"}]}
        call = {
            "type": "mcp_call",
            "id": "mcp_1",
            "server_label": "s",
            "name": "t",
            "arguments": "{}",
            "error": error,
        }
        user = {"role": "user", "content": "hi"}
        response = http.post(
            "/responses/input_tokens", json={"model": "gpt-4o", "input": [call, user]}
        )
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize("kind", [{"name": "x"}, ["function"], 7])
    def test_tool_type_not_a_string(self, http: httpx.Client, kind: object) -> None:
        response = http.post(
            "/responses", json={"model": "m", "input": "hi", "tools": [{"type": kind}]}
        )
        error = error_of(response, 400)
        assert str(error["param"]).startswith("tools[0]")

    @pytest.mark.parametrize("name", ["file_ids", "assistant_id", "Model", "stream"])
    def test_unknown_field_create(self, client: OpenAI, name: str) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.assistants.create(model="m", extra_body={name: []})
        assert envelope(err.value.body) == {
            "message": f"Unrecognized request argument supplied: {name}",
            "type": "invalid_request_error",
            "param": name,
            "code": None,
        }

    def test_unknown_field_everywhere(self, client: OpenAI) -> None:
        assistant = client.beta.assistants.create(model="m")
        thread = client.beta.threads.create()
        message = client.beta.threads.messages.create(thread.id, role="user", content="x")
        extra = {"bogus": True}
        calls: list[Callable[[], object]] = [
            lambda: client.beta.assistants.update(assistant.id, extra_body=extra),
            lambda: client.beta.threads.create(extra_body=extra),
            lambda: client.beta.threads.update(thread.id, extra_body=extra),
            lambda: client.beta.threads.messages.create(
                thread.id, role="user", content="x", extra_body=extra
            ),
            lambda: client.beta.threads.messages.update(
                message.id, thread_id=thread.id, extra_body=extra
            ),
            lambda: client.uploads.create(
                bytes=1,
                filename="a.txt",
                mime_type="text/plain",
                purpose="assistants",
                extra_body=extra,
            ),
        ]
        for call in calls:
            with pytest.raises(BadRequestError) as err:
                call()
            assert envelope(err.value.body)["message"] == (
                "Unrecognized request argument supplied: bogus"
            )

    def test_nested_unknown_field(self, client: OpenAI) -> None:
        with pytest.raises(BadRequestError) as err:
            client.beta.assistants.create(
                model="m",
                tools=[{"type": "code_interpreter", "extra": 1}],  # type: ignore[list-item]
            )
        body = envelope(err.value.body)
        assert body["message"] == "Unrecognized request argument supplied: extra"
        assert body["param"] == "tools[0].extra"

    @pytest.mark.parametrize("payload", [b'{"model": ', b"{model: 'm'}", b"\xff\xfe", b"nul"])
    def test_malformed_json(self, http: httpx.Client, payload: bytes) -> None:
        response = http.post(
            "/assistants", content=payload, headers={"Content-Type": "application/json"}
        )
        assert error_of(response, 400) == {
            "message": BAD_JSON,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }

    @pytest.mark.parametrize("payload", [b"[1, 2]", b'"model"', b"42", b"null"])
    def test_json_but_not_an_object(self, http: httpx.Client, payload: bytes) -> None:
        response = http.post(
            "/assistants", content=payload, headers={"Content-Type": "application/json"}
        )
        error = error_of(response, 400)
        assert error["param"] is None

    def test_missing_body(self, http: httpx.Client) -> None:
        assert error_of(http.post("/assistants"), 400)["message"] == "Missing request body."

    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/json; charset=utf-8",
        ],
    )
    def test_json_whatever_the_content_type(
        self, http: httpx.Client, content_type: str | None
    ) -> None:
        """OpenAI reads a body as JSON whatever it is labelled (`curl -d` sends a form type)."""
        headers = {"Content-Type": content_type} if content_type else {}
        response = http.post(
            "/assistants", content=b'{"model": "m", "name": "curl"}', headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "curl"

    def test_malformed_json_without_content_type(self, http: httpx.Client) -> None:
        response = http.post("/assistants", content=b"model=m")
        assert error_of(response, 400)["message"] == BAD_JSON

    def test_wrong_types(self, http: httpx.Client) -> None:
        for body, param in [
            ({"model": 5}, "model"),
            ({"model": "m", "tools": {}}, "tools"),
            ({"model": "m", "temperature": "hot"}, "temperature"),
            ({"model": "m", "metadata": []}, "metadata"),
        ]:
            error = error_of(http.post("/assistants", json=body), 400)
            assert error["param"] == param
            assert error["message"].startswith(f"Invalid type for '{param}'")

    def test_missing_required(self, http: httpx.Client) -> None:
        error = error_of(http.post("/assistants", json={"name": "no model"}), 400)
        assert error == {
            "message": "Missing required parameter: 'model'.",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }


class TestBadInputChangesNothing:
    def test_assistants(self, client: OpenAI, http: httpx.Client) -> None:
        kept = client.beta.assistants.create(model="m", name="kept", metadata={"a": "b"})
        before = client.beta.assistants.list(limit=100).model_dump()
        bad_fields: list[dict[str, Any]] = [
            {"metadata": {f"k{i}": "v" for i in range(17)}},
            {"bogus": 1},
            {"tools": [{"type": "code_interpreter"}] * 129},
            {"temperature": 9},
            {"tool_resources": {"code_interpreter": {"file_ids": ["file-nope"]}}},
        ]
        for fields in bad_fields:
            error_of(http.post("/assistants", json={"model": "m", **fields}), 400)
            # a valid change next to a bad one: neither is applied
            error_of(http.post(f"/assistants/{kept.id}", json={"name": "changed", **fields}), 400)
        error_of(http.post("/assistants", json={"name": "no model"}), 400)
        error_of(
            http.post("/assistants", content=b"{", headers={"Content-Type": "application/json"}),
            400,
        )
        error_of(http.delete("/assistants/thread_x"), 400)
        error_of(http.delete("/assistants/asst_x"), 404)
        assert client.beta.assistants.list(limit=100).model_dump() == before
        assert client.beta.assistants.retrieve(kept.id) == kept

    def test_threads_and_messages(self, client: OpenAI, http: httpx.Client) -> None:
        thread = client.beta.threads.create(metadata={"a": "b"})
        client.beta.threads.messages.create(thread.id, role="user", content="one")
        before = client.beta.threads.messages.list(thread.id, limit=100).model_dump()
        bad: list[dict[str, Any]] = [
            {"role": "user", "content": "x", "metadata": {"k" * 65: "v"}},
            {"role": "system", "content": "x"},
            {"role": "user", "content": []},
            {"role": "user", "content": "x", "bogus": 1},
        ]
        for body in bad:
            error_of(http.post(f"/threads/{thread.id}/messages", json=body), 400)
        error_of(http.post(f"/threads/{thread.id}", json={"metadata": {"k": "v" * 513}}), 400)
        error_of(http.post("/threads", json={"messages": [{"role": "user"}]}), 400)
        assert client.beta.threads.messages.list(thread.id, limit=100).model_dump() == before
        assert client.beta.threads.retrieve(thread.id) == thread

    def test_files(self, client: OpenAI, http: httpx.Client) -> None:
        before = client.files.list().model_dump()
        response = http.post(
            "/files", files={"file": ("a.txt", b"abc")}, data={"purpose": "not-a-purpose"}
        )
        error_of(response, 400)
        error_of(http.post("/files", data={"purpose": "assistants"}), 400)
        assert client.files.list().model_dump() == before
