"""External detectors in any language: a child process that speaks JSON lines over stdin/stdout.

facebench starts the command once per detector instance (lazily, on the first ``fit`` or
``score``), writes each image to a temporary file and asks for its score. The protocol is
described in ``docs/command-protocol.md``; ``docs/examples/brightness_detector.py`` is a
complete child in 20 lines.

POSIX only (Linux, macOS): the child runs in its own process group, which is killed when it
hangs, and every wait is bounded by ``timeout``, so a broken child never blocks the harness.
"""

from __future__ import annotations

import collections
import json
import math
import os
import queue
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from ..harness.contracts.detector import DetectorBase, choice, flag, optional, require
from ..harness.contracts.version import __version__
from ..harness.contracts.errors import FacebenchError
from ..harness.contracts.types import check_images

PROTOCOL = 1
#: How images reach the child. All are lossless; ``ppm`` (binary P6) and ``npy`` are easy to
#: read without an image library.
IMAGE_FORMATS = ("png", "bmp", "ppm", "npy")
STDERR_LINES = 20
#: Longest stdout line accepted from the child; a longer one is garbage.
MAX_LINE_BYTES = 1 << 20
#: How long ``close()`` waits for the child to exit after ``bye`` before it is terminated.
EXIT_GRACE_S = 2.0

_EOF = object()


class CommandDetectorError(FacebenchError):
    """The external command could not be started, or broke the protocol, died or hung."""


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """One of the child's standard streams, which Popen opened as a pipe (so never None)."""
    if stream is None:
        raise RuntimeError("the child process's standard streams must be pipes")
    return stream


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Child:
    """One running command: pipes, reader threads, the stderr tail and the temp folder.

    It holds no reference to the detector, so the detector's finalizer can close it.
    """

    def __init__(self, argv: list[str], cwd: str | None, env: dict[str, str] | None, label: str):
        self.label = label
        self.closed = False
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.lines: queue.Queue = queue.Queue()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="facebench-command-"))
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                cwd=cwd, env=env, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise self._start_error(exc, argv, cwd, label) from None
        self.stdin_fd = _pipe(self.proc.stdin).fileno()
        os.set_blocking(self.stdin_fd, False)
        self.out_thread = threading.Thread(target=self._read_stdout, name="facebench-command-stdout", daemon=True)
        self.err_thread = threading.Thread(target=self._read_stderr, name="facebench-command-stderr", daemon=True)
        self.out_thread.start()
        self.err_thread.start()

    @staticmethod
    def _start_error(exc: OSError, argv: list[str], cwd: str | None, label: str) -> CommandDetectorError:
        """Why Popen failed, in one line."""
        if isinstance(exc, FileNotFoundError):
            missing = exc.filename if exc.filename not in (None, argv[0]) else argv[0]
            where = f"working directory {cwd!r} or " if cwd and not Path(cwd).is_dir() else ""
            return CommandDetectorError(f"{label}: {where}program {missing!r} not found")
        if isinstance(exc, PermissionError):
            return CommandDetectorError(
                f"{label}: {argv[0]!r} is not executable (chmod +x it, or run it through its interpreter, "
                f'e.g. command = ["python", "script.py"])'
            )
        return CommandDetectorError(f"{label}: cannot start {argv[0]!r}: {exc.strerror or exc}")

    # -- reader threads ---------------------------------------------------------------
    def _read_stdout(self) -> None:
        try:
            while True:
                line = _pipe(self.proc.stdout).readline(MAX_LINE_BYTES)
                if not line:
                    break
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self.lines.put(_EOF)

    def _read_stderr(self) -> None:
        try:
            for raw in iter(_pipe(self.proc.stderr).readline, b""):
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    self.stderr_tail.append(_clip(text, 300))
        except (OSError, ValueError):
            pass

    # -- errors -----------------------------------------------------------------------
    def stderr_text(self) -> str:
        tail = list(self.stderr_tail)
        text = " | ".join(tail)
        return text if len(text) <= 2000 else "..." + text[-1997:]

    def error(self, message: str, kill: bool = True, with_stderr: bool = True) -> CommandDetectorError:
        """A one-line error; the child is killed first so the stderr tail is complete."""
        if kill:
            self.kill()
        stderr = self.stderr_text() if with_stderr else ""
        return CommandDetectorError(f"{self.label}: {message}" + (f"; stderr: {stderr}" if stderr else ""))

    def exit_error(self, waiting: str) -> CommandDetectorError:
        """The child closed its stdout or stdin: say how it ended."""
        try:
            code = self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return self.error(f"closed its output while facebench waited for {waiting}; killed it")
        self.kill()
        self.err_thread.join(timeout=1.0)
        stderr = self.stderr_text() or "(empty)"
        return CommandDetectorError(f"{self.label}: {_exit_text(code)} while facebench waited for {waiting}; stderr: {stderr}")

    # -- I/O --------------------------------------------------------------------------
    def send(self, messages: list[dict[str, Any]], timeout: float, waiting: str) -> None:
        """Write JSON lines; a child that stops reading cannot block us past ``timeout``."""
        data = memoryview("".join(json.dumps(m) + "\n" for m in messages).encode())
        deadline = time.monotonic() + timeout
        while data:
            try:
                data = data[os.write(self.stdin_fd, data):]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, ValueError, OSError):
                raise self.exit_error(waiting) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.error(f"did not read its input within {timeout:g} s while facebench sent {waiting}; killed it")
            select.select([], [self.stdin_fd], [], remaining)

    def receive(self, timeout: float, waiting: str) -> dict[str, Any]:
        """The next JSON object from the child's stdout, within ``timeout`` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise self.error(f"no answer within {timeout:g} s while facebench waited for {waiting}; killed it") from None
        if line is _EOF:
            raise self.exit_error(waiting)
        if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
            raise self.error(f"printed a line longer than {MAX_LINE_BYTES} bytes while facebench waited for {waiting}")
        text = line.decode("utf-8", "replace").strip()
        try:
            message = json.loads(text)
        except ValueError:
            raise self.error(
                f"printed a line that is not JSON while facebench waited for {waiting}: {_clip(text)!r} "
                "(stdout is the protocol channel; print logs to stderr)"
            ) from None
        if not isinstance(message, dict):
            raise self.error(f"printed {_clip(text)!r}, not a JSON object, while facebench waited for {waiting}")
        if message.get("type") == "error":
            detail = message.get("message", "(no message)")
            raise self.error(f"reported an error while facebench waited for {waiting}: {_clip(str(detail), 500)}")
        return message

    # -- shutdown ---------------------------------------------------------------------
    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """Kill the whole process group now and release everything."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
        self._finish()

    def close(self, grace: float = EXIT_GRACE_S) -> None:
        """Say bye, give the child ``grace`` seconds to exit, then terminate and kill its group."""
        if self.closed:
            return
        if self.proc.poll() is None:
            try:
                self.send([{"type": "bye"}], min(grace, 1.0), "bye")
            except CommandDetectorError:
                pass
            try:
                _pipe(self.proc.stdin).close()  # end of input: a child that reads until EOF stops too
            except OSError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    pass
        self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        # The leader has exited or is being killed: take any process it left behind with it.
        self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait on anything
            pass
        for stream, thread in ((self.proc.stdin, None), (self.proc.stdout, self.out_thread), (self.proc.stderr, self.err_thread)):
            if thread is not None:
                thread.join(timeout=1.0)
            if thread is None or not thread.is_alive():
                try:
                    _pipe(stream).close()
                except OSError:
                    pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def _parse_command(command: Any) -> list[str]:
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"command {command!r} cannot be split like a shell would: {exc}") from None
    elif isinstance(command, (list, tuple)) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        raise ValueError(f"command must be a string or a list of strings, got {command!r}")
    if not argv or not argv[0]:
        raise ValueError("command is empty")
    return argv


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. an argument too long to be a file name
        return False


def _parse_env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise ValueError(f"env must be a table of NAME = value, got {env!r}")
    out = {}
    for key, value in env.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"env {key!r} must be a string or number, got {value!r}")
        out[str(key)] = str(value)
    return out


_SECONDS = "{name} must be a positive number of seconds, got {value!r}"


def _seconds(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def _check_workdir(name: str, workdir: Any) -> str | None:
    if workdir is not None and not Path(workdir).is_dir():
        raise ValueError(f"{name} {workdir!r} is not a directory")
    return str(workdir) if workdir is not None else None


class CommandDetector(DetectorBase):
    """Any program as a detector: it reads image paths as JSON lines and prints scores.

    Parameters:
        command: the program and its arguments, as a list (``["python", "det.py"]``) or a
            string split like a shell would (no shell runs: no pipes, globs or ``$VARS``).
        timeout: seconds to wait for each answer (``ready``, each score) and for the child
            to read each request; the clock restarts at every answer.
        fit_timeout: seconds to wait for ``fitted``; default: ``timeout``.
        batch_size: images per ``score()`` call from the runner (requests are pipelined).
        requires_fit: send the train split with labels (a ``fit`` message) before scoring.
        workdir: the child's working directory (default: facebench's).
        env: variables added to the child's environment, e.g. ``{CUDA_VISIBLE_DEVICES = "1"}``.
        image_format: how images are written: png (default), bmp, ppm (binary P6) or npy.
    """

    name = "command"
    score_range = (0.0, 1.0)  # a probability of "fake"; the runner checks it
    version = "0.1.0"
    requires_fit = False
    inputs = ("pixels",)
    checks = {
        "timeout": require(_seconds, _SECONDS),
        "fit_timeout": optional(require(_seconds, _SECONDS)),
        "requires_fit": flag(),
        "image_format": choice(IMAGE_FORMATS),
        "workdir": _check_workdir,
        "env": lambda name, env: _parse_env(env),
    }
    image_format: str
    workdir: str | None
    env: dict[str, str]
    device = "external"

    def __init__(
        self,
        command: str | list[str],
        timeout: float = 60.0,
        batch_size: int = 32,
        requires_fit: bool = False,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        image_format: str = "png",
        fit_timeout: float | None = None,
    ):
        self.argv = _parse_command(command)
        super().__init__(timeout=timeout, fit_timeout=fit_timeout, batch_size=batch_size, requires_fit=requires_fit,
                         image_format=image_format, workdir=workdir, env=env)
        self.timeout = float(timeout)
        self.fit_timeout = float(fit_timeout) if fit_timeout is not None else self.timeout
        #: What the child said in its ready line.
        self.child_name: str | None = None
        self.child_version: str | None = None
        self.label = f"command detector {_clip(shlex.join(self.argv), 80)!r}"
        self._child: _Child | None = None
        self._finalizer: weakref.finalize | None = None
        self._fitted = False
        self._next_id = 0
        self._check_program()

    @classmethod
    def provenance_files(cls, params: dict[str, Any]) -> list[Path]:
        """The files a run with ``params`` depends on beyond facebench's code, for the cache keys:
        the program (found as :meth:`start` finds it) and every argument that names a file
        (relative to ``workdir``). Nothing when ``command`` cannot be parsed."""
        try:
            argv = _parse_command(params.get("command"))
            env = _parse_env(params.get("env"))
        except ValueError:
            return []
        workdir = Path(params.get("workdir") or ".")
        program = argv[0]
        if os.sep in program:
            found = workdir / program
        else:
            search = os.pathsep.join(os.get_exec_path({**os.environ, **env} if env else None))
            found = Path(shutil.which(program, path=search) or workdir / program)
        return [path for path in [found, *(workdir / arg for arg in argv[1:] if arg)] if _is_file(path)]

    def _child_env(self) -> dict[str, str] | None:
        return {**os.environ, **self.env} if self.env else None

    def _check_program(self) -> None:
        """Fail at construction, before any corpus work, when the program cannot be found."""
        program = self.argv[0]
        if os.sep in program:
            path = Path(self.workdir or ".") / program
            if not path.exists():
                raise CommandDetectorError(f"{self.label}: program {program!r} not found" +
                                           (f" (relative to workdir {self.workdir!r})" if self.workdir else ""))
            if path.is_dir() or not os.access(path, os.X_OK):
                raise CommandDetectorError(
                    f"{self.label}: {program!r} is not executable (chmod +x it, or run it through its "
                    f'interpreter, e.g. command = ["python", "{program}"])'
                )
        else:
            search = os.pathsep.join(os.get_exec_path(self._child_env()))
            if shutil.which(program, path=search) is None:
                raise CommandDetectorError(f"{self.label}: program {program!r} not found on PATH")

    # -- lifecycle --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._child is not None and not self._child.closed

    @property
    def stderr_tail(self) -> list[str]:
        """The child's last stderr lines (of the current or last process)."""
        return list(self._child.stderr_tail) if self._child is not None else []

    def start(self) -> "CommandDetector":
        """Start the command and shake hands; done lazily by ``fit`` and ``score``."""
        if self.running:
            return self
        if os.name != "posix":
            raise CommandDetectorError(f"{self.label}: the command detector needs a POSIX system (Linux, macOS)")
        self._fitted = False
        child = _Child(self.argv, self.workdir, self._child_env(), self.label)
        self._child = child
        self._finalizer = weakref.finalize(self, child.close)
        hello = {"type": "hello", "protocol": PROTOCOL, "facebench": __version__, "image_format": self.image_format}
        try:
            child.send([hello], self.timeout, "the hello line")
            ready = child.receive(self.timeout, "the ready line")
            if ready.get("type") != "ready":
                raise child.error(f'answered {_clip(json.dumps(ready))} to hello; expected {{"type": "ready", ...}}')
            if ready.get("protocol", PROTOCOL) != PROTOCOL:
                raise child.error(f"speaks protocol {ready.get('protocol')!r}; facebench speaks {PROTOCOL}")
        except BaseException:
            self.close()
            raise
        self.child_name = None if ready.get("name") is None else str(ready["name"])
        self.child_version = None if ready.get("version") is None else str(ready["version"])
        return self

    def close(self) -> None:
        """Send ``bye``, wait briefly, kill the process group if needed, delete temp files."""
        if self._finalizer is not None:
            self._finalizer()  # runs child.close once
            self._finalizer = None
        self._fitted = False

    def __enter__(self) -> "CommandDetector":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # weakref.finalize does the work; this only makes it prompt
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()

    # -- the protocol -----------------------------------------------------------------
    def _write_images(self, images: np.ndarray, folder: Path, png_level: int) -> list[tuple[str, str]]:
        """(id, absolute path) per image, written in ``image_format`` (PNG at zlib level ``png_level``)."""
        folder.mkdir(parents=True, exist_ok=True)
        items = []
        for image in images:
            image_id = str(self._next_id)
            self._next_id += 1
            path = folder / f"{image_id}.{self.image_format}"
            if self.image_format == "npy":
                np.save(path, image)
            elif self.image_format == "png":
                Image.fromarray(image).save(path, compress_level=png_level)
            else:
                Image.fromarray(image).save(path)
            items.append((image_id, str(path)))
        return items

    def _run(self, action):
        """Run ``action(child)``; any failure kills the child so the next call starts afresh."""
        child = self.start()._child
        try:
            return action(child)
        except BaseException:
            self.close()
            raise

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        check_images(images)
        labels = np.asarray(labels)
        if labels.shape != (len(images),) or not np.isin(labels, (0, 1)).all():
            raise ValueError(f"labels must be {len(images)} values of 0 (real) or 1 (fake)")
        if not self.requires_fit:
            return  # the runner never calls fit then; a direct call has nothing to do

        def action(child: _Child) -> None:
            folder = child.tmpdir / "fit"
            try:
                items = self._write_images(images, folder, png_level=1)  # kept until fitted: keep them small
                message = {"type": "fit", "items": [{"path": p, "label": int(y)} for (_, p), y in zip(items, labels)]}
                child.send([message], self.timeout, f"the fit request ({len(items)} images)")
                reply = child.receive(self.fit_timeout, "fitted")
                if reply.get("type") != "fitted":
                    raise child.error(f'answered {_clip(json.dumps(reply))} to fit; expected {{"type": "fitted"}}')
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        self._run(action)
        self._fitted = True

    def score(self, images: np.ndarray) -> np.ndarray:
        check_images(images)
        if self.requires_fit and not self._fitted:
            raise RuntimeError("command detector is not fitted; call fit() first (the fit lives in the child process)")
        if len(images) == 0:
            return np.empty(0, dtype=np.float64)
        return self._run(lambda child: self._score(child, images))

    def _score(self, child: _Child, images: np.ndarray) -> np.ndarray:
        folder = child.tmpdir / "score"
        try:
            items = self._write_images(images, folder, png_level=0)  # one batch at a time: fastest
            position = {image_id: i for i, (image_id, _) in enumerate(items)}
            child.send([{"type": "score", "id": i, "path": p} for i, p in items], self.timeout,
                       f"{len(items)} score requests")
            scores = np.full(len(items), np.nan)
            pending = dict.fromkeys(position)  # ordered: the first is the oldest request unanswered
            while pending:
                first = next(iter(pending))
                waiting = f"the score of image {first!r}" + (f" (and {len(pending) - 1} more)" if len(pending) > 1 else "")
                reply = child.receive(self.timeout, waiting)
                index = self._check_reply(child, reply, position, scores)
                scores[index] = reply["score"]
                del pending[reply["id"]]
            return scores
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _check_reply(child: _Child, reply: dict, position: dict[str, int], scores: np.ndarray) -> int:
        """The index of the image ``reply`` scores; refuses anything but a fresh id and a score in [0, 1]."""
        shown = _clip(json.dumps(reply))
        if reply.get("type", "score") != "score":
            raise child.error(f"answered {shown} to a score request; expected {{\"id\": ..., \"score\": ...}}")
        image_id = reply.get("id")
        if "id" not in reply:
            raise child.error(f"answered {shown} without an id")
        if not isinstance(image_id, str) or image_id not in position:
            raise child.error(f"answered id {image_id!r}, which facebench did not ask for in this batch")
        index = position[image_id]
        if not np.isnan(scores[index]):
            raise child.error(f"answered id {image_id!r} twice")
        if "score" not in reply:
            raise child.error(f"answered {shown} without a score")
        score = reply["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise child.error(f"gave image {image_id!r} the score {_clip(repr(score))}, not a finite number")
        if not 0.0 <= score <= 1.0:
            raise child.error(f"gave image {image_id!r} the score {score!r}, outside [0, 1] (scale or clip it in the command)")
        return index


def announced_name(params: dict[str, Any]) -> str | None:
    """The name a command detector's program announces in its ready line (None if it gives none).

    Starts the program once and says goodbye: ``facebench detect command`` labels its results
    with this name, and a program that cannot start or speak the protocol fails before any work.
    """
    with CommandDetector(**params) as probe:
        probe.start()
        return probe.child_name
