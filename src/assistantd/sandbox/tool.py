"""The code_interpreter server tool: the model's `python` function, run in the thread's sandbox.

The step's tool call shows the code as `code_interpreter.input` and what it produced as `logs` and
`image` outputs (OpenAI's shape). Figures become PNG files (purpose `assistants_output`) that lead
the next assistant message as `image_file` parts; new or changed files in /mnt/data become files
too, and `sandbox:/mnt/data/...` links to them in the final text get `file_path` annotations.

In a container (Responses API, `ToolContext.container_id`) the session is the container's: its
sandbox has the container's memory limit, its user files are copied in (and deleted ones taken
out) before each execution, and figures and written files become its container files (source
`assistant`), reported by path in `CodeInterpreterResult.container_files`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.containers import runtime as containers
from assistantd.containers.runtime import ContainerInputs
from assistantd.containers.service import DATA_DIR
from assistantd.db.models import File, Item, RunStep
from assistantd.errors import APIError
from assistantd.files import service as files
from assistantd.kit.ids import Prefix
from assistantd.kit.timeutil import now
from assistantd.sandbox.connection import KernelGone
from assistantd.sandbox.docker import DockerError, DockerUnavailable
from assistantd.sandbox.manager import CellOutcome, SandboxError, SandboxManager, Session
from assistantd.sandbox.names import find_links, safe_name, unique_name
from assistantd.settings import Settings
from assistantd.tools.base import ToolContext, ToolRegistry, ToolResult, ToolUnavailable

log = logging.getLogger(__name__)

FUNCTION_NAME = "python"
OUTPUT_PURPOSE = "assistants_output"
LIBRARIES = (
    "numpy, pandas, matplotlib, seaborn, scipy, scikit-learn, statsmodels, sympy, networkx, "
    "pillow, imageio, openpyxl, xlrd, xlsxwriter, odfpy, python-docx, pypdf, pdfminer, "
    "reportlab, beautifulsoup4, lxml, pyyaml, tabulate and the standard library"
)


@dataclass
class CodeInterpreterResult(ToolResult):
    files: dict[str, str] = field(default_factory=dict)  # path under /mnt/data -> file id
    # In a container: "/mnt/data/<path>" -> container file id, for written files and figures
    # (a figure's path is "/mnt/data/<call id>-figure-<n>.png"), and the figures' container
    # file ids in the order of the `image` outputs.
    container_files: dict[str, str] = field(default_factory=dict)
    container_images: list[str] = field(default_factory=list)


def parse_code(arguments: str) -> str | None:
    """The code of a call: `{"code": "..."}`, or the raw arguments when they are not JSON (some
    models send the code itself, as OpenAI's own `python` tool takes it)."""
    try:
        data = json.loads(arguments)
    except ValueError:
        return arguments if arguments.strip() else None
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return str(data["code"])
    if isinstance(data, str):
        return data
    return None


class CodeInterpreterTool:
    type = "code_interpreter"
    function_name = FUNCTION_NAME

    def __init__(
        self,
        settings: Settings,
        manager: SandboxManager | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self.manager = manager or SandboxManager(settings, sessions=sessions)

    @staticmethod
    def sandboxes_of(tools: ToolRegistry) -> SandboxManager | None:
        """The process's sandbox manager (the code interpreter's), if it has the tool."""
        tool = tools.get(CodeInterpreterTool.type)
        return tool.manager if isinstance(tool, CodeInterpreterTool) else None

    # --- ServerTool ------------------------------------------------------------------------------

    def function_schema(self, definition: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        description = (
            "Run Python 3 code in a stateful sandbox, like a Jupyter notebook: variables, imports "
            "and files persist between calls in this conversation. Printed output, the value of "
            "the last expression and errors (with their traceback) come back to you. "
            f"Installed: {LIBRARIES}. There is no internet access and pip install does not work. "
            "Files the user provided are in /mnt/data (os.listdir('/mnt/data') lists them). Save "
            "files meant for the user in /mnt/data and link them in your answer as "
            "sandbox:/mnt/data/<name>. matplotlib figures (plt.show(), or left open) are shown "
            "to the user as images: do not save or link them unless asked. "
            f"One call may run for {s.sandbox_exec_timeout_seconds:g} s; memory is limited to "
            f"{s.sandbox_memory_mb} MiB; the session is reset after "
            f"{s.sandbox_idle_timeout_seconds / 60:g} minutes unused."
        )
        return {
            "type": "function",
            "function": {
                "name": FUNCTION_NAME,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "description": "The Python code to run."}
                    },
                    "required": ["code"],
                },
            },
        }

    def initial_details(self, call_id: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "code_interpreter",
            "code_interpreter": {"input": "", "outputs": []},
        }

    async def check_available(self) -> None:
        await self.manager.check_available()

    def start(self) -> None:
        self.manager.watch()

    async def aclose(self) -> None:
        await self.manager.aclose()

    async def execute(self, ctx: ToolContext, call_id: str, arguments: str) -> ToolResult:
        code = parse_code(arguments)
        if code is None:
            message = (
                f'Error: call {FUNCTION_NAME} with {{"code": "<Python source>"}}; '
                f"got {arguments[:200]!r}."
            )
            return self._result(call_id, arguments, message, [{"type": "logs", "logs": message}])
        ctx.emit_delta({"type": "code_interpreter", "code_interpreter": {"input": code}})
        await self.manager.check_available()
        inputs, container = await self._input_files(ctx)
        try:
            session, outcome, added = await self._run(ctx, code, inputs, container)
        except DockerUnavailable as exc:
            raise ToolUnavailable(f"The code interpreter is unavailable: {exc}") from exc
        except DockerError as exc:
            raise ToolUnavailable(
                f"The code interpreter is unavailable: the Docker engine answered: {exc.message}"
            ) from exc
        note = None
        # A container's sandbox is the container's (no thread's earlier code ran in it).
        if outcome.cell == 1 and ctx.container_id is None and await self._ran_before(ctx):
            note = (
                "[This ran in a new Python session: the previous one ended, so variables, "
                "imports and files created by earlier code are gone.]"
            )
        return await self._record(ctx, call_id, code, session, outcome, added, note)

    async def annotate(
        self, ctx: ToolContext, text: str, results: list[ToolResult]
    ) -> list[dict[str, Any]]:
        known = dict(self.manager.session(ctx.project, ctx.sandbox_key).outputs)
        in_container: dict[str, tuple[str, str]] = {}  # file id -> (container file id, name)
        figures: list[tuple[str, str]] = []  # (container file id, name) of each image made
        for result in results:
            if isinstance(result, CodeInterpreterResult):
                known.update(result.files)
                for path, file_id in result.files.items():
                    cited = result.container_files.get(DATA_DIR + path)
                    if cited is not None:
                        in_container[file_id] = (cited, path.rsplit("/", 1)[-1])
                by_id = {cited: path for path, cited in result.container_files.items()}
                figures.extend(
                    (cited, by_id[cited].rsplit("/", 1)[-1])
                    for cited in result.container_images
                    if cited in by_id
                )
        annotations = []
        for start, end, link, file_id in find_links(text, known):
            annotation: dict[str, Any] = {
                "type": "file_path",
                "text": link,
                "start_index": start,
                "end_index": end,
                "file_path": {"file_id": file_id},
            }
            if ctx.container_id is not None and file_id in in_container:
                # The Responses API cites the container's file (`container_file_citation`).
                cited, name = in_container[file_id]
                annotation["container_file"] = {
                    "container_id": ctx.container_id,
                    "file_id": cited,
                    "filename": name,
                }
            annotations.append(annotation)
        if ctx.container_id is not None:
            # As OpenAI does, the Responses API cites each figure the code made, at the text's
            # start (no link in the text shows an image); the Assistants API has image parts.
            annotations.extend(
                {
                    "type": "container_file_citation",
                    "start_index": 0,
                    "end_index": 0,
                    "container_file_citation": {
                        "container_id": ctx.container_id,
                        "file_id": cited,
                        "filename": name,
                    },
                }
                for cited, name in figures
            )
        return annotations

    # --- running -------------------------------------------------------------------------------

    async def _run(
        self, ctx: ToolContext, code: str, inputs: list[File], container: ContainerInputs | None
    ) -> tuple[Session, CellOutcome, list[str]]:
        attempts = 0
        while True:
            session = self.manager.session(ctx.project, ctx.sandbox_key)
            async with session.lock:
                if session.retired:
                    continue
                if container is not None:
                    session.memory_mb = container.memory_mb
                try:
                    await self.manager.ensure(session, adopt=not ctx.new_container)
                    added = await self._copy_inputs(ctx, session, inputs, container)
                    return session, await self.manager.run(session, code), added
                except SandboxError as exc:
                    # The kernel refused a file (e.g. /mnt/data is full): the call fails with
                    # why, and the next one starts in a fresh sandbox.
                    if session.sandbox is not None:
                        await self.manager.containers.remove(session.sandbox)
                    session.sandbox = None
                    raise ToolUnavailable(
                        f"The files could not be copied into /mnt/data ({exc}), so the code did "
                        "not run; the session was restarted: variables, imports and files in "
                        "/mnt/data from before are gone."
                    ) from exc
                except (KernelGone, TimeoutError):
                    # The kernel went away while files were copied in: start over, once.
                    attempts += 1
                    if attempts > 1:
                        raise
                    if session.sandbox is not None:
                        await self.manager.containers.remove(session.sandbox)
                    session.sandbox = None

    async def _copy_inputs(
        self,
        ctx: ToolContext,
        session: Session,
        inputs: list[File],
        container: ContainerInputs | None,
    ) -> list[str]:
        added = []
        if container is not None:
            for file_id, name in list(session.inputs.items()):
                if file_id.startswith(Prefix.CONTAINER_FILE) and file_id not in container.present:
                    await self.manager.remove(session, file_id, name)  # deleted through the API
            for file_id, name, row in container.files:
                if file_id not in session.inputs:
                    await self.manager.put(session, file_id, name, ctx.blobs.read(row.blob_key))
                    added.append(name)
        for row in inputs:
            if row.id in session.inputs:
                continue
            taken = set(session.inputs.values())
            name = unique_name(safe_name(row.filename, row.id), taken)
            await self.manager.put(session, row.id, name, ctx.blobs.read(row.blob_key))
            added.append(name)
        return added

    async def _input_files(self, ctx: ToolContext) -> tuple[list[File], ContainerInputs | None]:
        """Files of the assistant's and thread's code_interpreter resources, and those attached
        to the thread's messages for code_interpreter, in that order; and the container's."""
        wanted = list(ctx.tool_resources.get("code_interpreter", {}).get("file_ids") or [])
        container = None
        async with ctx.sessions() as db:
            if ctx.container_id is not None:
                try:
                    container = await containers.inputs(
                        db, self.settings, ctx.project, ctx.container_id
                    )
                except APIError as exc:  # deleted or expired since the response began
                    raise ToolUnavailable(
                        f"The code interpreter's container is unavailable: {exc.message}"
                    ) from exc
            # A container's files are its own; a thread's sandbox gets its messages' files.
            attachments: Iterable[list[dict[str, Any]] | None] = []
            if container is None:
                attachments = await db.scalars(
                    select(Item.attachments).where(
                        Item.thread_id == ctx.thread_id, Item.project == ctx.project
                    )
                )
            for entries in attachments:
                for entry in entries or []:
                    if any(t.get("type") == "code_interpreter" for t in entry.get("tools") or []):
                        wanted.append(entry["file_id"])
            wanted = list(dict.fromkeys(wanted))
            if not wanted:
                return [], container
            rows = await db.scalars(
                select(File).where(
                    File.project == ctx.project,
                    File.id.in_(wanted),
                    or_(File.expires_at.is_(None), File.expires_at > now()),
                )
            )
            by_id = {row.id: row for row in rows}
        return [by_id[file_id] for file_id in wanted if file_id in by_id], container

    async def _ran_before(self, ctx: ToolContext) -> bool:
        """Whether code ran earlier in this thread (then a fresh kernel means lost state)."""
        async with ctx.sessions() as db:
            steps = await db.scalars(
                select(RunStep.step_details).where(
                    RunStep.thread_id == ctx.thread_id,
                    RunStep.type == "tool_calls",
                    RunStep.status == "completed",
                )
            )
            return any(
                call.get("type") == "code_interpreter"
                for details in steps
                for call in (details or {}).get("tool_calls", [])
            )

    # --- results -------------------------------------------------------------------------------

    async def _record(
        self,
        ctx: ToolContext,
        call_id: str,
        code: str,
        session: Session,
        outcome: CellOutcome,
        added: list[str],
        note: str | None,
    ) -> CodeInterpreterResult:
        image_ids: list[str] = []
        saved: dict[str, str] = {}
        sizes: dict[str, int] = {}
        made: list[tuple[str, File]] = []  # (path under /mnt/data, row), figures first
        recorded = containers.RecordedOutputs()
        async with ctx.sessions() as db:
            for number, image in enumerate(outcome.images, start=1):
                row = await files.create_from_bytes(
                    db,
                    ctx.blobs,
                    ctx.project,
                    filename=f"{call_id}-figure-{number}.png",
                    data=image,
                    purpose=OUTPUT_PURPOSE,
                )
                image_ids.append(row.id)
                made.append((row.filename, row))
            for output in outcome.files:
                row = await files.create_from_bytes(
                    db,
                    ctx.blobs,
                    ctx.project,
                    filename=safe_name(output.path, "file"),
                    data=output.data,
                    purpose=OUTPUT_PURPOSE,
                )
                saved[output.path] = row.id
                sizes[output.path] = len(output.data)
                made.append((output.path, row))
            if ctx.container_id is not None:
                recorded = await containers.record_outputs(db, ctx.project, ctx.container_id, made)
            await db.commit()
        session.outputs.update(saved)
        for key in recorded.blob_keys:  # the bytes a rewritten container file had
            await ctx.blobs.delete(key)
        # Written files are in the sandbox already: deleting one through the API takes it out.
        for path in saved:
            if DATA_DIR + path in recorded.by_path:
                session.inputs[recorded.by_path[DATA_DIR + path]] = path

        logs = _logs(outcome)
        outputs: list[dict[str, Any]] = []
        if logs:
            outputs.append({"type": "logs", "logs": logs})
        outputs.extend({"type": "image", "image": {"file_id": i}} for i in image_ids)

        lines = []
        if note:
            lines.append(note)
        if added:
            lines.append(f"[Files copied to /mnt/data: {', '.join(added)}]")
        if logs:
            lines.append(logs)
        lines.extend(f"[Image {i} is shown to the user.]" for i in image_ids)
        lines.extend(
            f"[File saved: sandbox:/mnt/data/{path} ({sizes[path]} bytes)]" for path in saved
        )
        cap = self.settings.sandbox_max_file_mb
        lines.extend(
            f"[File /mnt/data/{path} ({size} bytes) is larger than {cap} MiB and cannot be "
            "offered for download.]"
            for path, size in outcome.skipped
        )
        model_output = "\n".join(lines) if lines else "(the code ran and printed nothing)"
        result = self._result(call_id, code, model_output, outputs)
        # The kernel died or was stopped: the call failed (the model reads why, the run goes
        # on, the next call gets a fresh kernel).
        result.failed = outcome.restarted is not None
        # The Responses API shows a figure by URL: a data URL, which any client can open.
        figures = iter(outcome.images)
        result.item_data["outputs"] = [
            {"type": "image", "url": _data_url(next(figures))}
            if output["type"] == "image"
            else output
            for output in outputs
        ]
        result.message_parts = [
            {"type": "image_file", "image_file": {"file_id": i}} for i in image_ids
        ]
        result.files = saved
        result.container_files = recorded.by_path
        result.container_images = [
            recorded.by_path[DATA_DIR + name]
            for name, _ in made[: len(image_ids)]
            if DATA_DIR + name in recorded.by_path
        ]
        if outputs:
            ctx.emit_delta(
                {
                    "type": "code_interpreter",
                    "code_interpreter": {
                        "outputs": [{"index": n, **item} for n, item in enumerate(outputs)]
                    },
                }
            )
        return result

    def failure(self, call_id: str, arguments: str, message: str) -> ToolResult:
        code = parse_code(arguments) or arguments
        result = self._result(call_id, code, message, [{"type": "logs", "logs": message}])
        result.failed = True
        return result

    def _result(
        self, call_id: str, code: str, model_output: str, outputs: list[dict[str, Any]]
    ) -> CodeInterpreterResult:
        return CodeInterpreterResult(
            output=model_output,
            details={
                "id": call_id,
                "type": "code_interpreter",
                "code_interpreter": {"input": code, "outputs": outputs},
            },
            item_data={"code": code, "outputs": outputs},
        )


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _logs(outcome: CellOutcome) -> str:
    parts = []
    if outcome.output:
        parts.append(outcome.output.rstrip("\n"))
    if outcome.dropped:
        parts.append(f"[... {outcome.dropped} more characters of output were cut]")
    if outcome.error:
        parts.append(outcome.error["traceback"].rstrip("\n"))
    if outcome.restarted:
        parts.append(
            f"{outcome.restarted} The session was restarted: variables, imports and files in "
            "/mnt/data from before are gone."
        )
    return "\n".join(parts)
