"""The ophyd-async devices of a device module, named and connected as
blueapi's device manager (1.21.1, with dodal's ``DeviceManager``) leaves
them: each known by the name it was made under, connected on the engine's
loop. Used by ``python -m skyrun service --devices`` (``skyrun.service.Environment``
loads the modules) and ``python -m skyrun run PLAN.py --devices beamline.py``.

A ``--devices`` source is a ``.py`` file or an importable module name whose
top-level objects following one of Bluesky's protocols are the devices
(ophyd, ``ophyd.sim``, ophyd-async, ``skyrun.sim``), plus the devices a
device manager in it builds and connects (blueapi's ``deviceManager``
source: an object with ``build_and_connect``, such as dodal's
``DeviceManager``); or a skyrun ``.toml`` device file.

The module is executed after the RunEngine exists, so ``init_devices()`` in
it connects on the engine's loop (Bluesky's event loop). What a module
leaves undone is done here, as ``init_devices()`` would do it (and as
dodal names a device after its factory): a top-level ophyd-async device
without a name is named after its variable (:func:`name_unnamed`), and one
that was never connected is connected (in parallel, bounded by a timeout)
on Bluesky's event loop (:func:`connect_unconnected`). Devices connected
already (by ``init_devices()``, in mock mode or not) are left as they are.
"""

import asyncio
import concurrent.futures
import inspect
import threading

__all__ = ["DeviceError", "connect_unconnected", "load_device_modules", "name_unnamed"]

#: How long connecting a module's devices may take, in seconds (blueapi's is dodal's default, 10 s).
CONNECT_TIMEOUT = 10.0


class DeviceError(Exception):
    """A device that did not connect: ``SOURCE: device 'NAME' did not connect: ...``."""


def _async_device_class():
    try:
        from ophyd_async.core import Device
    except ImportError:
        return None
    return Device


def name_unnamed(mod, public):
    """Names each top-level ophyd-async device of module ``mod`` that has no
    name after its variable (``init_devices``' ``set_name``), so that it is
    found and known by it. ``public``: the module's public objects."""
    Device = _async_device_class()
    if Device is None:
        return
    public = {id(obj) for obj in public}
    for var, obj in list(vars(mod).items()):
        if id(obj) in public and isinstance(obj, Device) and not inspect.isclass(obj) and obj.name == "":
            obj.set_name(var)


def _never_connected(device):
    # ophyd-async keeps its last real connect as `_connect_task`, and a mock connection as `_mock`.
    return getattr(device, "_connect_task", None) is None and getattr(device, "_mock", None) is None


def _bluesky_loop():
    try:
        from bluesky.run_engine import get_bluesky_event_loop
    except ImportError:
        return None
    return get_bluesky_event_loop()


def connect_unconnected(devices, loop=None, timeout=CONNECT_TIMEOUT):
    """Connects the ophyd-async devices of ``devices`` (``{name: device}``)
    that were never connected, in parallel on ``loop`` (default: Bluesky's
    event loop, which a RunEngine runs); returns ``[(name, exception)]`` of
    those that did not connect within ``timeout`` seconds."""
    Device = _async_device_class()
    if Device is None:
        return []
    pending = [(name, d) for name, d in devices.items() if isinstance(d, Device) and _never_connected(d)]
    if not pending:
        return []
    loop = loop if loop is not None else _bluesky_loop()
    if loop is None or not loop.is_running() or getattr(loop, "_thread_id", None) == threading.get_ident():
        e = RuntimeError("no RunEngine runs Bluesky's event loop on another thread to connect it on: "
                         "create the RunEngine before loading the devices")
        return [(name, e) for name, _ in pending]

    async def connect_all():
        return await asyncio.gather(*(d.connect(timeout=timeout) for _, d in pending), return_exceptions=True)

    future = asyncio.run_coroutine_threadsafe(connect_all(), loop)
    try:
        # connect() is bounded by `timeout` itself; the margin covers a loop held by something else.
        results = future.result(timeout + 10)
    except concurrent.futures.TimeoutError:  # TimeoutError itself from Python 3.11 on
        future.cancel()
        results = [TimeoutError(f"not connected within {timeout + 10:g} s (is the engine's loop blocked?)")] * len(
            pending)
    return [(name, e) for (name, _), e in zip(pending, results) if isinstance(e, BaseException)]


def load_device_modules(sources, RE, timeout=CONNECT_TIMEOUT):
    """``{name: device}`` of ``sources`` (``.py`` files, module names or
    ``.toml`` device files), with their ophyd-async devices named and
    connected on ``RE.loop``.

    Raises ``LoadError`` (``SOURCE: ExcType: message``) for a module that
    does not load (a ``.toml`` file's ``ValueError`` or ``OSError`` as they
    are), and ``DeviceError`` naming the source and the device for
    one that does not connect within ``timeout`` seconds.
    """
    from .devices import load_devices
    from .service import Environment, LoadError

    devices = {}
    for source in sources:
        # A .toml device file's own errors name its line (ValueError, OSError).
        if source.endswith(".toml"):
            found = load_devices(source)
        else:
            env = Environment([source], loop=RE.loop, connect_timeout=timeout, report=False)
            if env.not_connected:
                raise DeviceError("; ".join(f"{source}: device '{name}' did not connect: {type(e).__name__}: {e}"
                                            for _, name, e in env.not_connected))
            found = env.devices
        for name, device in found.items():
            if name in devices and devices[name] is not device:
                raise LoadError(f"{source}: ValueError: a device named '{name}' comes from an earlier --devices too")
            devices[name] = device
    return devices
