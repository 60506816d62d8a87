"""skyrun: run Bluesky's plans, unmodified, on skyrun's actor-based Rust RunEngine.

>>> from skyrun import RunEngine
>>> from skyrun.sim import det, motor
>>> import bluesky.plans as bp
>>> RE = RunEngine()
>>> uids = RE(bp.scan([det], motor, -1, 1, 5))  # doctest: +SKIP
"""

from . import _skyrun
from ._skyrun import Status
from .devices import load_devices
from .errors import FailedStatus, RequestAbort, RequestStop, RunEngineInterrupted
from .run_engine import RunEngine

__version__ = _skyrun.__version__

__all__ = [
    "RunEngine",
    "Status",
    "load_devices",
    "FailedStatus",
    "RequestAbort",
    "RequestStop",
    "RunEngineInterrupted",
    "sim",
]


def __getattr__(name):
    # `skyrun.sim` spawns its ready-made devices on first use, not at `import skyrun`.
    if name == "sim":
        import importlib

        return importlib.import_module(".sim", __name__)
    raise AttributeError(f"module 'skyrun' has no attribute {name!r}")
