"""The sandbox kernel: a persistent Python process inside the container that runs cells.

It runs as `python3 -c <this file> <config json>` (standard library only: it never imports
assistantd). assistantd writes one JSON request per line to its stdin and reads one JSON reply per
line from its stdout; the cell's own stdout/stderr never touch that channel: the protocol uses
private copies of fds 0/1 (closed in forked children), and fds 0, 1 and 2 are pointed at
/dev/null and a capture file in memory (a memfd, not on a file system the code can fill, sealed
at a fixed size). Like a notebook kernel, variables, imports and files persist
between cells.

Requests (`id` is echoed back in the reply):
  {"op": "ping", "owner"?: str}                   -> cells run, idle seconds, input files held,
                                                     owner (the process managing it; set if given)
  {"op": "exec", "code": str, "timeout": float}   -> output, error, images (PNG), changed files
  {"op": "put", "name", "file_id", "data" (base64), "append": bool, "last": bool}
  {"op": "read", "path", "offset", "length"}      -> a chunk of a file under /mnt/data
  {"op": "remove", "name", "file_id"}             -> the file under /mnt/data is deleted
The kernel says {"event": "ready"} once it has started (and imported the preload modules), and
exits by itself after `idle_timeout` seconds without a request.
"""

from __future__ import annotations

import ast
import base64
import builtins
import fcntl
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import linecache
import os
import select
import shutil
import signal
import stat
import sys
import time
import traceback
import types
from typing import Any

DATA = "/mnt/data"
CAPTURE_BYTES = 8 * 1024 * 1024  # what a cell's processes may print before writes fail
MPL_CACHE_SOURCE = "/opt/sandbox/matplotlib"
KERNEL_FILE = sys._getframe().f_code.co_filename  # "<string>" when run with `python3 -c`


class ExecutionTimeout(BaseException):
    """The cell ran past its time limit (a BaseException, so `except Exception` can't eat it)."""


class Capture(io.TextIOBase):
    """sys.stdout/sys.stderr during a cell: writes go to fd 1 (the capture file), up to a cap."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.size = 0
        self.dropped = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        piece = text[: max(room, 0)]
        self.dropped += len(text) - len(piece)
        if piece:
            self.size += len(piece)
            try:
                _write_all(1, piece.encode("utf-8", "backslashreplace"))
            except OSError:  # the capture is full (the cell's subprocesses printed a lot)
                self.dropped += len(piece)
        return len(text)

    def flush(self) -> None:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _capture_file() -> int:
    """The cells' output file: in memory, `CAPTURE_BYTES` long and sealed against growing, so
    neither a full /tmp nor a flood of output can break the kernel's own bookkeeping. Writes go
    at the shared offset, which each cell rewinds."""
    fd = os.memfd_create("cell-output", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, CAPTURE_BYTES)
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK)
    except OSError:  # no seals here: output past the size grows it, bounded by the memory limit
        pass
    return fd


def _safe_target(name: str) -> str:
    """`name` as a path directly under /mnt/data, refusing anything that could leave it."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"unsafe file name {name!r}")
    path = os.path.join(DATA, name)
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(DATA):
        raise ValueError(f"unsafe file name {name!r}")
    return path


class Kernel:
    def __init__(self, config: dict[str, Any]) -> None:
        self.idle_timeout = float(config.get("idle_timeout", 3600))
        self.owner = str(config.get("owner", ""))
        self.max_output = int(config.get("max_output_chars", 20000))
        self.max_files = int(config.get("max_files", 50))
        self.main_pid = os.getpid()
        # The protocol: private, non-inheritable copies of stdin/stdout.
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.diag = os.dup(2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        capture = _capture_file()
        os.dup2(capture, 1)
        os.dup2(capture, 2)
        os.close(capture)
        sys.stdin = io.StringIO("")
        os.register_at_fork(after_in_child=self._forget_protocol)
        self.buffer = b""
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        self.cells = 0
        self.inputs: dict[str, str] = {}  # file id -> name under /mnt/data
        self.last_active = time.monotonic()
        self.shown: list[bytes] = []  # figures plt.show() captured during the current cell
        self.timeout = 0.0
        self.in_cell = False
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGINT, self._on_interrupt)
        os.makedirs(DATA, exist_ok=True)
        os.chdir(DATA)
        self._matplotlib_setup()
        for module in config.get("preload", []):
            try:
                __import__(module)
            except Exception as exc:  # a missing library only costs its own import later
                self._diag(f"preload {module}: {exc!r}")
        if "matplotlib.pyplot" in sys.modules:
            self._warm_figures()

    # --- plumbing -----------------------------------------------------------------------------

    def _forget_protocol(self) -> None:
        for fd in (self.proto_in, self.proto_out):
            try:
                os.close(fd)
            except OSError:
                pass

    def _diag(self, text: str) -> None:
        try:
            _write_all(self.diag, (text + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    def send(self, message: dict[str, Any]) -> None:
        _write_all(self.proto_out, json.dumps(message).encode() + b"\n")

    def _next_request(self) -> dict[str, Any] | None:
        """The next request, or None on end of input or after the idle timeout."""
        while b"\n" not in self.buffer:
            remaining = self.idle_timeout - (time.monotonic() - self.last_active)
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.proto_in], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.proto_in, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        request: dict[str, Any] = json.loads(line)
        return request

    def serve(self) -> None:
        self.send({"event": "ready", "pid": os.getpid()})
        while True:
            request = self._next_request()
            if request is None:
                return
            try:
                reply = self.handle(request)
            except Exception as exc:
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            reply["id"] = request.get("id")
            self.send(reply)
            if request.get("op") != "ping":  # asking whether it is idle is not using it
                self.last_active = time.monotonic()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            if request.get("owner"):
                self.owner = str(request["owner"])
            return {
                "ok": True,
                "owner": self.owner,
                "cells": self.cells,
                "idle": time.monotonic() - self.last_active,
                "inputs": self.inputs,
            }
        if op == "exec":
            return self.run_cell(str(request["code"]), float(request.get("timeout", 60)))
        if op == "put":
            return self.put(request)
        if op == "read":
            return self.read(request)
        if op == "remove":
            return self.remove(request)
        raise ValueError(f"unknown op {op!r}")

    # --- files ----------------------------------------------------------------------------------

    def put(self, request: dict[str, Any]) -> dict[str, Any]:
        path = _safe_target(str(request["name"]))
        mode = "ab" if request.get("append") else "wb"
        with open(path, mode) as fh:
            fh.write(base64.b64decode(request.get("data", "")))
        if request.get("last", True):
            self.inputs[str(request["file_id"])] = str(request["name"])
        return {"ok": True, "path": path}

    def read(self, request: dict[str, Any]) -> dict[str, Any]:
        path = os.path.normpath(os.path.join(DATA, str(request["path"])))
        if not path.startswith(DATA + "/"):
            raise ValueError("path outside /mnt/data")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = os.pread(fd, int(request["length"]), int(request.get("offset", 0)))
        finally:
            os.close(fd)
        return {"ok": True, "data": base64.b64encode(data).decode()}

    def remove(self, request: dict[str, Any]) -> dict[str, Any]:
        path = os.path.normpath(os.path.join(DATA, str(request["name"])))
        if not path.startswith(DATA + "/"):
            raise ValueError("path outside /mnt/data")
        try:
            os.unlink(path)  # a symbolic link goes itself; what it points at stays
        except FileNotFoundError:
            pass
        self.inputs.pop(str(request.get("file_id")), None)
        return {"ok": True}

    def _snapshot(self) -> dict[str, tuple[int, int, int]]:
        found: dict[str, tuple[int, int, int]] = {}
        for folder, _dirs, names in os.walk(DATA):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    found[os.path.relpath(path, DATA)] = (
                        info.st_size,
                        info.st_mtime_ns,
                        info.st_ino,
                    )
            if len(found) > 10_000:
                break
        return found

    # --- matplotlib -----------------------------------------------------------------------------

    def _matplotlib_setup(self) -> None:
        target = os.environ.get("MPLCONFIGDIR", "/tmp/matplotlib")
        if os.path.isdir(MPL_CACHE_SOURCE) and not os.path.exists(target):
            try:
                shutil.copytree(MPL_CACHE_SOURCE, target)
            except OSError as exc:
                self._diag(f"matplotlib cache: {exc!r}")
        sys.meta_path.insert(0, _PyplotHook(self))

    def _warm_figures(self) -> None:
        """Draw one figure, with text, to a PNG the way cells' figures are: the first figure of
        a process loads the fonts and sets up the renderer (~100 ms), which a warm kernel then
        has done before its first cell. Outside pyplot, so no figure number is taken."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg  # type: ignore[import-not-found]
            from matplotlib.figure import Figure  # type: ignore[import-not-found]

            fig = Figure()
            FigureCanvasAgg(fig)
            axes = fig.add_subplot()
            axes.plot([0.0, 1.0], [0.0, 1.0], label="warm")
            axes.set_title("warm")
            axes.legend()
            axes.grid(True)
            self._png(fig)
        except Exception as exc:
            self._diag(f"warming figures: {exc!r}")

    def patch_pyplot(self, plt: Any) -> None:
        """`plt.show()` puts the open figures in the cell's output instead of warning."""
        kernel = self

        def show(*_args: Any, **_kwargs: Any) -> None:
            kernel.shown.extend(kernel._render_figures(plt))

        plt.show = show
        figure_module: Any = sys.modules.get("matplotlib.figure")
        if figure_module is not None:

            def figure_show(fig: Any, *_args: Any, **_kwargs: Any) -> None:
                kernel.shown.append(kernel._png(fig))
                plt.close(fig)

            figure_module.Figure.show = figure_show

    def _png(self, fig: Any) -> bytes:
        out = io.BytesIO()
        fig.savefig(out, format="png", bbox_inches=self._tight_box(fig))
        return out.getvalue()

    @staticmethod
    def _tight_box(fig: Any) -> Any:
        """Jupyter's crop (`bbox_inches="tight"`), measured without the full draw matplotlib
        makes to find it (a sixth of the quickstart's sine wave), where the box comes out the
        same: a figure without a layout engine whose axes are all flat (a constrained layout
        or a 3-D axes only settles in a draw)."""
        engine = getattr(fig, "get_layout_engine", lambda: None)()
        if engine is not None or any(ax.name != "rectilinear" for ax in fig.axes):
            return "tight"
        try:
            pad = sys.modules["matplotlib"].rcParams["savefig.pad_inches"]
            return fig.get_tightbbox(fig.canvas.get_renderer()).padded(pad)
        except Exception:
            return "tight"

    def _render_figures(self, plt: Any) -> list[bytes]:
        images = [self._png(plt.figure(number)) for number in plt.get_fignums()]
        plt.close("all")
        return images

    # --- cells ----------------------------------------------------------------------------------

    def _on_alarm(self, _signum: int, _frame: Any) -> None:
        raise ExecutionTimeout(
            f"the code ran for longer than the {self.timeout:g} s limit and was stopped"
        )

    def _on_interrupt(self, _signum: int, _frame: Any) -> None:
        """assistantd interrupts a cell whose run was cancelled; between cells it is a no-op."""
        if self.in_cell:
            raise KeyboardInterrupt

    def run_cell(self, code: str, timeout: float) -> dict[str, Any]:
        self.cells += 1
        name = f"<cell-{self.cells}>"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        before = self._snapshot()
        capture = Capture(self.max_output)
        os.lseek(1, 0, os.SEEK_SET)  # fds 1 and 2 share this offset with the cell's children
        self.shown = []
        self.timeout = timeout
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        error: dict[str, str] | None = None
        timed_out = False
        started = time.monotonic()
        try:
            try:
                self.in_cell = True
                signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
                self._execute(code, name)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self.in_cell = False
        except ExecutionTimeout as exc:
            timed_out = True
            error = self._error(exc)
        except BaseException as exc:
            error = self._error(exc)
        finally:
            if os.getpid() != self.main_pid:  # a forked child must never reach the protocol
                os._exit(0)
            sys.stdout, sys.stderr = saved
        duration = time.monotonic() - started
        images = list(self.shown)
        self.shown = []
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                images.extend(self._render_figures(plt))
            except Exception as exc:
                extra = f"\nCould not render a figure: {type(exc).__name__}: {exc}\n"
                os.write(1, extra.encode())
        self._stop_strays()
        output, dropped = self._read_output(capture)
        after = self._snapshot()
        changed = sorted(
            (path for path, sig in after.items() if before.get(path) != sig),
            key=lambda path: after[path][1],
        )
        return {
            "ok": True,
            "cell": self.cells,
            "output": output,
            "dropped": dropped,
            "error": error,
            "timed_out": timed_out,
            "duration": duration,
            "images": [base64.b64encode(image).decode() for image in images],
            "files": [{"path": path, "size": after[path][0]} for path in changed],
        }

    def _execute(self, code: str, name: str) -> None:
        tree = ast.parse(code, name, "exec")
        last: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            tree.body.pop()
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        compiled = compile(tree, name, "exec", flags=flags)
        self._run(compiled)
        if last is not None:
            value = self._run(compile(last, name, "eval", flags=flags))
            if value is not None:
                self.namespace["_"] = value
                sys.stdout.write(repr(value) + "\n")

    def _run(self, compiled: types.CodeType) -> Any:
        result = eval(compiled, self.namespace)
        if compiled.co_flags & 0x80:  # CO_COROUTINE: top-level await
            import asyncio

            loop = asyncio.new_event_loop()
            try:
                result = loop.run_until_complete(result)
            finally:
                loop.close()
        return result

    def _error(self, exc: BaseException) -> dict[str, str]:
        """The traceback as Python prints it, without the kernel's own frames."""
        report = traceback.TracebackException.from_exception(exc)
        for part in _chain(report):
            part.stack = traceback.StackSummary.from_list(
                [frame for frame in part.stack if frame.filename != KERNEL_FILE]
            )
        text = "".join(report.format())
        return {"name": type(exc).__name__, "value": str(exc), "traceback": text}

    def _read_output(self, capture: Capture) -> tuple[str, int]:
        size = os.lseek(1, 0, os.SEEK_CUR)  # written this cell
        raw = os.pread(1, min(size, self.max_output * 4), 0)
        text = raw.decode("utf-8", "replace")
        dropped = capture.dropped
        if len(text) > self.max_output:
            dropped += len(text) - self.max_output
            text = text[: self.max_output]
        if size > len(raw):
            dropped += size - len(raw)
        return text, dropped

    def _stop_strays(self) -> None:
        """Processes the cell started do not outlive it (a fork bomb ends with its cell)."""
        me = os.getpid()
        for _ in range(100):
            others = []
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in (1, me):
                    continue
                try:
                    with open(f"/proc/{entry}/stat", "rb") as fh:
                        state = fh.read().rsplit(b")", 1)[1].split()[0]
                except (OSError, IndexError):
                    continue
                if state != b"Z":
                    others.append(entry)
            while True:  # reap our own dead children
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
            if not others:
                return
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.005)


def _chain(report: traceback.TracebackException) -> list[traceback.TracebackException]:
    seen: list[traceback.TracebackException] = []
    pending = [report]
    while pending:
        part = pending.pop()
        if any(part is other for other in seen):
            continue
        seen.append(part)
        pending.extend(p for p in (part.__cause__, part.__context__) if p is not None)
    return seen


class _PyplotHook(importlib.abc.MetaPathFinder):
    """Patches matplotlib.pyplot the moment it is first imported."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def find_spec(
        self,
        fullname: str,
        path: Any = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        original = loader.exec_module
        kernel = self.kernel

        def exec_module(module: types.ModuleType) -> None:
            original(module)
            kernel.patch_pyplot(module)

        loader.exec_module = exec_module
        return spec


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    Kernel(config).serve()


if __name__ == "__main__":
    main()
