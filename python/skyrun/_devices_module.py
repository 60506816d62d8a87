"""The devices of ``python -m skyrun run PLAN.py --devices beamline.py``.

A ``--devices`` source is what ``python -m skyrun service`` takes (the devices
are found by ``skyrun.service.Environment``, as blueapi finds them): a ``.py``
file or an importable module name whose top-level objects following one of
Bluesky's protocols are the devices (ophyd, ``ophyd.sim``, ophyd-async,
``skyrun.sim``), plus the devices a device manager in it builds and
connects (blueapi 1.21.1's ``deviceManager`` source: an object with
``build_and_connect``, such as dodal's ``DeviceManager``); or a skyrun
``.toml`` device file.

The module is executed after the RunEngine exists, so ``init_devices()`` in
it connects on the engine's loop (Bluesky's event loop). What a module
leaves undone is done here, as ``init_devices()`` would do it: a top-level
ophyd-async device without a name is named after its variable, and one that
was never connected is connected (in parallel, bounded by ``timeout``) on
the engine's loop. Devices connected already (by ``init_devices()``, in mock
mode or not) are left as they are.
"""

import asyncio
import concurrent.futures
import inspect

from .devices import load_devices
from .service import Environment, LoadError, _load_source, _naming, _public_members

__all__ = ["DeviceError", "load_device_modules"]


class DeviceError(Exception):
    """A device that did not connect: ``SOURCE: device 'NAME' did not connect: ...``."""


def _async_device_class():
    try:
        from ophyd_async.core import Device
    except ImportError:
        return None
    return Device


def _name_unnamed(source, Device):
    # The module's top-level ophyd-async devices without a name get their variable's name
    # (init_devices' set_name), so that they are found and known by it.
    mod = _load_source(source)
    public = {id(obj) for obj in _public_members(mod)}
    for var, obj in list(vars(mod).items()):
        if id(obj) in public and isinstance(obj, Device) and not inspect.isclass(obj) and obj.name == "":
            obj.set_name(var)


def _never_connected(device):
    # ophyd-async keeps its last real connect as `_connect_task`, and a mock connection as `_mock`.
    return getattr(device, "_connect_task", None) is None and getattr(device, "_mock", None) is None


def _connect(pending, loop, timeout):
    async def connect_all():
        return await asyncio.gather(*(d.connect(timeout=timeout) for _, d in pending), return_exceptions=True)

    future = asyncio.run_coroutine_threadsafe(connect_all(), loop)
    try:
        # connect() is bounded by `timeout` itself; the margin covers a loop held by something else.
        return future.result(timeout + 10)
    except concurrent.futures.TimeoutError:  # TimeoutError itself from Python 3.11 on
        future.cancel()
        return [TimeoutError(f"not connected within {timeout + 10:g} s (is the engine's loop blocked?)")] * len(
            pending)


def load_device_modules(sources, RE, timeout=10.0):
    """``{name: device}`` of ``sources`` (``.py`` files, module names or
    ``.toml`` device files), with their ophyd-async devices named and
    connected on ``RE.loop``.

    Raises ``LoadError`` (``SOURCE: ExcType: message``) for a module that
    does not load (a ``.toml`` file's ``ValueError`` or ``OSError`` as they
    are), and ``DeviceError`` naming the source and the device for
    one that does not connect within ``timeout`` seconds.
    """
    Device = _async_device_class()
    if Device is not None:
        for source in sources:
            if not source.endswith(".toml"):
                with _naming(source):
                    _name_unnamed(source, Device)
    devices = {}
    for source in sources:
        # A .toml device file's own errors name its line (ValueError, OSError).
        found = load_devices(source) if source.endswith(".toml") else Environment([source]).devices
        for name, device in found.items():
            if name in devices and devices[name] is not device:
                raise LoadError(f"{source}: ValueError: a device named '{name}' comes from an earlier --devices too")
            devices[name] = device
        if Device is None:
            continue
        pending = [(name, d) for name, d in found.items() if isinstance(d, Device) and _never_connected(d)]
        if pending:
            results = _connect(pending, RE.loop, timeout)
            failed = [(name, e) for (name, _), e in zip(pending, results) if isinstance(e, BaseException)]
            if failed:
                raise DeviceError("; ".join(f"{source}: device '{name}' did not connect: {type(e).__name__}: {e}"
                                            for name, e in failed))
    return devices
