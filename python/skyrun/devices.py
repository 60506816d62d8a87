"""``skyrun.load_devices(path)``: the devices of a skyrun device file (the TOML
``skyrun run --devices`` reads), as ``skyrun.sim`` objects, and its EPICS
devices as ``skyrun.epics`` objects (every PV connected at once)."""

from . import _skyrun


def load_devices(path, connection_timeout=2.0):
    """A dict of name to device for the device file at ``path``.

    Raises ``ValueError`` naming ``FILE:LINE:COLUMN`` and what is wrong for a
    bad file, and ``TimeoutError`` naming every EPICS PV that did not connect
    within ``connection_timeout`` seconds.
    """
    from . import sim

    devices = {}
    epics = []
    for spec in _skyrun.parse_device_file(str(path)):
        name, kind = spec["name"], spec["kind"]
        if kind == "motor":
            devices[name] = sim.SynAxis(
                name=name, value=spec["position"], delay=spec["settle_time"], velocity=spec["velocity"],
                limits=spec["limits"], units=spec["units"], timeout=spec["timeout"], labels={"motors"},
            )
        elif kind == "detector":
            devices[name] = sim.SynGauss(
                name, devices[spec["motor"]], spec["motor"], center=spec["center"], Imax=spec["imax"],
                sigma=spec["sigma"], noise=spec["noise"], noise_multiplier=spec["noise_multiplier"],
                exposure_time=spec["exposure_time"], labels={"detectors"},
            )
        elif kind == "signal":
            devices[name] = sim.SynSignal(name=name, value=spec["value"], units=spec["units"])
        elif kind == "flyer":
            devices[name] = sim.SynFlyer(name, spec["num_points"], spec["start"], spec["stop"], spec["duration"])
        elif kind.startswith("epics_"):
            epics.append(spec)
    if epics:
        from . import epics as _epics

        devices.update(_epics.connect(epics, connection_timeout))
    return devices
