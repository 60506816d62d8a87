"""The blueapi 1.21.1 side of the service benchmark (issue 24): devices and plans.

`blueapi serve` loads this module through `env.sources` (see `blueapi.yaml`
next to it): `devices` is a `deviceManager` source (an object with
blueapi's `DeviceManager.build_and_connect`, so dodal is not needed) and
the module's plan functions are a `planFunctions` source. The devices match
`devices.toml`, skyrun's side: a motor `motor` and a detector `det` whose
reading is immediate (ophyd-async soft signals, no exposure time), so a
zero-delay `count` costs only what the engine and the service add.
"""

from dataclasses import dataclass, field
from typing import Any

import bluesky.plans as bp
from bluesky.protocols import Readable
from bluesky.utils import MsgGenerator
from ophyd_async.core import (
    AsyncStatus,
    StandardReadable,
    init_devices,
    soft_signal_rw,
)


class SoftMotor(StandardReadable):
    """A motor that arrives at once (ophyd_async.sim's needs h5py, absent here)."""

    def __init__(self, name: str = "") -> None:
        with self.add_children_as_readables():
            self.user_readback = soft_signal_rw(float, 0.0)
        super().__init__(name)

    @AsyncStatus.wrap
    async def set(self, value: float) -> None:
        await self.user_readback.set(value)


class SoftDetector(StandardReadable):
    """A detector whose reading is one soft signal (no trigger, no exposure)."""

    def __init__(self, name: str = "") -> None:
        with self.add_children_as_readables():
            self.value = soft_signal_rw(float, 1.0)
        super().__init__(name)


@dataclass
class _Built:
    devices: dict[str, Any]
    build_errors: dict[str, Exception] = field(default_factory=dict)
    connection_errors: dict[str, Exception] = field(default_factory=dict)


class _Devices:
    """blueapi 1.21.1's `DeviceManager` protocol, without dodal."""

    def build_and_connect(self, *, mock=False, timeout=None, fixtures=None):
        with init_devices(mock=mock):
            motor = SoftMotor(name="motor")
            det = SoftDetector(name="det")
        return _Built(devices={"motor": motor, "det": det})


devices = _Devices()


def count(
    detectors: list[Readable], num: int = 1, delay: float = 0.0
) -> MsgGenerator:
    """Take one or more readings from detectors (bluesky.plans.count)."""
    yield from bp.count(detectors, num=num, delay=delay)


__all__ = ["count"]
