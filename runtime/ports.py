"""One arm, one process: an exclusive claim on every serial port a session drives.

The claim is an advisory lock (``flock(LOCK_EX | LOCK_NB)``) on the device node itself, the lock
pyserial takes with ``exclusive=True``, held on a descriptor of our own from before LeRobot opens
the port until after it has closed it. Any program that asks for the port exclusively (another
``drift-run``, pyserial with ``exclusive=True``, ``flock /dev/ttyACM0 …``) is refused meanwhile, and
the kernel drops the lock with the descriptor however the process ends (crash and ``kill -9``
included), so no stale lock is ever left. A program that opens the port without asking (LeRobot's
own tools do) is not stopped by any advisory lock: the README says so.
"""

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from lerobot_policy_drift.runtime.config import ConfigError


class PortBusy(ConfigError):
    """The port is claimed by another process; nothing was opened or moved."""


@dataclass
class PortClaim:
    port: str
    device: str  # the node the link resolved to (the lock lives on its inode)
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = -1


def claim_port(port: str, what: str) -> PortClaim:
    """Claim ``port`` (a path, possibly a link like /dev/serial/by-id/…) for this process."""
    device = os.path.realpath(port)
    try:
        # Read-only, no controlling terminal, no wait for carrier: opening changes nothing on the line.
        fd = os.open(device, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError(
            f"could not connect to the {what} on {port}: cannot open it ({err.strerror}); check the cable and the path "
            "(ls /dev/ttyACM* /dev/ttyUSB*) and that you may use it (the dialout group)."
        ) from None
    if not hold_flock(fd):
        raise PortBusy(
            f"the {what}'s port {port} is in use by {holder(device) or 'another process'}: one process drives "
            "an arm at a time. Stop that session first."
        )
    return PortClaim(port, device, fd)


def hold_flock(fd: int) -> bool:
    """Take the exclusive flock of the open file ``fd`` without waiting. False, with ``fd`` closed,
    when another process holds it; the kernel drops a held lock with the descriptor."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return True


def holder(device: str) -> str | None:
    """Which process holds the flock on ``device``, from Linux's /proc/locks (None elsewhere)."""
    try:
        st = os.stat(device)
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    node = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == node:
            pid = fields[4]
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                command = " ".join(raw.replace("\0", " ").split())
            except OSError:
                command = ""
            return f"process {pid}" + (f" ({command[:120]})" if command else "")
    return None
