"""Cost of one `Simulation.step(1)` call from Python on CUBA (N = 4000), to compare with
`cargo bench --bench jit -- seed/step_one_call` (the same call from Rust).
Run: `./test.sh` once (it creates target/py-venv), then
`(cd python && VIRTUAL_ENV=$PWD/../target/py-venv PATH=$PWD/../target/py-venv/bin:$PATH maturin develop --release -q) && target/py-venv/bin/python benches/python_step.py`."""

import time
from pathlib import Path

import neurograph as ng

ROOT = Path(__file__).resolve().parents[1]
sim = ng.compile(str(ROOT / "specs" / "cuba.ng")).simulation(seed=1)
sim.step(1000)
best = float("inf")
for _ in range(5):
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        sim.step(1)
    best = min(best, (time.perf_counter() - started) / n)
print(f"python step(1) on CUBA: {best * 1e6:.2f} us per call (fastest of 5 x 2000 calls)")
