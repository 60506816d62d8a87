"""The exceptions skyrun's RunEngine raises and throws into plans: Bluesky's
own classes when bluesky is installed (so plans written against Bluesky catch
them unchanged), equivalents otherwise."""

try:
    from bluesky.utils import (
        FailedStatus,
        IllegalMessageSequence,
        InvalidCommand,
        RequestAbort,
        RequestStop,
        RunEngineInterrupted,
    )
    from bluesky._vendor.super_state_machine.errors import TransitionError
    from bluesky.run_engine import WaitForTimeoutError
    from event_model import EventModelValueError
except ImportError:  # pragma: no cover - bluesky is what skyrun runs

    class RequestAbort(Exception):
        """Thrown into a plan that is being aborted."""

    class RequestStop(Exception):
        """Thrown into a plan that is being stopped."""

    class RunEngineInterrupted(Exception):
        """RE() returned because the RunEngine paused."""

    class IllegalMessageSequence(Exception):
        """A message not allowed now (close_run with no run open, ...)."""

    class FailedStatus(Exception):
        """A status the plan waited on failed."""

    class InvalidCommand(KeyError):
        """A message command the RunEngine does not know."""

    class TransitionError(RuntimeError):
        """A control request (pause, resume, ...) not valid in the current state."""

    class WaitForTimeoutError(TimeoutError):
        """A ``wait_for`` whose awaitables did not finish in time."""

    class EventModelValueError(ValueError):
        """event-model's: a document field the run cannot use."""


class DeviceError(RuntimeError):
    """A device refused or failed an operation."""


class WaitTimeoutError(WaitForTimeoutError):
    """A ``wait`` with a timeout timed out (Bluesky's ``WaitForTimeoutError``,
    a ``TimeoutError``, as Bluesky's ``wait`` raises)."""


class PlanFailed(RuntimeError):
    """The plan failed for a reason the engine reports (no Python exception)."""


class BundleAssertionError(IllegalMessageSequence, AssertionError):
    """A check of the bundler Bluesky makes with ``assert`` (the stream
    declarations do not allow what the message asks)."""


class BundleRuntimeError(IllegalMessageSequence, RuntimeError):
    """What was read or collected contradicts a stream's descriptor
    (Bluesky's bundler raises ``RuntimeError``)."""


class BundleValueError(IllegalMessageSequence, ValueError):
    """Data keys of two objects collide in one event (Bluesky's bundler
    raises ``ValueError``)."""


class BundleEventModelValueError(IllegalMessageSequence, EventModelValueError):
    """A stream datum's ``seq_nums`` or ``indices`` the run cannot use
    (event-model's ``EventModelValueError``, as Bluesky raises)."""


class Halted(RequestAbort):
    """The plan was halted (it is closed, not given a chance to clean up)."""


_KINDS = {
    "abort": RequestAbort,
    "stop": RequestStop,
    "halt": Halted,
    "status": FailedStatus,
    "timeout": WaitTimeoutError,
    "unknown": InvalidCommand,
    "ill_formed": ValueError,
    "illegal": IllegalMessageSequence,
    # The bundler's checks: Bluesky's exception, and an IllegalMessageSequence.
    "AssertionError": BundleAssertionError,
    "RuntimeError": BundleRuntimeError,
    "ValueError": BundleValueError,
    "EventModelValueError": BundleEventModelValueError,
    "device": DeviceError,
    "failed": PlanFailed,
}


def from_engine(kind, message):
    """The exception for an engine failure of ``kind`` (see ``_KINDS``)."""
    return _KINDS.get(kind, PlanFailed)(message)
