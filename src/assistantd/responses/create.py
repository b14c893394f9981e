"""Create a response: check the request, store its input items, and queue it on the run engine.

A response is a run without an assistant (see `db.models.Run`): its settings go into the run's
columns in the engine's (Assistants) shapes, and what only the Responses API has into
`options`, which the response object echoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.backends.routing import ModelRoute, ModelRouter, UnknownModelError
from assistantd.db.models import Item, Run, Thread
from assistantd.errors import InvalidRequestError, NotFoundError
from assistantd.items import convert
from assistantd.items.client_calls import OUTPUT_TYPES
from assistantd.items.kinds import CLIENT_CALL_TYPES
from assistantd.items.render import OUTPUT_LOGPROBS
from assistantd.items.schemas import (
    CompactionTriggerItem,
    InputItem,
    MessageItem,
)
from assistantd.kit.ids import THREAD_IDS, Prefix, created_at_of, new_id
from assistantd.kit.sealed import Sealer
from assistantd.mcp import approvals as mcp_approvals
from assistantd.mcp import params as mcp_params
from assistantd.responses import client_tools, repository, tools
from assistantd.responses import options as hints
from assistantd.responses.schemas import (
    ConversationRef,
    CreateResponse,
    InputTokensRequest,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from assistantd.runs import context, guard
from assistantd.runs.create import RunTaker, queue
from assistantd.runs.signals import Signals
from assistantd.runs.state import TERMINAL, RunStatus
from assistantd.settings import Settings


def _response_format(body: CreateResponse | InputTokensRequest) -> tuple[Any, dict[str, Any]]:
    """`text.format` as the engine's `response_format`, and `text` as echoed."""
    text = body.text
    fmt = text.format if text is not None else None
    echoed: dict[str, Any] = {
        "format": {"type": "text"},
        "verbosity": (text.verbosity if text is not None else None) or "medium",
    }
    if isinstance(fmt, TextFormatJsonSchema):
        schema = {"name": fmt.name, "schema": fmt.schema_, "strict": bool(fmt.strict)}
        if fmt.description is not None:
            schema["description"] = fmt.description
        echoed["format"] = {"type": "json_schema", **schema}
        return {"type": "json_schema", "json_schema": schema}, echoed
    if isinstance(fmt, TextFormatJsonObject):
        echoed["format"] = {"type": "json_object"}
        return {"type": "json_object"}, echoed
    return "auto", echoed


def _check_json_word(body: CreateResponse) -> None:
    """OpenAI's rule for `json_object`: the input must ask for JSON in words."""
    texts = [body.instructions or ""]
    if isinstance(body.input, str):
        texts.append(body.input)
    else:
        for item in body.input or []:
            if isinstance(item, MessageItem):
                if isinstance(item.content, str):
                    texts.append(item.content)
                else:
                    texts.extend(getattr(part, "text", "") for part in item.content)
    if not any("json" in text.lower() for text in texts):
        raise InvalidRequestError(
            "Response input messages must contain the word 'json' in some form to use "
            "'text.format' of type 'json_object'.",
            param="input",
        )


def _include(body: CreateResponse) -> list[str] | None:
    """What the response shows beyond the defaults: the request's `include`, and the output
    text's log probabilities when `top_logprobs` asks for them."""
    include: list[str] = list(body.include or ())
    if body.top_logprobs and OUTPUT_LOGPROBS not in include:
        include.append(OUTPUT_LOGPROBS)
    return include or None


def split_trigger(given: list[InputItem]) -> tuple[list[InputItem], bool]:
    """The input without its final `compaction_trigger` (a request control, never stored),
    and whether it had one (a trigger elsewhere is refused when the items are stored)."""
    if given and isinstance(given[-1], CompactionTriggerItem):
        return given[:-1], True
    return given, False


def _compaction(body: CreateResponse, triggered: bool) -> dict[str, Any] | None:
    """The response's compaction settings (`options["compaction"]`, see `AutoCompaction`):
    compact first when the context passes `threshold` tokens (None: a share of the model's
    prompt budget), or at once (`now`, a `compaction_trigger`: the response is then only the
    compaction)."""
    if triggered:
        return {"now": True, "threshold": None}
    for entry in body.context_management or []:
        return {"now": False, "threshold": entry.compact_threshold}
    return None


def model_route(models: ModelRouter, name: str) -> ModelRoute:
    """The route of the model a request names, or OpenAI's 400 `model_not_found`."""
    try:
        return models.resolve(name)
    except UnknownModelError as exc:
        raise InvalidRequestError(
            f"The requested model '{name}' does not exist.",
            param="model",
            code="model_not_found",
        ) from exc


def conversation_id(value: str | ConversationRef | None) -> str | None:
    return value.id if isinstance(value, ConversationRef) else value


async def require_conversation(session: AsyncSession, project: str, value: str) -> Thread:
    """The conversation (or Assistants thread) `value`, or OpenAI's 404."""
    row = None
    if value.startswith(THREAD_IDS):
        row = await session.get(Thread, value)
    if row is None or row.project != project:
        raise NotFoundError(f"Conversation with id '{value}' not found.")
    return row


async def previous_response(session: AsyncSession, project: str, response_id: str) -> Run:
    row = await repository.get(session, project, response_id)
    if row is None:
        raise InvalidRequestError(
            f"Previous response with id '{response_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if row.status not in TERMINAL:
        raise InvalidRequestError(
            f"Previous response with id '{response_id}' is still {row.status}; wait until it "
            "finishes before continuing it.",
            param="previous_response_id",
        )
    return row


def _check_exclusive(body: CreateResponse | InputTokensRequest) -> None:
    if body.previous_response_id is not None and body.conversation is not None:
        raise InvalidRequestError(
            "Mutually exclusive parameters: 'previous_response_id' and 'conversation'. Ensure "
            "you are only providing one of these parameters.",
            code="mutually_exclusive_parameters",
        )


async def _check_call_outputs(
    session: AsyncSession,
    project: str,
    body_input: list[Any],
    *,
    thread_id: str | None,
    chain: list[str],
) -> None:
    """Each output of a client's call (`function_call_output`, `custom_tool_call_output`...)
    answers a call made earlier: in this input, in the previous responses, or in the
    conversation."""
    earlier: set[str] = set()
    wanted: list[tuple[str, str]] = []  # (call id, output type)
    for item in body_input:
        kind = getattr(item, "type", None)
        if kind in CLIENT_CALL_TYPES and item.call_id is not None:
            earlier.add(item.call_id)
        elif kind in OUTPUT_TYPES:
            answers = item.call_id or (item.id if kind == "local_shell_call_output" else None)
            if answers is not None and answers not in earlier:
                wanted.append((answers, kind))
    if not wanted:
        return
    known: set[str] = set()
    if thread_id is not None or chain:
        rows = await session.execute(
            select(Item.call_id, Item.thread_id, Item.run_id, Item.input_of).where(
                Item.call_id.in_([call_id for call_id, _ in wanted]),
                Item.project == project,
                Item.type.in_(CLIENT_CALL_TYPES),
            )
        )
        for call_id, in_thread, run_id, input_of in rows:
            in_conversation = thread_id is not None and in_thread == thread_id
            if call_id is not None and (in_conversation or run_id in chain or input_of in chain):
                known.add(call_id)
    for call_id, kind in wanted:
        if call_id not in known:
            raise InvalidRequestError(
                f"No tool call found for {kind.replace('_', ' ')} with call_id {call_id}.",
                param="input",
            )


@dataclass
class Keep:
    """An unstored response a WebSocket connection keeps for its continuations (see
    `responses.kept`): the 1-minute sweep leaves it until `until` (epoch seconds), which the
    connection moves on while it lasts.

    When it continues a response the connection keeps (`continues_kept`, named by
    `previous_response_id`, which no other request can name): `chain` is that one and those it
    continues, newest first, and `context` their items in order, when the connection knows them
    (None: the database is read, as for a stored chain). `rows` is filled with the response's
    own input rows."""

    until: float
    continues_kept: bool = False
    chain: Sequence[str] | None = None
    context: Sequence[Item] | None = None
    rows: list[Item] = field(default_factory=list)


async def create_response(
    session: AsyncSession,
    project: str,
    body: CreateResponse,
    *,
    models: ModelRouter,
    signals: Signals,
    worker: RunTaker | None,
    sealer: Sealer,
    settings: Settings,
    earlier: Sequence[Item] = (),
    continues: str | None = None,
    keep: Keep | None = None,
    steerable: bool = False,
) -> Run:
    """Create and queue a response. `earlier` are items copied before the input, and
    `continues` the response they are the context of: a stored response that continues an
    unstored one a WebSocket connection keeps (see `responses.kept`), echoed as
    `previous_response_id`. `keep`: an unstored response the connection keeps.
    `steerable`: a WebSocket connection may steer it (`responses.steering`): its execution
    looks, before each model call after the first, whether it is to stop there."""
    if body.model is None:
        raise InvalidRequestError(
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    if not models.can_serve(body.model):
        raise InvalidRequestError(
            f"The requested model '{body.model}' does not exist.",
            param="model",
            code="model_not_found",
        )
    given_input = [] if body.input is None or isinstance(body.input, str) else body.input
    given_input, triggered = split_trigger(given_input)
    compaction = _compaction(body, triggered)
    if (
        not body.input
        and body.previous_response_id is None
        and continues is None
        and body.conversation is None
        and body.prompt is None
    ):
        raise InvalidRequestError(
            "One of \"input\" or \"previous_response_id\" or 'prompt' or 'conversation' must "
            "be provided.",
            code="missing_required_parameter",
        )
    hints.check(body)
    store = body.store is not False
    if body.background and not store:
        raise InvalidRequestError(
            "Background responses must be stored: 'background' requires 'store' to be true.",
            param="background",
        )
    toolset = tools.convert(body.tools, settings)
    toolset.engine = mcp_params.seal(toolset.engine, sealer)  # no credential stored in the clear
    engine_choice, echoed_choice = tools.tool_choice(body.tool_choice, toolset)
    response_format, text = _response_format(body)
    if response_format != "auto" and response_format["type"] == "json_object":
        _check_json_word(body)
    if body.prompt is not None:
        raise NotFoundError(f"Prompt with id '{body.prompt.id}' not found.")
    _check_exclusive(body)

    await tools.check_vector_stores(session, project, body.tools or [])
    thread: Thread | None = None
    chain: list[str] = []
    conversation = conversation_id(body.conversation)
    if conversation is not None:
        thread = await require_conversation(session, project, conversation)
        await guard.ensure_no_active_run(session, thread.id, for_run=True)
    if body.previous_response_id is not None:
        if keep is None or not keep.continues_kept:
            await previous_response(session, project, body.previous_response_id)
        if keep is not None and keep.chain is not None:
            chain = list(keep.chain)
        else:
            chain = await context.response_chain(session, project, body.previous_response_id)
    client_tools.check_loaded(given_input)
    await _check_call_outputs(
        session,
        project,
        [*earlier, *given_input],
        thread_id=thread.id if thread else None,
        chain=chain,
    )
    await mcp_approvals.check(
        session, project, given_input, thread_id=thread.id if thread else None, chain=chain
    )
    response_id = new_id(Prefix.RESPONSE)
    container_id, new_container = await tools.container_for(
        session,
        project,
        toolset,
        chain=chain,
        thread_id=thread.id if thread else None,
        owner_id=thread.id if thread else response_id,
    )
    for tool in toolset.engine:
        if tool["type"] == "code_interpreter":
            tool["container"] = container_id

    if isinstance(body.input, str):
        given_input = [MessageItem(role="user", content=body.input)]
    copies = [convert.copy_of(item, input_of=response_id) for item in earlier]  # first: in order
    rows = await convert.rows(
        session,
        project,
        given_input,
        input_of=response_id,
        sealer=sealer,
        message_ids=store or conversation is not None,
    )
    rows = [*copies, *rows] if copies else rows
    reasoning = body.reasoning
    options: dict[str, Any] = {
        "store": store,
        "background": bool(body.background),
        "stream": bool(body.stream),
        "text": text,
        "tools": toolset.echoed,
        "tool_choice": echoed_choice,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": (reasoning.summary or reasoning.generate_summary) if reasoning else None,
        },
        "max_tool_calls": body.max_tool_calls,
        "top_logprobs": body.top_logprobs or 0,
        "user": body.user,
        "safety_identifier": body.safety_identifier,
        "prompt_cache_key": body.prompt_cache_key,
        "prompt_cache_retention": body.prompt_cache_retention,
        **await hints.kept(session, project, body),
        "conversation": thread.id if thread else None,
        "container_id": container_id,
    }
    if compaction is not None:
        options["compaction"] = compaction
    if continues is not None:
        options["continues"] = continues
    if keep is not None:
        options["kept_until"] = keep.until  # not echoed
        keep.rows = rows
    if steerable:
        options["steerable"] = True  # not echoed
    if new_container:
        options["container_new"] = True  # not echoed: see ToolContext.new_container
    if body.stream_options is not None and body.stream_options.include_obfuscation is not None:
        options["include_obfuscation"] = body.stream_options.include_obfuscation
    run = Run(
        id=response_id,
        project=project,
        created_at=created_at_of(response_id),
        thread_id=thread.id if thread else None,
        assistant_id=None,
        previous_response_id=body.previous_response_id,
        status=RunStatus.QUEUED.value,
        model=body.model,
        instructions=body.instructions,
        tools=toolset.engine,
        metadata_=body.metadata or {},
        temperature=body.temperature,
        top_p=body.top_p,
        reasoning_effort=reasoning.effort if reasoning else None,
        max_prompt_tokens=None,
        max_completion_tokens=body.max_output_tokens,
        truncation_strategy={"type": body.truncation or "disabled"},
        tool_choice=engine_choice,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        response_format=response_format,
        include=_include(body),
        options=options,
        expires_at=None,
        attempts=0,
        model_turns=0,
        prompt_tokens=0,
        completion_tokens=0,
    )
    # Its input is all the model will see first, unless it continues something (but what a
    # connection keeps in memory): then it can start before the input is stored.
    first = rows if thread is None and not chain else None
    if thread is None and keep is not None and keep.context is not None:
        first = [*keep.context, *rows]
    limit = settings.project_max_active_runs
    return await queue(
        session,
        signals,
        run,
        [],
        worker,
        limit=limit,
        context=first,
        rows=rows,
        read_only_here=not store,  # an unstored response is never read but by its request
    )
