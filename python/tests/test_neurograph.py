"""The Python package: the README example, agreement with the command line, errors with
their place, the GIL released while simulating, Ctrl-C, checkpoints."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neurograph as ng

ROOT = Path(__file__).resolve().parents[2]
CUBA = ROOT / "specs" / "cuba.ng"


def test_the_readme_example(tmp_path):
    model = ng.compile(str(CUBA))
    sim = model.simulation(seed=1, params={"we": "1.7 mV"})
    sim.run("200 ms")
    t, i = sim.spikes("E")
    assert t.dtype == np.float64 and i.dtype == np.uint32
    assert len(t) == len(i) > 100
    assert np.all(np.diff(t) >= 0) and t[-1] < 0.2
    assert i.max() < 3200
    v = sim.state("E", "v")
    assert v.dtype == np.float64 and v.shape == (3200,)
    assert np.all((v > -0.1) & (v <= -0.0499))  # SI units: volts, at most Vt
    assert sim.param("we") == pytest.approx(1.7e-3)
    sim.set_param("LIF.taum", "18 ms")
    assert sim.param("LIF.taum") == pytest.approx(0.018)
    sim.run("200 ms")
    assert sim.steps == 4000 and sim.t == pytest.approx(0.4)
    assert len(sim.spikes("E")[0]) > len(t)
    sim.write_trace(str(tmp_path / "cuba"))
    manifest = json.loads((tmp_path / "cuba" / "manifest.json").read_text())
    assert manifest["format"] == "neurograph-trace" and manifest["steps"] == 4000
    written = np.load(tmp_path / "cuba" / "E.spikes.t.npy")
    assert np.array_equal(written, sim.spikes("E")[0])


def test_same_seed_gives_the_spikes_the_command_line_gives(tmp_path):
    binary = os.environ.get("NEUROGRAPH_BIN", str(ROOT / "target" / "debug" / "neurograph"))
    out = tmp_path / "trace"
    subprocess.run(
        [binary, "run", str(CUBA), "--seed", "11", "--duration", "100ms", "--quiet",
         "--out", str(out)],
        check=True,
    )
    sim = ng.compile(str(CUBA)).simulation(seed=11)
    sim.run("100 ms")
    for pop in ("E", "I"):
        t, i = sim.spikes(pop)
        assert np.array_equal(t, np.load(out / f"{pop}.spikes.t.npy"))
        assert np.array_equal(i, np.load(out / f"{pop}.spikes.i.npy"))


def test_backends_agree_bit_for_bit():
    model = ng.compile(str(CUBA))
    a, b = model.simulation(seed=3, backend="jit"), model.simulation(seed=3, backend="interp")
    for s in (a, b):
        s.run("20 ms")
        s.set_param("LIF.El", "-40 mV")
        s.run("20 ms")
    assert np.array_equal(a.state("E", "v"), b.state("E", "v"))
    assert np.array_equal(a.spikes("I")[1], b.spikes("I")[1])


def test_threads_change_no_result():
    model = ng.compile(str(CUBA))
    one, two = model.simulation(seed=4), model.simulation(seed=4, threads=2)
    for s in (one, two):
        s.run("50 ms")
    assert np.array_equal(one.state("E", "v"), two.state("E", "v"))
    assert np.array_equal(one.spikes("E")[1], two.spikes("E")[1])
    with pytest.raises(ValueError, match="threads"):
        model.simulation(threads=0)


def test_errors_carry_their_place():
    with pytest.raises(ng.CompileError) as err:
        ng.compile_str("model x\nneuron N { state v: volt = 0 mV; dv/dt = v }\n")
    assert "unit mismatch" in str(err.value)
    assert err.value.locations[0].startswith("<string>:2:42: error:")
    assert isinstance(err.value, ng.NeurographError)
    sim = ng.compile(str(CUBA)).simulation()
    with pytest.raises(KeyError, match="no population or projection `X`"):
        sim.state("X", "v")
    with pytest.raises(ValueError, match="is in s"):
        sim.set_param("LIF.taum", "5 mV")
    with pytest.raises(ValueError):
        sim.run("5 mV")
    with pytest.raises(ValueError, match="backend"):
        ng.compile(str(CUBA)).simulation(backend="gpu")


def test_state_can_be_written_from_numpy():
    sim = ng.compile(str(CUBA)).simulation(seed=2)
    sim.set_state("E", "v", np.full(3200, -0.055))
    assert np.all(sim.state("E", "v") == -0.055)
    with pytest.raises(ValueError):
        sim.set_state("E", "v", np.zeros(3))


def test_the_gil_is_released_while_simulating():
    sim = ng.compile(str(CUBA)).simulation(seed=4)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    started = time.monotonic()
    sim.run("2 s")
    elapsed = time.monotonic() - started
    done.set()
    counter.join()
    during = [t for t in ticks if started < t < started + elapsed]
    # Held GIL: the counter would run only between pieces; released: it ticks throughout.
    assert len(during) > 0.2 * elapsed / 0.001, (len(during), elapsed)


def test_ctrl_c_interrupts_a_run_at_a_step_boundary():
    # Python ignores SIGINT when its parent did (a shell's background job): install the
    # KeyboardInterrupt handler for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ctrl_c_interrupts_a_run()
    finally:
        signal.signal(signal.SIGINT, previous)


def ctrl_c_interrupts_a_run():
    sim = ng.compile(str(CUBA)).simulation(seed=5)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        sim.run("1000 s")
    timer.join()
    steps = sim.steps
    assert 0 < steps < 10_000_000
    # Still usable afterwards.
    sim.step(10)
    assert sim.steps == steps + 10


def test_a_saved_simulation_resumes_bit_identically(tmp_path):
    model = ng.compile(str(CUBA))
    straight = model.simulation(seed=6)
    straight.run("100 ms")
    first = model.simulation(seed=6)
    first.run("50 ms")
    first.save(str(tmp_path / "c.ckpt"))
    resumed = model.resume(str(tmp_path / "c.ckpt"))
    resumed.run("50 ms")
    assert np.array_equal(straight.spikes("E")[0], resumed.spikes("E")[0])
    assert np.array_equal(straight.state("I", "v"), resumed.state("I", "v"))


def test_silencing_removes_the_neurons_spikes_until_undone():
    model = ng.compile(str(CUBA))
    # Five neurons that fire between 100 and 200 ms when nothing is silenced.
    free = model.simulation(seed=3)
    free.run("200 ms")
    t, i = free.spikes("E")
    window = (t >= 0.1) & (t < 0.2)
    quiet = sorted(set(i[window].tolist()))[:5]
    assert len(quiet) == 5
    sim = model.simulation(seed=3)
    sim.run("100 ms")
    sim.silence("E", quiet)
    assert sim.silenced("E") == quiet
    sim.run("100 ms")
    t, i = sim.spikes("E")
    late = (t >= 0.1) & (t < 0.2)
    assert late.any()
    assert not np.isin(i[late], quiet).any()
    sim.unsilence()
    assert sim.silenced("E") == []
    with pytest.raises(KeyError):
        sim.silence("Nope", [0])
    with pytest.raises(ValueError):
        sim.silence("E", [4000])
