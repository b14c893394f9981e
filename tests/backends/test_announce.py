"""The start-up log names each model backend and says, in one line, when one does not answer."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer, free_port


def _started(tmp_path: Path, base_url: str) -> list[str]:
    env = {
        "ASSISTANTD_DATA_DIR": str(tmp_path / "data"),
        "ASSISTANTD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        "ASSISTANTD_MODEL_BASE_URL": base_url,
        "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        "ASSISTANTD_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "server.log"
    server = LiveServer(env, log).start()
    try:
        # the probe runs beside the start-up; its lines come within its 5 s bound
        for _ in range(200):  # 10 s
            lines = log.read_text().splitlines()
            if any("does not answer" in line or " answers" in line for line in lines):
                break
            time.sleep(0.05)
    finally:
        server.stop()
    return [line for line in log.read_text().splitlines() if "model backend" in line]


def test_a_backend_that_answers(tmp_path: Path, model: ScriptedModel) -> None:
    lines = _started(tmp_path, model.base_url)
    assert any(
        f"model backend (ASSISTANTD_MODEL_BASE_URL): {model.base_url}, models: every name" in line
        for line in lines
    ), lines
    assert any(f"model backend {model.base_url} answers" in line for line in lines), lines
    assert not any("WARNING" in line for line in lines), lines


def test_a_backend_that_does_not_answer_is_one_warning(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    lines = _started(tmp_path, url)
    warnings = [line for line in lines if "WARNING" in line]
    assert len(warnings) == 1, lines
    assert f"model backend {url} does not answer: cannot connect" in warnings[0]
    assert "Traceback" not in "\n".join(lines)
