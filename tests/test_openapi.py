"""The server's `/openapi.json` tells the truth: schemathesis, every check (`--checks all`), finds
no request the server answers otherwise than the document says; and OpenAI's own spec of
/responses, /conversations and /containers, sent at the server, gets no 5xx.

Few examples per operation keep each run to a minute or two; bench/schemathesis_report.py runs
the larger version and prints the counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import schemathesis_cli
from tests.support.server import LiveServer

EXAMPLES = 5


def test_own_spec_has_no_mismatch(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    failures = schemathesis_cli.run(
        f"{server.url}/openapi.json",
        server.url,
        api_key,
        tmp_path / "own.xml",
        max_examples=EXAMPLES,
        include_path_regex="^/v1/",
    )
    unexpected = [failure for failure in failures if not failure.semantic]
    assert not unexpected, "\n".join(failure.summary() for failure in unexpected)


def test_reference_spec_gets_no_server_error(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    if not schemathesis_cli.REFERENCE.exists():
        pytest.skip(f"no {schemathesis_cli.REFERENCE}")
    failures = schemathesis_cli.run(
        str(schemathesis_cli.REFERENCE),
        f"{server.url}/v1",
        api_key,
        tmp_path / "reference.xml",
        checks="not_a_server_error",
        max_examples=EXAMPLES,
    )
    # Parts of OpenAI's document schemathesis cannot turn into requests are its own errors.
    failures = [failure for failure in failures if failure.code != "Schema Error"]
    assert not failures, "\n".join(failure.summary() for failure in failures)


def test_every_operation_documents_its_errors(server: LiveServer) -> None:
    document: dict[str, Any] = httpx.get(f"{server.url}/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    paths = document["paths"]
    assert not [path for path in paths if path.startswith("/openai")]  # the /v1 aliases
    for path, item in paths.items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            if path.startswith("/v1/"):
                for status in ("400", "401", "404", "409", "429", "503"):
                    schema = responses[status]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in paths["/v1/threads/{thread_id}/runs/{run_id}"]["get"]["parameters"]
    }
    assert parameters["thread_id"]["pattern"] == "^(thread_|conv_)[A-Za-z0-9_-]+$"
    assert parameters["run_id"]["pattern"] == "^run_[A-Za-z0-9_-]+$"
