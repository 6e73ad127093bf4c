"""One benchmark network of neurograph's suite in Brian2 cpp_standalone, the same model as the
bundled spec (brian2_networks.py).

Prints one line: `sim_s spikes`, sim_s being the fastest of REPEATS runs of the compiled program
(the machine is shared and noisy).
Usage: python suite_brian2.py NETWORK DURATION_S BUILD_DIR [REPEATS=3] [THREADS=0]
NETWORK is cuba, coba, cobahh or stdp; THREADS > 0 sets openmp_threads."""
import os
import sys

from brian2 import *  # noqa: F403

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brian2_networks as networks  # noqa: E402

network = sys.argv[1]
duration = float(sys.argv[2]) * second
build_dir = sys.argv[3]
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 0
set_device("cpp_standalone", directory=build_dir, build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = threads
defaultclock.dt = 0.1 * ms
seed(1)


def stdp():
    neurons, objects, S = networks.stdp()
    S.w = "rand() * gmax"
    return neurons, objects


P, objects = {"cuba": networks.cuba, "coba": networks.coba, "cobahh": networks.cobahh,
              "stdp": stdp}[network]()
mon = SpikeMonitor(P)
net = Network(*objects, mon)
net.run(duration)
device.build(directory=build_dir, compile=True, run=False, clean=True)
best = None
for _ in range(repeats):
    device.run(build_dir, with_output=False, run_args=[])
    t = device._last_run_time
    best = t if best is None or t < best else best
print(f"{best:.4f} {mon.num_spikes}")
