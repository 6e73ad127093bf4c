"""NEST 3.10 running its own microcircuit model (PyPI `microcircuit`) at a given scale, for
benches/microcircuit.sh. Prints one JSON object: set-up (create + connect + prepare), the
presimulation and simulation times, the real-time factor of the simulation, synapses, peak
RSS and the mean rate per population over the simulation (after the presimulation).

Scale as specs/microcircuit.ng: `--scale` multiplies the numbers of neurons (N_scaling) and
keeps in-degrees (K_scaling = 1), so weights and input need no compensation. NEST allows at
most 134,217,726 connections per thread and synapse model: excitatory and inhibitory
projections go through two copies of `static_synapse` (same dynamics) so that the full-scale
model fits on two threads.
"""

import argparse
import json
import resource
import sys
import time

import nest
import numpy as np
from microcircuit import network as mc_network
from microcircuit.network import Network
from microcircuit.network_params import default_net_dict
from microcircuit.sim_params import default_sim_dict
from microcircuit.stimulus_params import default_stim_dict


def connect_split(self):
    """The package's recurrent connections, with inhibitory sources on their own copy of
    static_synapse (the rule, weights and delays are the package's)."""
    if "static_synapse_inh" not in nest.synapse_models:
        nest.CopyModel("static_synapse", "static_synapse_inh")
    nd = self.net_dict
    for i, target in enumerate(self.pops):
        for j, source in enumerate(self.pops):
            if self.num_synapses[i][j] <= 0:
                continue
            mean_d = nd["delay_matrix_mean"][i][j]
            delay = nest.math.redraw(
                nest.random.normal(mean=mean_d, std=mean_d * nd["delay_rel_std"]),
                min=nest.resolution - 0.5 * nest.resolution,
                max=np.inf,
            )
            w = self.weight_matrix_mean[i][j]
            lo, hi = (-np.inf, 0.0) if w < 0 else (0.0, np.inf)
            nest.Connect(
                source,
                target,
                conn_spec={"rule": "fixed_total_number", "N": self.num_synapses[i][j]},
                syn_spec={
                    "synapse_model": "static_synapse_inh" if w < 0 else "static_synapse",
                    "weight": nest.math.redraw(
                        nest.random.normal(mean=w, std=abs(w * nd["weight_rel_std"])),
                        min=lo,
                        max=hi,
                    ),
                    "delay": delay,
                },
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bg", choices=["poisson", "dc"], default="poisson")
    ap.add_argument("--presim", type=float, default=0.5, help="seconds")
    ap.add_argument("--sim", type=float, default=1.0, help="seconds")
    ap.add_argument("--data", default="target/microcircuit-nest")
    a = ap.parse_args()

    net_dict = dict(default_net_dict)
    net_dict["N_scaling"] = a.scale
    net_dict["K_scaling"] = 1.0
    net_dict["bg_input_type"] = a.bg
    sim_dict = dict(default_sim_dict)
    sim_dict.update(
        local_num_threads=a.threads,
        t_presim=a.presim * 1000.0,
        t_sim=a.sim * 1000.0,
        data_path=a.data.rstrip("/") + "/",
        print_time=False,
        store_metadata=False,
    )
    stim_dict = dict(default_stim_dict)
    mc_network.Network._Network__connect_neuronal_populations = connect_split

    t0 = time.time()
    net = Network(sim_dict, net_dict, stim_dict)
    net.create()
    # Count spikes in memory instead of writing ASCII files.
    net.spike_recorders.set(record_to="memory")
    net.connect()
    t1 = time.time()
    net.simulate(sim_dict["t_presim"])
    before = [r.get("n_events") for r in net.spike_recorders]
    t2 = time.time()
    net.simulate(sim_dict["t_sim"])
    t3 = time.time()
    after = [r.get("n_events") for r in net.spike_recorders]
    rates = [
        (b - c) / len(p) / a.sim for p, b, c in zip(net.pops, after, before)
    ]
    synapses = int(nest.GetKernelStatus("num_connections"))
    # Connections from devices (Poisson generators to every neuron, neurons to recorders).
    n = sum(len(p) for p in net.pops)
    recurrent = synapses - n * (2 if a.bg == "poisson" else 1)
    json.dump(
        {
            "simulator": "NEST " + nest.__version__,
            "scale": a.scale,
            "threads": a.threads,
            "background": a.bg,
            "neurons": n,
            "synapses": recurrent,
            "setup_s": t1 - t0,
            "presim_s": t2 - t1,
            "sim_s": t3 - t2,
            "rtf": (t3 - t2) / a.sim,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rates_hz": dict(zip(net_dict["populations"], rates)),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
