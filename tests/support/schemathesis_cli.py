"""schemathesis's own command line (`schemathesis run`) against a live server, its failures read
back from its JUnit report: what tests/test_openapi.py and bench/schemathesis_report.py share.

The server's own `/openapi.json` should give no failure of any check (`--checks all`), except
where a request the schema allows breaks a rule JSON Schema cannot state (`SEMANTIC`): those
are the server's 400s on purpose, each named here with its reason, and nothing else may be one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REFERENCE = Path("/work/shared/reference/responses-openapi.json")
SEED = 1

# What schemathesis's positive data (a request the schema allows) may still be refused for: a
# rule between fields, between a request and the stored state, or the server's own limits.
SEMANTIC: dict[str, str] = {
    r"NUL character": "no text anywhere holds a NUL (the request guard's rule, every string)",
    r"Expected an ID that begins with its object's prefix": "a list's cursor names an item, or "
    "has an id's prefix (clients may give the items they send ids of their own)",
    r"No (file|vector store) found with id": "what an id refers to must exist (OpenAI's 400)",
    r"expected an integer, but got a decimal": "JSON Schema counts 11.0 as an integer; OpenAI's "
    "validation (and so the server's) refuses it",
    r"chunk_overlap_tokens must not exceed half": "a rule between two fields",
    r"Provide exactly one of 'file_ids' or 'files'": "a rule between two fields",
    r"Mutually exclusive parameters": "a rule between two fields",
    r"One of 'input' or 'previous_response_id' must be provided": "a rule between two fields",
    r"Missing required parameter: 'model'": "required unless a stored prompt names a model",
    r"needs its call's id in 'id'": "a rule between an item's fields",
    r"'query' must not be empty": "some query must have a non-blank character",
    r"only a pending upload": "an upload's state",
    r"The md5 of the uploaded bytes": "the md5 must match the uploaded bytes",
    r"integer above maximum value": "schemathesis rounds 2**63-1 through a float",
    r"an upload can be at most": "the server's configured upload size",
}

# Fixed paths that also match a route with an id: `GET /responses/compact` is answered by
# `GET /responses/{response_id}` (a 404: no response has that id), not with a 405.
SHADOWED = frozenset({"/v1/responses/compact", "/v1/responses/input_tokens", "/v1/threads/runs"})


@dataclass(frozen=True)
class Failure:
    operation: str  # "POST /v1/responses", or "Stateful tests"
    code: str  # schemathesis's: ST101 (server error), ST202 (schema-valid request rejected)...
    text: str

    @property
    def status(self) -> int | None:
        found = re.search(r"^\[(\d{3})\]", self.text, re.MULTILINE)
        return int(found.group(1)) if found else None

    @property
    def semantic(self) -> bool:
        """A schema-valid request refused for a rule the schema cannot state (`SEMANTIC`), or
        an undeclared method on a shadowed path."""
        if self.code == "ST204":
            return self.operation.split(" ")[-1] in SHADOWED
        if self.code != "ST202" or self.status != 400:
            return False
        return any(re.search(pattern, self.text) for pattern in SEMANTIC)

    def summary(self) -> str:
        body = re.search(r"^\s+`(.*)`$", self.text, re.MULTILINE)
        return f"{self.code} {self.operation} [{self.status}] {body.group(1)[:300] if body else ''}"


def run(
    spec: str,
    base_url: str,
    api_key: str,
    report: Path,
    *,
    checks: str = "all",
    max_examples: int = 10,
    phases: str | None = None,
    include_path_regex: str | None = None,
    timeout: float = 900,
) -> list[Failure]:
    """`schemathesis run` of `spec` against `base_url`; its failures (unique per operation and
    kind of failure, as schemathesis deduplicates them)."""
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        spec,
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {api_key}",
        "--checks",
        checks,
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "60",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    if phases:
        args += ["--phases", phases]
    if include_path_regex:
        args += ["--include-path-regex", include_path_regex]
    # In the report's folder: schemathesis keeps a cache (`.schemathesis/`) where it runs.
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, cwd=report.parent
    )
    report.with_suffix(".txt").write_text(done.stdout + done.stderr)  # its own summary
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report:\n{done.stdout[-3000:]}{done.stderr}")
    return failures_of(report)


def failures_of(report: Path) -> list[Failure]:
    found: list[Failure] = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for element in case.iter("failure"):
            found.append(
                Failure(case.get("name", "?"), element.get("message", "?"), element.text or "")
            )
        for element in case.iter("error"):  # "Schema Error", a network error...
            text = element.text or ""
            found.append(Failure(case.get("name", "?"), text.split("\n", 1)[0].strip(), text))
    return found


def counts(failures: list[Failure]) -> Counter[str]:
    return Counter(failure.code for failure in failures)
