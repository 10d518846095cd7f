"""Operator commands for a session, from a terminal key, a signal, or a control pipe.

Commands: ``auto`` (hand control to the policy), ``teleop`` (take it back with the leader arm),
``stop`` (end the session safely). Sources, all feeding one queue the loop reads once per tick:

- keys in the terminal running ``drift-run`` (when stdin is a TTY): ``a`` auto, ``t`` teleop,
  ``q`` stop;
- signals: ``SIGUSR1`` auto, ``SIGUSR2`` teleop, ``SIGINT``/``SIGTERM`` stop (a second ``SIGINT``
  forces the exit: see ``runner``);
- a control pipe (``--control-pipe PATH``, a FIFO ``drift-run`` creates): one command per line,
  e.g. ``echo auto > PATH``, for scripts and tests with no terminal.
"""

import contextlib
import os
import queue
import select
import signal
import sys
import threading
from pathlib import Path

COMMANDS = ("auto", "teleop", "stop")
_KEYS = {"a": "auto", "t": "teleop", "q": "stop"}


class Triggers:
    def __init__(self):
        self.commands: queue.Queue[tuple[str, str]] = queue.Queue()  # (command, source)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fifo: Path | None = None

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

    def watch_pipe(self, path: Path) -> None:
        path = Path(path)
        if path.exists() and not path.is_fifo():
            raise ValueError(
                f"--control-pipe {path} exists and is not a FIFO; remove it or pick another path."
            )
        if not path.exists():
            os.mkfifo(path)
        self._fifo = path
        self._spawn(self._read_pipe, path)

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
        buf = b""
        try:
            while not self._stop.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    buf += os.read(fd, 256)
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        self.put(line.decode(errors="replace").strip().lower(), "pipe")
        finally:
            os.close(fd)

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
