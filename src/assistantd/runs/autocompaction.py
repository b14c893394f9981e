"""A response that compacts its own context before a model turn.

Asked for with `context_management: [{"type": "compaction", "compact_threshold": N}]` (compact
when the context passes N tokens; without N, at `DEFAULT_SHARE` of the prompt budget the model's
window leaves, or when it does not fit), or by a
final `compaction_trigger` input item (compact now; the response is then only the compaction,
as Codex's remote compaction expects). The compaction is an output item of the response (see
`runs.compaction`): its events go out as it is made, the model's later turns see the compacted
context, and so does whatever continues the response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistantd.backends.routing import ModelRoute
from assistantd.backends.tokens import estimate_message_tokens
from assistantd.db.models import Item, Run
from assistantd.items.kinds import new_item
from assistantd.runs import compaction, context
from assistantd.runs.deps import RunDeps
from assistantd.runs.recorder import Recorder

# Without a threshold: compact at this share of the prompt budget.
DEFAULT_SHARE = 0.9


class AutoCompaction:
    def __init__(self, deps: RunDeps, run: Run, recorder: Recorder, wanted: dict[str, Any]) -> None:
        self.deps = deps
        self.run = run
        self.recorder = recorder
        self.now = bool(wanted.get("now"))
        threshold = wanted.get("threshold")
        self.threshold = int(threshold) if threshold is not None else None
        self.reasoning_tokens = 0  # of the passes' completion tokens

    @classmethod
    def of(cls, deps: RunDeps, run: Run, recorder: Recorder) -> AutoCompaction | None:
        wanted = (run.options or {}).get("compaction")
        return cls(deps, run, recorder, wanted) if wanted else None

    def _done(self, items: Sequence[Item]) -> bool:
        """Whether this response has compacted already (an earlier attempt, or turn)."""
        return any(
            item.run_id == self.run.id and compaction.summary_of(item) is not None for item in items
        )

    def due(self, items: Sequence[Item], prompt_tokens: int | None, budget: int) -> bool:
        """Whether to compact before the next model turn, whose prompt is `prompt_tokens`
        before any truncation (None: it does not fit the model's window) of `budget`."""
        if self.now:
            return not self._done(items)
        if not compaction.compactable(items):
            return False
        if prompt_tokens is None:
            return True
        threshold = self.threshold if self.threshold is not None else budget * DEFAULT_SHARE
        return prompt_tokens > threshold

    def only(self, items: Sequence[Item]) -> bool:
        """Whether the response is the compaction alone (and it is made)."""
        return self.now and self._done(items)

    async def _context(
        self, route: ModelRoute, items: Sequence[Item], function_names: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The context to summarise: the turn's, without tools, its middle turns dropped if
        it does not fit the window (raises `PromptTooLong` when even that is too long)."""
        run = self.run
        fitted = Run(
            id=run.id,
            project=run.project,
            instructions=run.instructions,
            truncation_strategy={"type": "auto"},
            max_prompt_tokens=None,
            prompt_tokens=0,
        )
        window = await self.deps.windows.of(route)
        budget, reason = context.prompt_budget(fitted, window, route.max_output_tokens)
        budget -= estimate_message_tokens([compaction.summary_message(compaction.PROMPT)])
        async with self.deps.reads() as session:
            built = await context.build(
                session,
                self.deps.blobs,
                fitted,
                items,
                budget=budget,
                budget_reason=reason,
                function_names=function_names,
                reasoning_to_backend=route.reasoning_to_backend,
            )
        return built.messages

    async def compact(
        self, route: ModelRoute, items: Sequence[Item], function_names: dict[str, str]
    ) -> Item:
        """Summarise the context of `items` into the response's next output item, streaming
        its events; the run's token counts include the pass."""
        run = self.run
        messages = await self._context(route, items, function_names)
        item = new_item(
            run.project, compaction.KIND, thread_id=self.recorder.items_thread_id, run_id=run.id
        )
        self.recorder.compaction_started(item)
        announced = False

        def sampled() -> None:
            nonlocal announced
            if not announced:
                announced = True
                self.recorder.compaction_progress(item)

        summary = await compaction.summarize(
            self.deps.backend,
            route,
            messages,
            reasoning_effort=run.reasoning_effort,
            on_text=sampled,
        )
        token = compaction.seal(self.deps.sealer, run.project, summary.text)
        item.data = compaction.item_data(token, summary.text)
        self.recorder.compaction_done(item)
        run.prompt_tokens += summary.prompt_tokens
        run.completion_tokens += summary.completion_tokens
        self.reasoning_tokens += summary.reasoning_tokens
        return item
