"""Brian2's examples/synapses/STDP.py network (method='exact'), replaying the Poisson input
spikes and initial weights of a neurograph run of specs/stdp.ng, so that the output spikes can be
compared spike for spike (tests/simulation.rs, `stdp_replay_reproduces_brian2_spike_for_spike`).

Input: a directory written by `cargo run --example stdp_export -- DIR SECONDS SEED`
(inputs_t.npy, inputs_i.npy, w0.npy; out_t.npy and w_end.npy are neurograph's result).
Output: Brian2's output spike times and final weights, as .npy files, and a comparison.

    benches/peers/stdp_replay.sh    # exports, replays 10 s, rewrites tests/data/stdp_replay_*.npy

Equations, parameters and the network as in STDP.py (Brian2 2.11.0); the PoissonGroup is a
SpikeGeneratorGroup with neurograph's spikes; S.w = neurograph's initial weights instead of
'rand() * gmax'. Runtime target numpy.
"""
import builtins
import os
import sys

import numpy as np
from brian2 import *

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brian2_networks as networks  # noqa: E402

src, out_t_path, out_w_path = sys.argv[1], sys.argv[2], sys.argv[3]
seconds = float(sys.argv[4])

prefs.codegen.target = "numpy"
defaultclock.dt = 0.1 * ms

N = 1000
gmax = networks.STDP_GMAX
in_t = np.load(f"{src}/inputs_t.npy")
in_i = np.load(f"{src}/inputs_i.npy").astype(int)
w0 = np.load(f"{src}/w0.npy")
inputs = SpikeGeneratorGroup(N, in_i, in_t * second)
neurons, objects, S = networks.stdp(inputs)
assert np.all(S.i[:] == np.arange(N))
S.w = w0
mon = SpikeMonitor(neurons)
Network(*objects, mon).run(seconds * second, report="text")

t_b = np.asarray(mon.t / second, dtype=np.float64)
w_b = np.asarray(S.w[:], dtype=np.float64)
np.save(out_t_path, t_b)
np.save(out_w_path, w_b)

ours_t = np.load(f"{src}/out_t.npy")
ours_w = np.load(f"{src}/w_end.npy")
dt = 1e-4
print(f"Brian2: {len(t_b)} output spikes; neurograph: {len(ours_t)}")
n = builtins.min(len(t_b), len(ours_t))
mismatch = np.nonzero(np.abs(t_b[:n] - ours_t[:n]) >= dt / 2)[0]
if len(t_b) == len(ours_t) and len(mismatch) == 0:
    print("output spikes: identical steps")
else:
    k = mismatch[0] if len(mismatch) else n
    print(f"first difference at spike {k}: Brian2 {t_b[k:k+3]}, neurograph {ours_t[k:k+3]}")
print(f"final weights: largest difference {np.max(np.abs(w_b - ours_w)):.3e} (gmax {gmax})")
