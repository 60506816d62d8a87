"""Simulated devices with ophyd.sim's constructors, names and reading keys,
running as skyrun actors (Rust): code ports by changing
``from ophyd.sim import ...`` to ``from skyrun.sim import ...``.

They have what Bluesky's plans check (``name``, ``parent``, ``read`` /
``describe``, ``read_configuration`` / ``describe_configuration``, ``set`` /
``trigger`` / ``stage`` / ..., ``hints``). Inside a plan, reach them with
messages (``yield from bps.rd(det)``); calling ``det.read()`` directly from a
running plan raises a clear error (the plan runs on the engine's thread).
"""

import types

from . import _skyrun


class _Device:
    """What every skyrun.sim device has: a skyrun actor and ophyd's basic attributes."""

    def __init__(self, core, *, parent=None, labels=None, kind=None, hint_fields=None):
        self._skyrun_core = core
        self.parent = parent
        self._ophyd_labels_ = set(labels or ())
        self.kind = kind
        # Hints are static (Bluesky's plans read them synchronously while building metadata).
        self._hints = {"fields": list(hint_fields if hint_fields is not None else [core.name])}

    @property
    def name(self):
        return self._skyrun_core.name

    @property
    def hints(self):
        return self._hints

    @property
    def connected(self):
        return True

    def read(self):
        return self._skyrun_core.read()

    def describe(self):
        return self._skyrun_core.describe()

    def read_configuration(self):
        return self._skyrun_core.read_configuration()

    def describe_configuration(self):
        return self._skyrun_core.describe_configuration()

    def stage(self):
        self._skyrun_core.stage()
        return [self]

    def unstage(self):
        self._skyrun_core.unstage()
        return [self]

    def __repr__(self):
        return repr(self._skyrun_core)


class SynAxis(_Device):
    """A simulated motor: reading keys ``NAME`` (readback) and ``NAME_setpoint``.

    As ``ophyd.sim.SynAxis(name=..., value=0, delay=0, ...)``; ``delay`` is
    the time a move takes to report done. skyrun extras: ``velocity`` (moves
    take distance / velocity), ``limits=(low, high)``, ``units``.
    """

    def __init__(self, *, name, readback_func=None, value=0, delay=0, precision=3, parent=None, labels=None,
                 kind=None, velocity=None, limits=None, units=None, timeout=None, **kwargs):
        if readback_func is not None:
            raise ValueError(f"{name}: readback_func is not supported by skyrun.sim.SynAxis")
        core = _skyrun.spawn_axis(name, float(value), velocity, float(delay), limits, units, timeout)
        super().__init__(core, parent=parent, labels=labels, kind=kind)
        self.precision = precision

    @property
    def position(self):
        """The readback position, now."""
        return self._skyrun_core.position

    def set(self, value):
        return self._skyrun_core.set(value)

    def stop(self, *, success=False):
        self._skyrun_core.stop(success)


class SynGauss(_Device):
    """A detector reading ``Imax * exp(-(x - center)**2 / (2 sigma**2))`` of ``motor``'s position.

    As ``ophyd.sim.SynGauss(name, motor, motor_field, center, Imax, *, sigma=1,
    noise="none", noise_multiplier=1)``; reading key ``NAME``. ``motor`` must
    be a ``skyrun.sim.SynAxis``.
    """

    def __init__(self, name, motor, motor_field, center, Imax, *, sigma=1, noise="none", noise_multiplier=1,
                 random_state=None, exposure_time=0, parent=None, labels=None, kind=None, **kwargs):
        if not isinstance(motor, SynAxis):
            raise TypeError(f"{name}: the motor must be a skyrun.sim.SynAxis, got {type(motor).__name__}")
        core = _skyrun.spawn_gauss(name, motor._skyrun_core, float(center), float(Imax), float(sigma), noise,
                                   float(noise_multiplier), float(exposure_time))
        super().__init__(core, parent=parent, labels=labels, kind=kind)
        self._motor = motor
        self._motor_field = motor_field

    def trigger(self):
        return self._skyrun_core.trigger()


class SynSignal(_Device):
    """A signal holding a value (``set`` changes it, ``trigger`` completes at once).

    As ``ophyd.sim.SynSignal(name=...)``; skyrun holds ``value`` instead of
    calling a ``func`` (a ``func`` is called once, for the initial value).
    """

    def __init__(self, func=None, *, name, value=None, exposure_time=0, precision=3, parent=None, labels=None,
                 kind=None, units=None, **kwargs):
        if func is not None:
            value = func()
        core = _skyrun.spawn_signal(name, value, units)
        super().__init__(core, parent=parent, labels=labels, kind=kind)

    def set(self, value):
        return self._skyrun_core.set(value)

    def trigger(self):
        return self._skyrun_core.trigger()

    def get(self):
        return self.read()[self.name]["value"]


class SynFlyer(_Device):
    """A flyer acquiring ``num_points`` events over ``[start, stop]`` between kickoff and complete."""

    def __init__(self, name, num_points, start=-1.0, stop=1.0, duration=0.0, *, parent=None, labels=None,
                 kind=None):
        core = _skyrun.spawn_flyer(name, int(num_points), float(start), float(stop), float(duration))
        super().__init__(core, parent=parent, labels=labels, kind=kind, hint_fields=[])

    def kickoff(self):
        return self._skyrun_core.kickoff()

    def complete(self):
        return self._skyrun_core.complete()

    def describe_collect(self):
        return self._skyrun_core.describe_collect()

    def collect(self):
        return self._skyrun_core.collect()


class MockFlyer(SynFlyer):
    """``ophyd.sim.MockFlyer(name, detector, motor, start, stop, num_points)``'s
    signature; the events are skyrun's flyer's (``detector`` and ``motor`` are
    not read)."""

    def __init__(self, name, detector, motor, start, stop, num_points, loop=None, **kwargs):
        super().__init__(name, num_points, start, stop, **kwargs)
        self._detector = detector
        self._motor = motor


def hw():
    """Fresh simulated hardware, named as ``ophyd.sim.hw()`` names it."""
    motor = SynAxis(name="motor", labels={"motors"})
    motor1 = SynAxis(name="motor1", labels={"motors"})
    motor2 = SynAxis(name="motor2", labels={"motors"})
    motor3 = SynAxis(name="motor3", labels={"motors"})
    det = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1, labels={"detectors"})
    return types.SimpleNamespace(
        motor=motor,
        motor1=motor1,
        motor2=motor2,
        motor3=motor3,
        noisy_det=SynGauss("noisy_det", motor, "motor", center=0, Imax=1, noise="uniform", sigma=1,
                           noise_multiplier=0.1, labels={"detectors"}),
        det=det,
        identical_det=SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1, labels={"detectors"}),
        det1=SynGauss("det1", motor1, "motor1", center=0, Imax=5, sigma=0.5, labels={"detectors"}),
        det2=SynGauss("det2", motor2, "motor2", center=1, Imax=2, sigma=2, labels={"detectors"}),
        det3=SynGauss("det3", motor3, "motor3", center=-1, Imax=2, sigma=1, labels={"detectors"}),
        flyer1=MockFlyer("flyer1", det, motor, 1, 5, 20),
        flyer2=MockFlyer("flyer2", det, motor, 1, 5, 10),
        signal=SynSignal(name="signal"),
    )


# The ready-made devices of ophyd.sim (motor, motor1, det, det1, ...), as there.
globals().update(hw().__dict__)
