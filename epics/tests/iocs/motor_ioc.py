"""A motor-record IOC (caproto) for skyrun-epics' tests and bench.

    python motor_ioc.py PREFIX N [--switch-high X]

Serves motors PREFIX:MTR1 .. PREFIX:MTR{N}, each a motor record:
- a put to VAL drops DMOV to 0 (and raises MOVN) in the same step, moves
  RBV at VELO (1 mm/s by default), and answers the put callback only when
  DMOV is back to 1 (as a real motor record does);
- a move outside [LLM, HLM] (-10, 10) is refused;
- STOP=1 stops a move (VAL becomes RBV); it is a one-shot, reset to 0, and
  a STOP written while idle does nothing (Bluesky stops every moved motor
  at the end of a plan);
- with --switch-high X, the high limit switch (HLS) is at X: a move past it
  stops there with HLS=1.
Prints READY once serving. Loopback only: run it with
EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 and its own EPICS_CA_SERVER_PORT.
"""
import argparse
import asyncio
import math

from caproto.server import PVGroup, SubGroup, pvproperty, run
from caproto.server.records import MotorFields  # noqa: F401 (registers the record)

TICK = 0.02


class Motor(PVGroup):
    motor = pvproperty(value=0.0, name="", record="motor", precision=3)

    def __init__(self, *args, velocity=1.0, switch_high=1e9, **kwargs):
        super().__init__(*args, **kwargs)
        self.velocity = velocity
        self.switch_high = switch_high

    @motor.startup
    async def motor(self, instance, async_lib):
        f = instance.field_inst
        await f.velocity.write(self.velocity)
        await f.seconds_to_velocity.write(0.1)
        await f.user_low_limit.write(-10.0)
        await f.user_high_limit.write(10.0)
        await f.engineering_units.write("mm")
        await f.done_moving_to_value.write(1)
        await f.motor_is_moving.write(0)

    @motor.putter
    async def motor(self, instance, value):
        f = instance.field_inst
        lo, hi = f.user_low_limit.value, f.user_high_limit.value
        if lo < hi and not lo <= value <= hi:
            raise ValueError(f"{value} is outside the limits [{lo}, {hi}]")
        if f.stop.value:
            await f.stop.write(0)
        rbv = f.user_readback_value.value
        # VAL, DMOV 0 and MOVN 1 in the same step as the put.
        await instance.write(value, verify_value=False)
        await f.done_moving_to_value.write(0)
        await f.motor_is_moving.write(1)
        await f.direction_of_travel.write(1 if value >= rbv else 0)
        await f.user_high_limit_switch.write(0)
        await f.user_low_limit_switch.write(0)
        final = value
        while True:
            await asyncio.sleep(TICK)
            if f.stop.value:
                await f.stop.write(0)
                final = rbv
                break
            step = max(f.velocity.value, 1e-6) * TICK
            if abs(value - rbv) <= step:
                rbv = value
                break
            rbv += math.copysign(step, value - rbv)
            if rbv >= self.switch_high:
                rbv = final = self.switch_high
                await f.user_high_limit_switch.write(1)
                break
            await f.user_readback_value.write(rbv)
        await f.user_readback_value.write(rbv)
        await f.motor_is_moving.write(0)
        await f.done_moving_to_value.write(1)
        return final


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--switch-high", type=float, default=1e9)
    parser.add_argument("--velocity", type=float, default=1.0)
    args = parser.parse_args()

    # SubGroups must exist when the class is made (PVGroup's metaclass).
    Motors = type("Motors", (PVGroup,), {f"m{i}": SubGroup(Motor, prefix=f"MTR{i}",
                                                           velocity=args.velocity,
                                                           switch_high=args.switch_high)
                                         for i in range(1, args.count + 1)})
    ioc = Motors(prefix=f"{args.prefix}:")

    async def ready(async_lib):
        print("READY", flush=True)

    run(ioc.pvdb, interfaces=["127.0.0.1"], log_pv_names=False, startup_hook=ready)


if __name__ == "__main__":
    main()
