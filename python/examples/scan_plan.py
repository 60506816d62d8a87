"""A plan file for ``python -m skyrun run``: the devices of the device file
(here ``motor`` and ``det`` of examples/beamline.toml) are globals.

    python -m skyrun run python/examples/scan_plan.py --devices examples/beamline.toml
"""

import bluesky.plan_stubs as bps
import bluesky.plans as bp

md = {"purpose": "example"}


def plan():
    # A coarse scan, then a fine one around the centre.
    yield from bp.scan([det], motor, -5, 5, 11)  # noqa: F821 (defined by the device file)
    yield from bps.mv(motor, 0)  # noqa: F821
    yield from bp.rel_scan([det], motor, -0.5, 0.5, 5)  # noqa: F821
