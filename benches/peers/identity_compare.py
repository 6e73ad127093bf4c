"""Compare neurograph's spikes (a trace directory) with Brian2's (brian2_spikes.npy from
identity_brian2.py): prints how long the two stay identical, spike for spike.
Usage: python identity_compare.py TRACE_DIR BRIAN2_SPIKES DT_S DURATION_S"""
import sys

import numpy as np

trace, brian2_file, dt, duration = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
ours = []
for pop, offset in (("E", 0), ("I", 3200)):
    i = np.load(f"{trace}/{pop}.spikes.i.npy").astype(np.int64) + offset
    t = np.load(f"{trace}/{pop}.spikes.t.npy")
    ours.append(np.column_stack([np.rint(t / dt).astype(np.int64), i]))
ours = np.concatenate(ours)
b = np.load(brian2_file)
theirs = np.column_stack([np.rint(b[:, 1] / dt).astype(np.int64), b[:, 0].astype(np.int64)])
# Sorted by step, then neuron.
ours = ours[np.lexsort((ours[:, 1], ours[:, 0]))]
theirs = theirs[np.lexsort((theirs[:, 1], theirs[:, 0]))]
n = min(len(ours), len(theirs))
differ = np.nonzero(np.any(ours[:n] != theirs[:n], axis=1))[0]
if len(differ) == 0 and len(ours) == len(theirs):
    print(f"identical for {duration:g} s: {len(ours)} spikes")
else:
    k = differ[0] if len(differ) else n
    step = min(ours[k, 0] if k < len(ours) else 1 << 62, theirs[k, 0] if k < len(theirs) else 1 << 62)
    print(f"identical up to t = {step * dt:.4f} s ({k} spikes in common order); "
          f"totals {len(ours)} vs {len(theirs)}")
