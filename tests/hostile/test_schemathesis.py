"""Schema-driven fuzzing of the Assistants API (OpenAI's reference, reduced to the routes
served here: data/assistants-openapi.conformance.yaml) against the live hostile server: no
request, however malformed, may get a 5xx. A bounded number of examples per operation keeps it
to a minute or two.

The operations are driven by hand from schemathesis's strategies (not its pytest plugin, which
does not work with the pytest this suite pins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.hostile.conftest import Hostile

SPEC = Path(__file__).parent / "data" / "assistants-openapi.conformance.yaml"
EXAMPLES = 20


def test_no_server_error(hostile: Hostile) -> None:
    schema = schemathesis.openapi.from_path(SPEC)
    schema.config.update(base_url=f"{hostile.url}/v1")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(headers=hostile.headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        call()
    assert operations > 40
    assert not failures, "\n".join(failures)
