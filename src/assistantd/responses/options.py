"""A create request's hints and newest options: checked, kept in the response's `options`,
echoed on the response object, and turned into the Chat Completions parameters the backend gets.

Each does what OpenAI documents or the nearest honest thing this server can do:

- `presence_penalty` / `frequency_penalty` (the Open Responses specification's), `service_tier`,
  `prompt_cache_key`, `prompt_cache_retention`, `prompt_cache_options` (`mode`, a `30m` `ttl`),
  `safety_identifier`, `user` and `text.verbosity` go to the backend as the Chat Completions
  parameters of the same names (a backend that has no use for one ignores it) and are echoed.
- `prompt_cache_options.comparison_response_id` asks for diagnostics this server cannot make:
  `prompt_cache_diagnostics` says `unavailable` (or `comparison_response_not_found`);
  `prewarm` (warming a cache without an answer) is refused.
- `access_programs.cyber: standard` is what every request gets here; the Daybreak programs are
  refused. `image.context_compression` is `disabled` (images are sent as they are); asking for
  it `enabled` is refused. `moderation` is refused: no moderation model runs here.
- `background_options`: every background response runs as soon as a worker is free, which a
  `2h` or `8h` completion window allows; the windows keep OpenAI's rules (background, not
  streamed). `continuation_id` is kept.
- `client_metadata` (Codex CLI's) is kept with the response; OpenAI's Response has no field to
  echo it in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.errors import InvalidRequestError
from assistantd.responses import repository
from assistantd.responses.schemas import CreateResponse

# The tier a response shows: OpenAI shows `priority` for a `fast` request.
_SHOWN_TIER = {"fast": "priority"}
# The Chat Completions tier for a Responses one: Chat Completions has no `ultrafast`.
_CHAT_TIER = {"ultrafast": "priority"}


def _refuse(message: str, param: str, code: str = "unsupported_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def check(body: CreateResponse) -> None:
    """Refuse what this server cannot serve, naming it."""
    if body.moderation is not None:
        raise _refuse(
            "Moderation is not available on this server: no moderation model runs here. "
            "Leave out 'moderation'.",
            "moderation",
            "unsupported_parameter",
        )
    programs = body.access_programs
    if programs is not None and programs.cyber not in (None, "standard"):
        raise _refuse(
            f"The '{programs.cyber}' access program is not available on this server; only "
            "'standard' is.",
            "access_programs.cyber",
        )
    image = body.image
    if image is not None and image.context_compression == "enabled":
        raise _refuse(
            "Image context compression is not available on this server: images reach the "
            "model as they are. Use 'auto' or 'disabled'.",
            "image.context_compression",
        )
    cache = body.prompt_cache_options
    if cache is not None and cache.prewarm:
        raise _refuse(
            "Prewarming the prompt cache is not available on this server.",
            "prompt_cache_options.prewarm",
        )
    window = body.background_options.completion_window if body.background_options else None
    if window in ("2h", "8h") and (not body.background or body.stream):
        raise _refuse(
            f"The '{window}' completion window requires 'background': true and no streaming.",
            "background_options.completion_window",
        )


async def kept(session: AsyncSession, project: str, body: CreateResponse) -> dict[str, Any]:
    """The response's `options` entries for these fields (what is echoed, and `chat`)."""
    tier = body.service_tier or "auto"
    options: dict[str, Any] = {"service_tier": _SHOWN_TIER.get(tier, tier)}
    if body.presence_penalty is not None:
        options["presence_penalty"] = body.presence_penalty
    if body.frequency_penalty is not None:
        options["frequency_penalty"] = body.frequency_penalty
    if body.access_programs is not None and body.access_programs.cyber is not None:
        options["access_programs"] = {"cyber": body.access_programs.cyber}
    if body.image is not None and body.image.context_compression is not None:
        options["image"] = {"context_compression": "disabled"}
    cache = body.prompt_cache_options
    if cache is not None:
        shown: dict[str, str] = {"mode": cache.mode or "implicit", "ttl": cache.ttl or "30m"}
        if cache.comparison_response_id is not None:
            shown["comparison_response_id"] = cache.comparison_response_id
            found = await repository.get(session, project, cache.comparison_response_id)
            options["prompt_cache_diagnostics"] = {
                "type": "unavailable" if found is not None else "comparison_response_not_found"
            }
        options["prompt_cache_options"] = shown
    if body.background_options is not None:
        options["background_options"] = body.background_options.model_dump(exclude_none=True)
    if body.client_metadata is not None:
        options["client_metadata"] = body.client_metadata
    chat = chat_parameters(body)
    if chat:
        options["chat"] = chat
    return options


def chat_parameters(body: CreateResponse) -> dict[str, Any]:
    """The Chat Completions parameters these fields become (only those the client set)."""
    cache = body.prompt_cache_options
    cache_options: dict[str, str] = {}
    if cache is not None:
        if cache.mode is not None:
            cache_options["mode"] = cache.mode
        if cache.ttl == "30m":  # Chat Completions knows no other
            cache_options["ttl"] = cache.ttl
    tier = body.service_tier
    given = {
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "service_tier": _CHAT_TIER.get(tier, tier) if tier is not None else None,
        "prompt_cache_key": body.prompt_cache_key,
        "prompt_cache_retention": body.prompt_cache_retention,
        "prompt_cache_options": cache_options or None,
        "safety_identifier": body.safety_identifier,
        "user": body.user,
        "verbosity": body.text.verbosity if body.text is not None else None,
    }
    return {key: value for key, value in given.items() if value is not None}
