"""CUBA (Brette et al. 2007 benchmark 2, Brian2 examples/CUBA.py) in Brian2 cpp_standalone,
single-threaded, timed in phases. Prints one line: `setup_s compile_s sim_s total_s spikes`, where sim_s is the
fastest of REPEATS runs of the compiled program (the machine is shared and noisy) and total_s
covers the first run only.
Usage: python cuba_brian2.py DURATION_S BUILD_DIR [REPEATS=3]"""
import os
import sys
import time

t0 = time.perf_counter()
from brian2 import *  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brian2_networks as networks  # noqa: E402

duration = float(sys.argv[1]) * second
build_dir = sys.argv[2]
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
set_device("cpp_standalone", directory=build_dir, build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = 0
defaultclock.dt = 0.1 * ms
seed(1)

P, objects = networks.cuba()
s_mon = SpikeMonitor(P)
net = Network(*objects, s_mon)
net.run(duration)
t1 = time.perf_counter()
device.build(directory=build_dir, compile=False, run=False, clean=True)
t2 = time.perf_counter()
device.compile_source(build_dir, compiler=None, debug=False, clean=True)
t3 = time.perf_counter()
device.run(build_dir, with_output=False, run_args=[])
t4 = time.perf_counter()
sim_s = device._last_run_time
for _ in range(repeats - 1):
    device.run(build_dir, with_output=False, run_args=[])
    sim_s = sim_s if sim_s <= device._last_run_time else device._last_run_time
print(f"{t2 - t0:.4f} {t3 - t2:.4f} {sim_s:.4f} {t4 - t0:.4f} {s_mon.num_spikes}")
