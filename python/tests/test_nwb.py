"""NWB export: files written by `Simulation.write_nwb` and `neurograph export --nwb` read
back with pynwb to the simulation's own numbers, pass pynwb's schema validation, and
nwbinspector finds no critical issue in the CUBA trace's file."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import neurograph as ng

pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

ROOT = Path(__file__).resolve().parents[2]
CUBA = ROOT / "specs" / "cuba.ng"
BIN = os.environ.get("NEUROGRAPH_BIN", str(ROOT / "target" / "debug" / "neurograph"))

SAMPLED = """
model sampled
neuron Unit {
  param tau = 10 ms
  state v: 1 = 0.05 * i
  dv/dt = (1.2 + 0.1 * i - v) / tau
  spike when v > 1 { v = 0 }
}
population P = Unit[6]
record P.spikes, P.v every 1 ms, P.v[2..4] every 0.5 ms
run { dt = 0.1 ms; duration = 200 ms; seed = 3 }
"""


def neurograph(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=ROOT)


def read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_spike_trains_and_metadata_read_back(tmp_path):
    sim = ng.compile(str(CUBA)).simulation(seed=7, params={"we": "1.7 mV"})
    sim.run("300 ms")
    out = tmp_path / "cuba.nwb"
    sim.write_nwb(str(out), species="Rattus norvegicus", experimenter=["Doe, Jane"])
    assert pynwb.validate(path=str(out)) == []
    io, f = read(out)
    try:
        units = f.units
        assert len(units) == 4000
        populations = list(units["population"][:])
        elements = list(units["element"][:])
        assert populations[:3200] == ["E"] * 3200 and populations[3200:] == ["I"] * 800
        assert elements[3199] == 3199 and elements[3200] == 0
        for pop, offset, size in (("E", 0, 3200), ("I", 3200, 800)):
            t, i = sim.spikes(pop)
            for k in range(size):
                train = np.asarray(units["spike_times"][offset + k])
                assert np.array_equal(train, t[i == k]), (pop, k)
        assert units.resolution == pytest.approx(1e-4)
        assert f.source_script == CUBA.read_text()
        assert f.source_script_file_name.endswith("cuba.ng")
        manifest = json.loads(f.data_collection)
        assert manifest["seed"] == 7 and manifest["model"] == "cuba"
        assert "we = 0.0017 V" in f.notes
        assert f.subject.species == "Rattus norvegicus"
        assert f.subject.sex == "U" and f.subject.age == "P0D/"
        assert list(f.experimenter) == ["Doe, Jane"]
        assert f.session_start_time.tzinfo is not None
    finally:
        io.close()


def test_sampled_state_is_a_time_series_in_si_units(tmp_path):
    (tmp_path / "sampled.ng").write_text(SAMPLED)
    sim = ng.compile(str(tmp_path / "sampled.ng")).simulation()
    sim.run("200 ms")
    sim.write_trace(str(tmp_path / "trace"))
    sim.write_nwb(str(tmp_path / "s.nwb"))
    manifest = json.loads((tmp_path / "trace" / "manifest.json").read_text())
    io, f = read(tmp_path / "s.nwb")
    try:
        assert set(f.acquisition) == {"P.v", "P.v_2"}
        for record in manifest["records"]:
            if record["kind"] != "state":
                continue
            ts = f.acquisition[record["name"]]
            values = np.load(tmp_path / "trace" / record["values"]["file"])
            times = np.load(tmp_path / "trace" / record["times"]["file"])
            assert np.array_equal(np.asarray(ts.data[:]), values)
            assert ts.unit == "1" and ts.conversion == 1.0
            assert ts.rate == pytest.approx(1.0 / (times[1] - times[0]))
            assert ts.starting_time == times[0]
        assert f.acquisition["P.v_2"].data.shape == (400, 2)
    finally:
        io.close()
    with pytest.raises(ValueError, match="exists"):
        sim.write_nwb(str(tmp_path / "s.nwb"))
    sim.write_nwb(str(tmp_path / "s.nwb"), overwrite=True)


def test_tables_for_connectivity_and_records_at_the_end(tmp_path):
    trace = tmp_path / "hmm"
    r = neurograph("run", "specs/hmm_glm.ng", "--duration", "200ms", "--out", str(trace), "--quiet")
    assert r.returncode == 0, r.stderr
    r = neurograph("export", str(trace), "--nwb", str(tmp_path / "hmm.nwb"))
    assert r.returncode == 0, r.stderr
    assert "3 time series, 2 tables" in r.stdout
    io, f = read(tmp_path / "hmm.nwb")
    try:
        edges = f.analysis["W.edges"].to_dataframe()
        assert np.array_equal(edges["pre"].to_numpy(), np.load(trace / "W.edges.pre.npy"))
        assert np.array_equal(edges["post"].to_numpy(), np.load(trace / "W.edges.post.npy"))
        w = np.load(trace / "W.w.npy")  # (regime states, synapses)
        table = f.analysis["W.w"]
        assert np.array_equal(np.asarray(table["value"][:]), w.T)
        brain = f.acquisition["regime.brain"]
        assert np.array_equal(np.asarray(brain.data[:]), np.load(trace / "regime.brain.npy"))
    finally:
        io.close()


def test_nwbinspector_finds_nothing_critical_in_the_cuba_trace(tmp_path):
    trace = tmp_path / "cuba"
    r = neurograph("run", "specs/cuba.ng", "--duration", "1s", "--out", str(trace), "--quiet")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "cuba.nwb"
    r = neurograph("export", str(trace), "--nwb", str(out), "--species", "Rattus norvegicus")
    assert r.returncode == 0, r.stderr
    assert "4000 units" in r.stdout
    assert pynwb.validate(path=str(out)) == []
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    worst = [m for m in messages if m.importance.name in ("CRITICAL", "PYNWB_VALIDATION", "ERROR")]
    assert worst == [], [m.message for m in worst]
    # Only suggestions remain (who ran it and where, which a trace cannot know).
    assert {m.check_function_name for m in messages} <= {
        "check_experimenter_exists",
        "check_institution",
    }
    # An existing file is left alone unless --overwrite.
    before = out.read_bytes()
    r = neurograph("export", str(trace), "--nwb", str(out))
    assert r.returncode == 1 and "--overwrite" in r.stderr
    assert out.read_bytes() == before
    r = neurograph("export", str(trace), "--nwb", str(tmp_path / "x.nwb"), "--sex", "female")
    assert r.returncode == 1 and "--sex female" in r.stderr
