"""Migration 0003 on a database with Assistants data: messages become items, and the tool calls
recorded in earlier runs' steps become items a conversation (and the next run) can read.
Then the live server reads the upgraded thread through both APIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from openai import OpenAI
from sqlalchemy import create_engine, text

from assistantd.db.migrate import alembic_config
from assistantd.settings import Settings
from tests.runs.conftest import fresh_database
from tests.support.scripted_model import ScriptedModel
from tests.support.server import LiveServer

PROJECT = "default"
THREAD = "thread_1k8s0000000000000000000000aa"
RUN = "run_1k8s0001000000000000000000aa"
USER_MESSAGE = "msg_1k8s0000g00000000000000000aa"
STEP = "step_1k8s0002000000000000000000aa"
ANSWER = "msg_1k8s0003000000000000000000aa"


def _seed(url: str) -> None:
    engine = create_engine(url)
    details = {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_fn",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"}', "output": "found"},
            },
            {
                "id": "call_ci",
                "type": "code_interpreter",
                "code_interpreter": {
                    "input": "print(2)",
                    "outputs": [{"type": "logs", "logs": "2"}],
                },
                "_function_name": "python",
                "_arguments": '{"code": "print(2)"}',
                "_model_output": "2",
            },
        ],
    }
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO threads (id, project, created_at, tool_resources, metadata) "
                "VALUES (:id, :p, 1, '{}', '{}')"
            ),
            {"id": THREAD, "p": PROJECT},
        )
        for message_id, role, value, run_id in (
            (USER_MESSAGE, "user", "question", None),
            (ANSWER, "assistant", "answer", RUN),
        ):
            conn.execute(
                text(
                    "INSERT INTO messages (id, project, created_at, thread_id, role, content, "
                    "status, run_id, attachments, metadata) VALUES (:id, :p, 1, :t, :role, "
                    ":content, 'completed', :run, '[]', '{}')"
                ),
                {
                    "id": message_id,
                    "p": PROJECT,
                    "t": THREAD,
                    "role": role,
                    "run": run_id,
                    "content": json.dumps(
                        [{"type": "text", "text": {"value": value, "annotations": []}}]
                    ),
                },
            )
        conn.execute(
            text(
                "INSERT INTO runs (id, project, created_at, thread_id, assistant_id, status, "
                "model, instructions, tools, truncation_strategy, parallel_tool_calls, attempts, "
                "model_turns, prompt_tokens, completion_tokens) VALUES (:id, :p, 1, :t, "
                "'asst_x', 'completed', 'gpt-4o', '', '[]', '{}', true, 1, 2, 0, 0)"
            ),
            {"id": RUN, "p": PROJECT, "t": THREAD},
        )
        conn.execute(
            text(
                "INSERT INTO run_steps (id, project, created_at, run_id, thread_id, assistant_id, "
                "type, status, step_details, metadata) VALUES (:id, :p, 1, :r, :t, 'asst_x', "
                "'tool_calls', 'completed', :d, '{}')"
            ),
            {"id": STEP, "p": PROJECT, "r": RUN, "t": THREAD, "d": json.dumps(details)},
        )
    engine.dispose()


@pytest.fixture
def upgraded(database_url: str, work_dir: Path, tmp_path: Path) -> str:
    url = fresh_database(database_url, work_dir)
    settings = Settings(database_url=url, data_dir=tmp_path)
    config = alembic_config(settings)
    command.upgrade(config, "0002")
    sync = url.replace("sqlite+aiosqlite", "sqlite")
    _seed(sync)
    command.upgrade(config, "head")
    return url


def test_items_after_the_upgrade(upgraded: str, model: ScriptedModel, tmp_path: Path) -> None:
    engine = create_engine(upgraded.replace("sqlite+aiosqlite", "sqlite"))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type, role, call_id, data FROM items WHERE thread_id = :t ORDER BY position"
            ),
            {"t": THREAD},
        ).all()
    engine.dispose()
    assert [(kind, role, call) for kind, role, call, _ in rows] == [
        ("message", "user", None),
        ("function_call", None, "call_fn"),
        ("code_interpreter_call", None, "call_ci"),
        ("function_call_output", None, "call_fn"),
        ("message", "assistant", None),
    ]

    env = {
        "ASSISTANTD_DATABASE_URL": upgraded,
        "ASSISTANTD_DATA_DIR": str(tmp_path / "data"),
        "ASSISTANTD_MODEL_BASE_URL": model.base_url,
        "ASSISTANTD_MODEL_API_KEY": "sk-scripted",
    }
    server = LiveServer(env, tmp_path / "server.log").start()
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key="sk-open", max_retries=0)
        items = client.conversations.items.list(THREAD, order="asc").data
        assert [item.type for item in items] == [
            "message",
            "function_call",
            "code_interpreter_call",
            "function_call_output",
            "message",
        ]
        messages = client.beta.threads.messages.list(THREAD, order="asc").data
        assert [m.id for m in messages] == [USER_MESSAGE, ANSWER]
        marker = "after the upgrade"
        client.responses.create(model="gpt-4o", conversation=THREAD, input=marker)
        [sent] = model.requests(marker)
        assert sent["messages"][:4] == [
            {"role": "user", "content": "question"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_fn",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                    },
                    {
                        "id": "call_ci",
                        "type": "function",
                        "function": {"name": "python", "arguments": '{"code": "print(2)"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_fn", "content": "found"},
            {"role": "tool", "tool_call_id": "call_ci", "content": "2"},
        ]
        assert sent["messages"][4:] == [
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": marker},
        ]
    finally:
        server.stop()
