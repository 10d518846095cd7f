"""Operator commands for a session, from a terminal key, a signal, or a control pipe.

Commands: ``auto`` (hand control to the policy), ``teleop`` (take it back with the leader arm),
``stop`` (end the session safely). Sources, all feeding one queue the loop reads once per tick:

- keys in the terminal running ``drift-run`` (when stdin is a TTY): ``a`` auto, ``t`` teleop,
  ``q`` stop;
- signals: ``SIGUSR1`` auto, ``SIGUSR2`` teleop, ``SIGINT``/``SIGTERM`` stop (``stop_signal``
  also cancels a start-up in progress; a second ``SIGINT`` forces the exit);
- a control pipe (``--control-pipe PATH``, a FIFO ``drift-run`` creates): one command per line,
  e.g. ``echo auto > PATH``, for scripts and tests with no terminal. Lines are bounded
  (``MAX_LINE`` bytes): an over-long or unknown line is dropped, counted (``events``) and warned
  about once per kind, so a flood can neither grow memory nor delay a ``stop`` behind it.
"""

import contextlib
import os
import queue
import select
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from lerobot_policy_drift.runtime.config import ConfigError

COMMANDS = ("auto", "teleop", "stop")
_KEYS = {"a": "auto", "t": "teleop", "q": "stop"}
MAX_LINE = 64  # bytes: the longest command line the pipe accepts
_READ = 1 << 16  # bytes per read: a flood is drained in a few large reads


class PipeError(ConfigError):
    """``--control-pipe`` names something that cannot be this session's FIFO."""


class LineSplitter:
    """Bytes → complete lines of at most ``max_len`` bytes, in bounded memory.

    ``feed`` returns each completed line, or ``None`` for one that grew past ``max_len`` (its bytes
    are discarded as they arrive, up to its newline, so nothing is ever re-scanned)."""

    def __init__(self, max_len: int = MAX_LINE):
        self.max_len = max_len
        self._partial = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        *complete, tail = data.split(b"\n")
        out: list[bytes | None] = []
        for part in complete:
            line = None if self._discarding else self._partial + part
            out.append(line if line is not None and len(line) <= self.max_len else None)
            self._partial, self._discarding = b"", False
        if not self._discarding:
            if len(self._partial) + len(tail) > self.max_len:
                self._partial, self._discarding = b"", True
            else:
                self._partial += tail
        return out


def check_pipe_path(path: Path) -> Path:
    """Refuse (``PipeError``) a control-pipe path that cannot be used, before anything connects."""
    path = Path(path)
    if not path.parent.is_dir():
        raise PipeError(
            f"--control-pipe {path}: folder {path.parent} does not exist; create it or pick another path."
        )
    if path.exists() and not path.is_fifo():
        raise PipeError(f"--control-pipe {path} exists and is not a FIFO; remove it or pick another path.")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PipeError(f"--control-pipe {path}: folder {path.parent} is not writable; pick another path.")
    return path


class Triggers:
    def __init__(self):
        self.commands: queue.Queue[tuple[str, str]] = queue.Queue()  # (command, source)
        self.events: Counter = Counter()  # dropped control-pipe lines, by kind
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fifo: Path | None = None
        self.stop_signal: str | None = None  # the first SIGINT / SIGTERM received
        self._interrupts = 0
        self._force_exit = None

    def put(self, command: str, source: str) -> None:
        if command in COMMANDS:
            self.commands.put((command, source))

    def drain(self) -> list[tuple[str, str]]:
        out = []
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out

    def watch_signals(self) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: self.put("auto", "SIGUSR1"))
        signal.signal(signal.SIGUSR2, lambda *_: self.put("teleop", "SIGUSR2"))

    def open_pipe(self, path: Path) -> None:
        """Create the FIFO (checked by ``check_pipe_path``); read once ``watch_pipe`` starts."""
        path = check_pipe_path(path)
        if not path.exists():
            try:
                os.mkfifo(path)
            except OSError as err:
                raise PipeError(f"--control-pipe {path}: cannot create it ({err.strerror}).") from None
            self._fifo = path  # ours: removed at close

    def watch_stop_signals(self, force_exit) -> None:
        """SIGINT / SIGTERM queue ``stop`` (and set ``stop_signal``); a second SIGINT calls
        ``force_exit``. Main thread only, as Python's signal handlers are."""
        signal.signal(signal.SIGINT, self.on_stop_signal)
        signal.signal(signal.SIGTERM, self.on_stop_signal)
        self._force_exit = force_exit

    def on_stop_signal(self, signum, _frame=None) -> None:
        name = signal.Signals(signum).name
        self.stop_signal = self.stop_signal or name
        self.put("stop", name)
        if signum == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts > 1 and self._force_exit is not None:
                self._force_exit()

    def watch_pipe(self, path: Path) -> None:
        self._spawn(self._read_pipe, Path(path))

    def watch_keys(self) -> None:
        if sys.stdin.isatty():
            self._spawn(self._read_keys)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"trigger {target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _read_pipe(self, path: Path) -> None:
        # O_RDWR keeps the FIFO open between writers, so each `echo x > PATH` is one line here.
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        lines = LineSplitter()
        try:
            while not self._stop.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    for line in lines.feed(os.read(fd, _READ)):
                        self._pipe_line(line)
        finally:
            os.close(fd)

    def _pipe_line(self, line: bytes | None) -> None:
        command = None if line is None else line.decode(errors="replace").strip().lower()
        if command in COMMANDS:
            self.put(command, "pipe")
            return
        if command == "":
            return  # a blank line is not an error
        kind = "control_pipe_overlong_line" if line is None else "control_pipe_unknown_line"
        self.events[kind] += 1
        if self.events[kind] == 1:
            what = (
                f"a line over {MAX_LINE} bytes" if line is None else f"unknown command {command[:MAX_LINE]!r}"
            )
            print(
                f"drift-run: control pipe: dropped {what} (expected {' / '.join(COMMANDS)}); "
                "further ones are counted in the report's events.",
                file=sys.stderr,
            )

    def _read_keys(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._stop.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    key = os.read(fd, 1).decode(errors="replace").lower()
                    if key in _KEYS:
                        self.put(_KEYS[key], "key")
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1.0)
        if self._fifo is not None:
            with contextlib.suppress(OSError):
                self._fifo.unlink()
