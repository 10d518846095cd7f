"""One process per results folder: two runs sharing one would record into the same dataset, train
into the same run folders and each rewrite the results without the other's.

The claim is an exclusive flock on a file inside the folder (``runtime/ports.py``'s, the one the
port claim takes), held until the process ends; the kernel drops it however it ends, so no stale
lock is ever left.
"""

import os
import shutil
from pathlib import Path

from lerobot_policy_drift.runtime.ports import hold_flock, holder

_HELD: set[Path] = set()  # the lock files this process holds (a second claim of its own is no conflict)


def claim_folder(out: Path, run: str, hint: str) -> Path:
    """Create ``out`` and hold it for this process, or refuse in one line (naming who holds it, and
    ``hint``: what to do) before anything is written. ``run`` names the kind of run (its lock file)."""
    lock = (out / f".{run}.lock").resolve()
    if lock in _HELD:
        return lock
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    except OSError as err:
        raise SystemExit(
            f"{out} cannot be used as the results folder ({err.strerror}); nothing was written."
        ) from None
    if not hold_flock(fd):
        raise SystemExit(
            f"{out} is in use by {holder(str(lock)) or f'another {run} run'}: one run per folder. {hint}"
        )
    _HELD.add(lock)
    return lock


def empty_folder(out: Path, keep: Path) -> None:
    """Delete everything in ``out`` but ``keep`` (the held lock: deleting it would let a second run
    take a new one on the same folder)."""
    for child in out.iterdir():
        if child.resolve() == keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
