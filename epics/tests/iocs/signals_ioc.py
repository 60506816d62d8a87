"""A pythonSoftIOC (real C EPICS base) for skyrun-epics' tests and bench.

    python signals_ioc.py PREFIX N [--pva]

Serves, under PREFIX (records are PREFIX:NAME):
- AO:00000 .. AO:{N-1:05}: ao records, EGU mm, PREC 3, DRVL -100, DRVH 100;
- SLOW: an ao whose put completes 0.3 s after it is written (a blocking
  record: the put callback waits for its on_update);
- TICK: an ai counting up at 10 Hz;
- NAME: a stringout.
Prints READY once serving. Loopback only: run it with
EPICS_CAS_INTF_ADDR_LIST=127.0.0.1 and its own EPICS_CA_SERVER_PORT. With
--pva, the same records are served over PVAccess too (pvxs, through
pvxslibs): give it EPICS_PVAS_INTF_ADDR_LIST=127.0.0.1 and its own
EPICS_PVAS_SERVER_PORT and EPICS_PVAS_BROADCAST_PORT.
"""
import asyncio
import sys

from softioc import asyncio_dispatcher, builder, softioc

prefix, n = sys.argv[1], int(sys.argv[2])
pva = "--pva" in sys.argv[3:]
dispatcher = asyncio_dispatcher.AsyncioDispatcher()
builder.SetDeviceName(prefix)
for i in range(n):
    builder.aOut(f"AO:{i:05}", initial_value=0.0, EGU="mm", PREC=3, DRVL=-100, DRVH=100)


async def slow_update(value):
    await asyncio.sleep(0.3)


builder.aOut("SLOW", initial_value=0.0, EGU="s", PREC=2, on_update=slow_update,
             blocking=True, always_update=True)
tick = builder.aIn("TICK", initial_value=0.0, EGU="counts", PREC=0)
builder.stringOut("NAME", initial_value="skyrun")
builder.LoadDatabase()
softioc.iocInit(dispatcher, enable_pva=pva)


async def count():
    k = 0
    while True:
        await asyncio.sleep(0.1)
        k += 1
        tick.set(k)


dispatcher(count)
print("READY", flush=True)
softioc.non_interactive_ioc()
