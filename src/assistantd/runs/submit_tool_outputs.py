"""Submit function outputs to a run waiting in `requires_action`, and queue it again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.models import Run
from assistantd.errors import InvalidRequestError
from assistantd.items.kinds import new_item
from assistantd.kit.timeutil import now
from assistantd.runs import admission, events, render, repository, state
from assistantd.runs.schemas import SubmitToolOutputs
from assistantd.runs.signals import Signals, run_queued_on_commit
from assistantd.runs.state import RunStatus


def _outputs_by_call(run: Run, body: SubmitToolOutputs) -> dict[str, str]:
    required = run.required_action or {}
    calls = required.get("submit_tool_outputs", {}).get("tool_calls", [])
    expected = [call["id"] for call in calls]
    given: dict[str, str] = {}
    for index, item in enumerate(body.tool_outputs):
        if item.tool_call_id not in expected:
            raise InvalidRequestError(
                f"Invalid 'tool_outputs[{index}].tool_call_id': no tool call with id "
                f"'{item.tool_call_id}' is waiting for output in run {run.id}.",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        if item.tool_call_id in given:
            raise InvalidRequestError(
                f"Duplicate output for tool call '{item.tool_call_id}'; submit exactly one "
                "output per tool call.",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        given[item.tool_call_id] = item.output
    missing = [call_id for call_id in expected if call_id not in given]
    if missing:
        raise InvalidRequestError(
            "Expected tool outputs for call_ids "
            f"{expected}, got {list(given)}; missing: {missing}. All outputs must be submitted "
            "in a single request.",
            param="tool_outputs",
        )
    return given


async def submit_tool_outputs(
    session: AsyncSession, run: Run, body: SubmitToolOutputs, *, signals: Signals, limit: int
) -> Run:
    """Answer the run's function calls and queue it again: it counts against its project's
    `limit` of active runs once more (waiting for outputs, it did not), so a project at its
    limit gets OpenAI's 429 and the run keeps waiting for them."""
    if run.status != RunStatus.REQUIRES_ACTION:
        raise InvalidRequestError(
            f'Runs in status "{run.status}" do not accept tool outputs.', param=None
        )
    outputs = _outputs_by_call(run, body)
    await admission.admit(session, run.project, limit, may_start=False)
    # Queued again, it keeps its deadline: it expires if no worker takes it in time.
    moved = await state.transition(session, run.id, RunStatus.REQUIRES_ACTION, RunStatus.QUEUED)
    if not moved:  # expired or cancelled a moment ago
        await session.refresh(run)
        raise InvalidRequestError(
            f'Runs in status "{run.status}" do not accept tool outputs.', param=None
        )
    step = next(
        s
        for s in reversed(await repository.steps_of(session, run.id))
        if s.type == "tool_calls" and s.status == "in_progress"
    )
    details = dict(step.step_details)
    details["tool_calls"] = [
        {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
        if call["type"] == "function"
        else call
        for call in details["tool_calls"]
    ]
    step.step_details = details
    step.status = "completed"
    step.completed_at = now()
    # The outputs are items of the thread too: the model reads them there.
    session.add_all(
        new_item(
            run.project,
            "function_call_output",
            thread_id=run.thread_id,
            run_id=run.id,
            call_id=call_id,
            data={"output": output},
        )
        for call_id, output in outputs.items()
    )
    options = dict(run.options or {})
    if bool(body.stream) != bool(options.get("stream")):
        # Whether a streamer may wait in another process (see executor.HOLD_SECONDS).
        options["stream"] = bool(body.stream)
        await repository.update_run(session, run.id, {"options": options})
    await session.flush()
    await session.refresh(run)
    await events.append(
        session,
        signals,
        run.id,
        [("thread.run.step.completed", render.step(step)), ("thread.run.queued", render.run(run))],
    )
    run_queued_on_commit(session, signals)
    await admission.settle(session, run.project, limit)
    return run
