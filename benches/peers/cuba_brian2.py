"""CUBA (Brette et al. 2007 benchmark 2, Brian2 examples/CUBA.py) in Brian2 cpp_standalone,
single-threaded, timed in phases. Prints one line: `setup_s compile_s sim_s total_s spikes`, where sim_s is the
fastest of REPEATS runs of the compiled program (the machine is shared and noisy) and total_s
covers the first run only.
Usage: python cuba_brian2.py DURATION_S BUILD_DIR [REPEATS=3]"""
import sys
import time

t0 = time.perf_counter()
from brian2 import *  # noqa: E402

duration = float(sys.argv[1]) * second
build_dir = sys.argv[2]
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
set_device("cpp_standalone", directory=build_dir, build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = 0
defaultclock.dt = 0.1 * ms
seed(1)

taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
eqs = """
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
"""
P = NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact")
P.v = "Vr + rand() * (Vt - Vr)"
P.ge = 0 * mV
P.gi = 0 * mV
we = (60 * 0.27 / 10) * mV
wi = (-20 * 4.5 / 10) * mV
Ce = Synapses(P, P, on_pre="ge += we")
Ci = Synapses(P, P, on_pre="gi += wi")
Ce.connect("i<3200", p=0.02)
Ci.connect("i>=3200", p=0.02)
s_mon = SpikeMonitor(P)
run(duration)
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
