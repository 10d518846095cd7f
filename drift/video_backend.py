"""The video decoder LeRobot should use on this machine, chosen quietly.

LeRobot's own default (``get_safe_default_video_backend``) tries to load torchcodec every time a
dataset opens and, on a machine without FFmpeg's shared libraries, logs torchcodec's page-long load
failure before falling back to PyAV. Drift names the decoder explicitly wherever it opens or
trains on a dataset, so its commands run clean; with FFmpeg installed this picks torchcodec.
Where LeRobot still probes by itself (``lerobot-train``'s config default), the warning is cut to
one line by ``shorten_lerobot_decoder_warning``.
"""

import functools
import logging


@functools.cache
def video_backend() -> str:
    """``"torchcodec"`` where it loads (FFmpeg's shared libraries present), else ``"pyav"``."""
    try:
        import torchcodec  # noqa: F401
    except Exception:  # RuntimeError / OSError / ImportError: no FFmpeg libraries, or no wheel here
        return "pyav"
    return "torchcodec"


class _OneLineTorchcodecWarning(logging.Filter):
    """Shortens LeRobot's "torchcodec cannot be loaded" warning (torchcodec's load traceback for
    every FFmpeg version it tried, a few pages) to the one line a user needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "torchcodec" in text and "Falling back to 'pyav'" in text:
            record.msg = (
                "torchcodec cannot load here (FFmpeg's shared libraries are missing), so LeRobot decodes "
                "videos with PyAV; install FFmpeg (e.g. apt install ffmpeg) to use torchcodec."
            )
            record.args = ()
        return True


def shorten_lerobot_decoder_warning() -> None:
    """Installed when LeRobot imports the plugin (``lerobot-train`` does so before it parses its
    config, whose default decoder field runs LeRobot's probe once per process)."""
    logger = logging.getLogger("lerobot.utils.import_utils")
    if not any(isinstance(f, _OneLineTorchcodecWarning) for f in logger.filters):
        logger.addFilter(_OneLineTorchcodecWarning())
