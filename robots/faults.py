"""Faults an emulated device can be told to show, at creation or while a client is connected."""

from pydantic import BaseModel, ConfigDict, Field


class BusFaults(BaseModel):
    """What goes wrong on an emulated servo bus (all off by default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    extra_delay_s: float = Field(0.0, ge=0.0, le=2.0, description="added before every reply")
    drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of status packets lost on the wire")
    corrupt_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of status packets with a bad checksum"
    )
    silent_ids: set[int] = Field(default_factory=set, description="servos that stopped answering")
    error_bits: dict[int, int] = Field(
        default_factory=dict, description="servo id -> error byte OR-ed into its status packets"
    )
    unplugged: bool = Field(False, description="the USB adapter is gone: the port disappears")


class CameraFaults(BaseModel):
    """What goes wrong on an emulated camera."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    stalled: bool = Field(False, description="no frames are published")
    drop_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of frames not published")


def updated(faults: BaseModel, changes: dict) -> BaseModel:
    """A validated copy of ``faults`` with ``changes``; unknown names or bad values raise ValueError."""
    return type(faults).model_validate({**faults.model_dump(), **changes})
