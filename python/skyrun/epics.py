"""EPICS devices with ophyd's constructors, names and reading keys, running
as skyrun actors (Rust, Channel Access through skyrun-epics): code ports by
changing ``from ophyd import EpicsMotor, EpicsSignal`` to
``from skyrun.epics import EpicsMotor, EpicsSignal``.

- ``EpicsMotor(prefix, *, name)``: a motor record; readings ``NAME`` (.RBV)
  and ``NAME_user_setpoint`` (.VAL); a move is done when DMOV returns to 1
  after the put; HLM/LLM refuse a move before it starts; ``stop()`` puts STOP.
- ``EpicsSignal(read_pv, write_pv=None, *, name, put_complete=False,
  tolerance=None)``: ``set`` puts to ``write_pv`` (default ``read_pv``) and
  completes on the IOC's put callback (``put_complete``) or when the
  readback reaches the value.
- ``EpicsSignalRO(read_pv, *, name)``: read only.

Each PV is monitored, so ``read()`` answers from the latest update. A device
connects when it is made (``connection_timeout``, 2 s by default); a PV that
does not connect raises ``TimeoutError`` naming it. :func:`connect` connects
many at once (one round for 5,000 PVs); so does
``skyrun.load_devices`` for the ``[[epics_*]]`` tables of a device file.
The process's Channel Access client reads ``EPICS_CA_ADDR_LIST`` and the
other ``EPICS_CA_*`` variables when the first device connects.
"""

from . import _skyrun
from .sim import _Device

DEFAULT_CONNECTION_TIMEOUT = 2.0

# ophyd keywords that change nothing here (skyrun always monitors, reads
# numbers and strings as the record gives them, and reads limits from it).
_IGNORED = {"auto_monitor", "string", "limits", "metadata", "cl", "attr_name", "read_attrs",
            "configuration_attrs", "settle_time", "write_timeout"}


def _check(cls, name, kwargs):
    unknown = sorted(set(kwargs) - _IGNORED)
    if unknown:
        raise TypeError(f"{cls}(name={name!r}): unsupported keyword argument(s): {', '.join(unknown)}")
    if not name or not isinstance(name, str):
        raise ValueError(f"{cls}: name= is required (the key of its readings), got {name!r}")


class _Epics(_Device):
    """What every skyrun EPICS device has: its spec, connected when made."""

    def _start(self, spec, connection_timeout, core=None, *, parent=None, labels=None, kind=None):
        if core is None:
            core = _skyrun.connect_epics([spec], float(connection_timeout))[0]
        self._spec = spec
        super().__init__(core, parent=parent, labels=labels, kind=kind)

    @classmethod
    def _from_core(cls, core, spec, **kw):
        self = cls.__new__(cls)
        _Epics._start(self, spec, None, core, **kw)
        return self

    def wait_for_connection(self, timeout=None):
        """Connected when made (a device that did not connect was never made)."""

    def trigger(self):
        return self._skyrun_core.trigger()

    def get(self):
        """The latest value of the read PV (the motor's readback)."""
        return self.read()[self.name]["value"]


class EpicsSignalRO(_Epics):
    """A read-only PV, as ``ophyd.EpicsSignalRO(read_pv, *, name)``."""

    def __init__(self, read_pv, *, name=None, connection_timeout=DEFAULT_CONNECTION_TIMEOUT, parent=None,
                 labels=None, kind=None, **kwargs):
        _check("EpicsSignalRO", name, kwargs)
        spec = {"kind": "epics_signal", "name": name, "read_pv": read_pv, "read_only": True}
        self._start(spec, connection_timeout, parent=parent, labels=labels, kind=kind)

    @property
    def pvname(self):
        return self._spec["read_pv"]


class EpicsSignal(EpicsSignalRO):
    """A PV pair, as ``ophyd.EpicsSignal(read_pv, write_pv=None, *, name,
    put_complete=False, tolerance=None)``; ``timeout`` fails a set's status
    after that many seconds."""

    def __init__(self, read_pv, write_pv=None, *, name=None, put_complete=False, tolerance=None, timeout=None,
                 connection_timeout=DEFAULT_CONNECTION_TIMEOUT, parent=None, labels=None, kind=None, **kwargs):
        _check("EpicsSignal", name, kwargs)
        spec = {"kind": "epics_signal", "name": name, "read_pv": read_pv, "write_pv": write_pv,
                "read_only": False, "put_complete": bool(put_complete), "tolerance": tolerance,
                "timeout": timeout}
        self._start(spec, connection_timeout, parent=parent, labels=labels, kind=kind)

    @property
    def setpoint_pvname(self):
        return self._spec["write_pv"] or self._spec["read_pv"]

    @property
    def put_complete(self):
        return self._spec["put_complete"]

    def set(self, value, *, timeout=None, settle_time=None):
        return self._skyrun_core.set(value)

    def put(self, value, **kwargs):
        """Writes ``value`` and waits until the set is done."""
        self.set(value).wait()


class EpicsMotor(_Epics):
    """A motor record, as ``ophyd.EpicsMotor(prefix, *, name)``; ``timeout``
    fails a move's status after that many seconds (default: none, as ophyd)."""

    def __init__(self, prefix="", *, name=None, timeout=None, connection_timeout=DEFAULT_CONNECTION_TIMEOUT,
                 parent=None, labels=None, kind=None, **kwargs):
        _check("EpicsMotor", name, kwargs)
        spec = {"kind": "epics_motor", "name": name, "prefix": prefix, "timeout": timeout}
        self._start(spec, connection_timeout, parent=parent, labels=labels, kind=kind)

    @property
    def prefix(self):
        return self._spec["prefix"]

    @property
    def position(self):
        """The readback (.RBV), now."""
        return self.get()

    def set(self, value, **kwargs):
        return self._skyrun_core.set(value)

    def move(self, position, wait=True, **kwargs):
        st = self.set(position)
        if wait:
            st.wait()
        return st

    def stop(self, *, success=False):
        self._skyrun_core.stop(success)


def connect(specs, connection_timeout=DEFAULT_CONNECTION_TIMEOUT):
    """Connects many devices at once: ``specs`` are dicts as
    ``_skyrun.parse_device_file`` gives them (``kind`` ``epics_motor`` with
    ``prefix``, or ``epics_signal`` with ``read_pv``, ``write_pv``,
    ``read_only``, ``put_complete``, ``tolerance``; ``name``; ``timeout``).
    Returns a dict of name to device; raises ``TimeoutError`` naming every
    PV that did not connect."""
    specs = [dict(s) for s in specs]
    cores = _skyrun.connect_epics(specs, float(connection_timeout))
    out = {}
    for spec, core in zip(specs, cores):
        if spec["kind"] == "epics_motor":
            cls = EpicsMotor
        elif spec.get("read_only"):
            cls = EpicsSignalRO
        else:
            cls = EpicsSignal
        out[spec["name"]] = cls._from_core(core, spec)
    return out
