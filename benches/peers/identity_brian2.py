"""Run one benchmark network (cuba, coba or cobahh) in Brian2 cpp_standalone and export what
neurograph needs to simulate the very same network: the connectivity of both projections and
the initial state, plus Brian2's spikes to compare with (benches/peers/identity.sh).

Writes into OUT_DIR: exc.npy and inh.npy (rows: pre index within its population, post index
over E then I), E_<var>.npy and I_<var>.npy (initial values in SI units) and brian2_spikes.npy
(rows: neuron index over E then I, spike time in seconds).
Usage: python identity_brian2.py NETWORK DURATION_S OUT_DIR"""
import os
import sys

import numpy as np
from brian2 import *  # noqa: F403

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brian2_networks as networks  # noqa: E402

network, duration, out = sys.argv[1], float(sys.argv[2]) * second, sys.argv[3]
os.makedirs(out, exist_ok=True)
set_device("cpp_standalone", directory=os.path.join(out, "build"))
defaultclock.dt = 0.1 * ms
seed(1)
P, objects = {"cuba": networks.cuba, "coba": networks.coba,
              "cobahh": networks.cobahh}[network]()
variables = {"cuba": ["v"], "coba": ["v", "ge", "gi"], "cobahh": ["v", "ge", "gi"]}[network]
# The state before the first step: one sample at t = 0, before the update.
initial = StateMonitor(P, variables, record=True, when="start", dt=duration)
spikes = SpikeMonitor(P)
Network(*objects, initial, spikes).run(duration)
Ce, Ci = objects[1], objects[2]
np.save(os.path.join(out, "exc.npy"), np.column_stack([Ce.i[:], Ce.j[:]]).astype(np.int64))
np.save(os.path.join(out, "inh.npy"),
        np.column_stack([Ci.i[:] - 3200, Ci.j[:]]).astype(np.int64))
for var in variables:
    values = np.asarray(getattr(initial, var)[:, 0])
    np.save(os.path.join(out, f"E_{var}.npy"), values[:3200])
    np.save(os.path.join(out, f"I_{var}.npy"), values[3200:])
np.save(os.path.join(out, "brian2_spikes.npy"),
        np.column_stack([spikes.i[:], np.asarray(spikes.t[:])]))
print(len(spikes.i))
