"""Schema-driven fuzzing of the Assistants API (OpenAI's reference, reduced to the routes
served here: data/assistants-openapi.conformance.yaml) against the live hostile server: no
request, however malformed, may get a 5xx. A bounded number of examples per operation keeps it
to a minute or two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.hostile.conftest import Hostile

SPEC = Path(__file__).parent / "data" / "assistants-openapi.conformance.yaml"
EXAMPLES = 5


@pytest.fixture(scope="module")
def conformance(hostile: Hostile) -> Any:
    schema = schemathesis.openapi.from_path(SPEC)
    schema.config.update(base_url=f"{hostile.url}/v1", headers=hostile.headers)
    return schema


schema = schemathesis.pytest.from_fixture("conformance")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error(case: Any, hostile: Hostile) -> None:
    case.call_and_validate(headers=hostile.headers, checks=[not_a_server_error], timeout=30)
