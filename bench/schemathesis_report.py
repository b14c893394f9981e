"""schemathesis against a live server, larger than the tests' runs: the server's own
`/openapi.json` with every check, and OpenAI's spec of /responses, /conversations and /containers
(`/work/shared/reference/responses-openapi.json`) with every check. Prints the unique failures by
kind, how many of the own spec's are refusals of rules a schema cannot state
(tests/support/schemathesis_cli.SEMANTIC), and every other one.

    python bench/schemathesis_report.py                    # SQLite, 50 examples per operation
    python bench/schemathesis_report.py --backend postgres --examples 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import schemathesis_cli  # noqa: E402
from tests.support.pg import drop_database, start_postgres  # noqa: E402
from tests.support.scripted_model import ScriptedModel  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

API_KEY = "sk-bench-schemathesis-0123456789"


def _print(
    title: str, failures: list[schemathesis_cli.Failure], report: Path, *, own: bool
) -> None:
    counts = schemathesis_cli.counts(failures)
    server_errors = sum(1 for f in failures if "ST101" in f.code or (f.status or 0) >= 500)
    print(f"\n== {title}: {len(failures)} failures (operation x kind), {server_errors} x 5xx")
    summary = report.with_suffix(".txt").read_text().splitlines()
    print("  schemathesis:", " ".join(line.strip() for line in summary if "generated" in line))
    for code, count in sorted(counts.items()):
        print(f"  {code}: {count}")
    if own:
        shown = [f for f in failures if not f.semantic]
        print(f"  of which rules no schema states (SEMANTIC): {len(failures) - len(shown)}")
        print(f"  mismatches: {len(shown)}")
    else:  # OpenAI's document gives most operations no error status: those are not listed
        shown = [f for f in failures if "ST103" not in f.code or "ST202" in f.code]
        print(f"  listed: all but the {len(failures) - len(shown)} undocumented statuses (ST103)")
    for failure in shown:
        print(f"  - {failure.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--examples", type=int, default=50, help="per operation")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="schemathesis-report-"))
    model = ScriptedModel(strict=False).start()
    database_url = f"sqlite+aiosqlite:///{work}/db.sqlite"
    postgres = args.backend == "postgres"
    if postgres:
        database_url = start_postgres(ROOT / ".tmp" / "pg")
    env = {
        "ASSISTANTD_DATA_DIR": str(work / "data"),
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_API_KEYS": f"bench:{API_KEY}",
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
        "ASSISTANTD_MODEL_RETRY_BASE_SECONDS": "0.05",
    }
    live = LiveServer(env, work / "server.log").start()
    worker = None
    if postgres:
        worker = LiveServer(env, work / "worker.log", command="worker").start()
    try:
        own = schemathesis_cli.run(
            f"{live.url}/openapi.json",
            live.url,
            API_KEY,
            work / "own.xml",
            max_examples=args.examples,
            include_path_regex="^/v1/",
            timeout=3600,
        )
        _print(f"own /openapi.json, --checks all ({args.backend})", own, work / "own.xml", own=True)
        reference = schemathesis_cli.run(
            str(schemathesis_cli.REFERENCE),
            f"{live.url}/v1",
            API_KEY,
            work / "reference.xml",
            max_examples=args.examples,
            timeout=3600,
        )
        title = f"responses-openapi.json, --checks all ({args.backend})"
        _print(title, reference, work / "reference.xml", own=False)
    finally:
        if worker is not None:
            worker.stop()
        live.stop()
        model.stop()
        drop_database(database_url)
    print(f"\nreports and logs: {work}")


if __name__ == "__main__":
    main()
