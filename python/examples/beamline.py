"""A device module for ``python -m skyrun run PLAN.py --devices beamline.py``
(and ``python -m skyrun service --devices beamline.py``): ophyd-async's
simulated devices, made and connected as a beamline's module makes them.
Its devices are known by their names (here, their variables' names)::

    python -m skyrun run python/examples/scan_plan.py --devices python/examples/beamline.py

The RunEngine exists before the module runs, so ``init_devices()`` connects
them on its loop. The blob detector writes HDF5 files into ``$SKYRUN_DATA``
(default: the system's temporary folder).
"""

import os
import tempfile

from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector, SimStage

DATA = os.environ.get("SKYRUN_DATA", tempfile.gettempdir())

with init_devices():
    pattern = PatternGenerator()
    motor = SimMotor(instant=True)
    stage = SimStage(pattern)
    det = SimPointDetector(pattern, num_channels=2)
    blob = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), DATA), pattern)
