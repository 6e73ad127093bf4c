"""Spike statistics of one neurograph trace computed by Elephant, side by side with
`neurograph analyze TRACE spikes --json`: the same definitions must agree to 1e-9.

Usage: elephant_stats.py TRACE_DIR ANALYZE_JSON NEUROGRAPH_SECONDS
(run through benches/peers/elephant.sh, which makes the trace, the JSON and the venv).
Per population: mean rate and rate SD (elephant.statistics.mean_firing_rate per train), ISI CV
(elephant.statistics.cv of elephant.statistics.isi, trains with >= 2 spikes), CV2 and LV
(elephant.statistics.cv2 / lv, trains with >= 3 spikes), Fano factor of the spike counts
(elephant.statistics.fanofactor), the population rate histogram
(elephant.statistics.time_histogram, output='rate', divided by n) and, with every pair
analysed, the mean correlation coefficient of binned counts
(elephant.spike_train_correlation.correlation_coefficient, NaN pairs left out)."""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import quantities as pq
import neo
from elephant import statistics
from elephant.conversion import BinnedSpikeTrain
from elephant.spike_train_correlation import correlation_coefficient

warnings.filterwarnings("ignore")
trace, ours_path, our_seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
manifest = json.loads((trace / "manifest.json").read_text())
ours = {p["population"]: p for p in json.loads(ours_path.read_text())["populations"]}
duration = manifest["duration_s"]

rows = []
worst = 0.0
elephant_seconds = 0.0
for rec in manifest["records"]:
    if rec.get("kind") != "events" or rec.get("event") != "spike":
        continue
    pop = rec["population"]
    if pop not in ours:
        continue
    o = ours[pop]
    n = rec.get("size") or o["n"]
    t = np.load(trace / rec["times"]["file"])
    i = np.load(trace / rec["indices"]["file"]).astype(np.int64)
    started = time.perf_counter()
    trains = [
        neo.SpikeTrain(np.sort(t[i == k]) * pq.s, t_start=0 * pq.s, t_stop=duration * pq.s)
        for k in range(n)
    ]
    rates = np.array([float(statistics.mean_firing_rate(s).rescale(pq.Hz)) for s in trains])
    cvs = [statistics.cv(statistics.isi(s).magnitude) for s in trains if len(s) >= 2]
    cv2s = [statistics.cv2(statistics.isi(s)) for s in trains if len(s) >= 3]
    lvs = [statistics.lv(statistics.isi(s)) for s in trains if len(s) >= 3]
    fano = statistics.fanofactor(trains)
    bin_s = json.loads(ours_path.read_text())["populations"][0]["bin_s"]
    hist = statistics.time_histogram(trains, bin_size=bin_s * pq.s, output="rate")
    # output='rate' is already per train: count / (bin width * number of trains).
    hist = np.asarray(hist.rescale(pq.Hz)).ravel()
    binned = BinnedSpikeTrain(trains, bin_size=bin_s * pq.s, t_start=0 * pq.s,
                              t_stop=duration * pq.s)
    cc = correlation_coefficient(binned)
    upper = cc[np.triu_indices(n, 1)]
    corr = float(np.nanmean(upper))
    elephant_seconds += time.perf_counter() - started
    m = len(o["rate_hz"])
    pairs = [
        ("mean rate Hz", float(rates.mean()), o["mean_rate_hz"]),
        ("rate SD Hz", float(rates.std()), o["rate_sd_hz"]),
        ("ISI CV", float(np.mean(cvs)), o["cv_isi"]["mean"]),
        ("CV2", float(np.mean(cv2s)), o["cv2"]["mean"]),
        ("LV", float(np.mean(lvs)), o["lv"]["mean"]),
        ("Fano", float(fano), o["fano"]),
    ]
    ours_hist = np.array(o["rate_hz"])
    # The histogram: its mean in the table, the largest per-bin difference as |diff|.
    hist_diff = float(np.max(np.abs(hist[:m] - ours_hist))) if m else 0.0
    worst = max(worst, hist_diff)
    rows.append((pop, f"rate histogram ({m} bins), mean Hz", float(hist[:m].mean()),
                 float(ours_hist.mean()), hist_diff))
    all_pairs = n * (n - 1) // 2
    sampled = o["correlation"]["pairs_sampled"]
    for name, theirs, mine in pairs:
        diff = abs(theirs - mine)
        worst = max(worst, diff)
        rows.append((pop, name, theirs, mine, diff))
    if sampled >= all_pairs:
        diff = abs(corr - o["correlation"]["mean"])
        worst = max(worst, diff)
        rows.append((pop, "mean corr. coeff.", corr, o["correlation"]["mean"], diff))
    else:
        # Ours is a sample of pairs: a statistical comparison, not an identity.
        rows.append((pop, f"mean corr. (ours: {sampled} pairs)", corr,
                     o["correlation"]["mean"], float("nan")))

print(f"{'population':<10} {'statistic':<32} {'Elephant':>16} {'neurograph':>16} {'|diff|':>10}")
for pop, name, theirs, mine, diff in rows:
    print(f"{pop:<10} {name:<32} {theirs:>16.10g} {mine:>16.10g} {diff:>10.2e}")
print(f"largest difference {worst:.2e}: {'agree to 1e-9' if worst <= 1e-9 else 'DIFFER'}")
print(f"time: Elephant {elephant_seconds:.3f} s (statistics only, trains already loaded from .npy), "
      f"neurograph analyze {our_seconds:.3f} s (the whole command: reading the trace included)")
sys.exit(0 if worst <= 1e-9 else 1)
