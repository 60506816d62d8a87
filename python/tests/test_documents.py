"""The real bluesky.plans on skyrun emit the document sequence Bluesky's own
RunEngine emits for the same plan on ophyd.sim, valid under event-model's
schemas."""

import bluesky.plans as bp
import ophyd.sim as osim
import pytest

import skyrun.sim as ssim

from conftest import assert_same_stream, collect, validate

PLANS = {
    "count": lambda s: bp.count([s.det], num=3),
    "count_two_dets": lambda s: bp.count([s.det1, s.det2], num=2),
    "scan": lambda s: bp.scan([s.det], s.motor, -1, 1, 5),
    "rel_scan": lambda s: bp.rel_scan([s.det], s.motor, -1, 1, 3),
    "list_scan": lambda s: bp.list_scan([s.det], s.motor, [0.5, -0.25, 2.0]),
    "grid_scan": lambda s: bp.grid_scan([s.det], s.motor1, -1, 1, 3,
                                        s.motor2, -1, 1, 2, snake_axes=True),
    "scan_two_motors": lambda s: bp.scan([s.det], s.motor1, -1, 1, s.motor2, 0, 2, 3),
}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_same_documents_as_bluesky(plan, bluesky_RE, skyrun_RE):
    for m in (osim.motor, osim.motor1, osim.motor2):
        m.set(0).wait(5)
    for m in (ssim.motor, ssim.motor1, ssim.motor2):
        m.set(0).wait(5)
    _, b = collect(bluesky_RE, PLANS[plan](osim))
    uids, s = collect(skyrun_RE, PLANS[plan](ssim))
    validate(b)
    validate(s)
    assert_same_stream(b, s)
    assert uids == tuple(d["uid"] for n, d in s if n == "start")


def test_rel_scan_is_relative_to_where_the_motor_is(skyrun_RE):
    ssim.motor.set(2.0).wait(5)
    _, docs = collect(skyrun_RE, bp.rel_scan([ssim.det], ssim.motor, -1, 1, 3))
    assert [d["data"]["motor"] for n, d in docs if n == "event"] == [1.0, 2.0, 3.0]
    # reset_positions_wrapper moved it back.
    assert ssim.motor.position == 2.0
    ssim.motor.set(0).wait(5)


def test_scan_id_is_kept_in_md_between_runs(skyrun_RE):
    skyrun_RE.md["scan_id"] = 41
    _, d1 = collect(skyrun_RE, bp.count([ssim.det]))
    _, d2 = collect(skyrun_RE, bp.count([ssim.det]), sample="Au")
    assert d1[0][1]["scan_id"] == 42 and d2[0][1]["scan_id"] == 43
    assert skyrun_RE.md["scan_id"] == 43
    assert d2[0][1]["sample"] == "Au" and "sample" not in d1[0][1]
    assert "sample" not in skyrun_RE.md


def test_re_returns_the_uid_of_every_run(skyrun_RE):
    def two_runs():
        yield from bp.count([ssim.det])
        yield from bp.count([ssim.det])

    uids, docs = collect(skyrun_RE, two_runs())
    assert len(uids) == 2
    assert uids == tuple(d["uid"] for n, d in docs if n == "start")
    assert [d["run_start"] for n, d in docs if n == "stop"] == list(uids)


def test_metadata_json_cannot_hold_is_refused_but_a_device_argument_can_be_any_object(skyrun_RE):
    """A start document holds JSON: an object in the metadata is a clear
    error naming it. A message argument for a device (ophyd-async's
    TriggerInfo for ``prepare``, say) reaches the device as the object."""
    from bluesky.utils import Msg

    class Opaque:
        def __repr__(self):
            return "Opaque()"

    with pytest.raises(TypeError, match=r"'open_run' message: cannot send a Opaque to skyrun.*Opaque\(\)"):
        skyrun_RE([Msg("open_run", thing=Opaque()), Msg("close_run")])

    got = []

    class Preparable:
        name = "prep"

        def prepare(self, value):
            from ophyd.status import Status

            got.append(value)
            st = Status()
            st.set_finished()
            return st

    value = Opaque()
    skyrun_RE([Msg("prepare", Preparable(), value, group="p"), Msg("wait", group="p")])
    assert got == [value] and got[0] is value


class _Hinted:
    """A readable object with the given ``hints`` (none: no ``hints`` attribute)."""

    def __init__(self, name, hints=None):
        self.name = name
        self.parent = None
        if hints is not None:
            self.hints = hints

    def read(self):
        return {self.name: {"value": 1.0, "timestamp": 0.0}}

    def describe(self):
        return {self.name: {"source": "test", "dtype": "number", "shape": []}}

    def read_configuration(self):
        return {}

    def describe_configuration(self):
        return {}


def test_descriptor_hints_are_each_objects_hints_as_bluesky_writes_them(bluesky_RE, skyrun_RE):
    """Bluesky writes ``hints[obj.name] = obj.hints`` for every object with
    ``hints``, whatever its dict holds (even empty), and leaves out an object
    without them: skyrun's descriptor says the same, for Python objects and
    its own devices."""
    import ophyd

    def objects():
        return [
            _Hinted("vis", {"vis": "placeholder"}),
            _Hinted("more", {"fields": ["more"], "gridding": "rectilinear", "n": [1, 2]}),
            _Hinted("empty", {}),
            _Hinted("none"),
            ophyd.Signal(name="normal", value=1.0, kind="normal"),
        ]

    expected = {
        "vis": {"vis": "placeholder"},
        "more": {"fields": ["more"], "gridding": "rectilinear", "n": [1, 2]},
        "empty": {},
        "normal": {"fields": []},
    }
    _, b = collect(bluesky_RE, bp.count(objects()))
    _, s = collect(skyrun_RE, bp.count(objects()))
    validate(s)
    (bd,) = [d for n, d in b if n == "descriptor"]
    (sd,) = [d for n, d in s if n == "descriptor"]
    assert bd["hints"] == expected
    assert sd["hints"] == expected
    # skyrun's own devices name their fields.
    _, s = collect(skyrun_RE, bp.count([ssim.det, _Hinted("vis", {"vis": "placeholder"})]))
    (sd,) = [d for n, d in s if n == "descriptor"]
    assert sd["hints"] == {"det": {"fields": ["det"]}, "vis": {"vis": "placeholder"}}
