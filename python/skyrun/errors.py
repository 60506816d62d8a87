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


class DeviceError(RuntimeError):
    """A device refused or failed an operation."""


class WaitTimeoutError(WaitForTimeoutError):
    """A ``wait`` with a timeout timed out (Bluesky's ``WaitForTimeoutError``,
    a ``TimeoutError``, as Bluesky's ``wait`` raises)."""


class PlanFailed(RuntimeError):
    """The plan failed for a reason the engine reports (no Python exception)."""


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
    "device": DeviceError,
    "failed": PlanFailed,
}


def from_engine(kind, message):
    """The exception for an engine failure of ``kind`` (see ``_KINDS``)."""
    return _KINDS.get(kind, PlanFailed)(message)
