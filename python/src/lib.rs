//! The Python module `neurograph`: compile a spec, make simulations, run them with the GIL
//! released (Ctrl-C interrupts at a step boundary), read spikes and state as numpy arrays,
//! change parameters between runs, write traces and checkpoints. A thin layer over
//! `neurograph::{Model, Simulation}`; spec errors raise `CompileError` whose message is the
//! rendered diagnostic and whose `locations` are `file:line:col: error: message` lines.

use std::path::PathBuf;
use std::sync::Mutex;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use ::neurograph::{Backend, Error, Model, Simulation, Stopped};

create_exception!(
    neurograph,
    NeurographError,
    PyException,
    "A neurograph error."
);
create_exception!(
    neurograph,
    CompileError,
    NeurographError,
    "The spec has errors: the message renders them with file:line:col and the source line; `locations` lists `file:line:col: error: message` per diagnostic."
);
create_exception!(
    neurograph,
    DivergedError,
    NeurographError,
    "A state value became inf or NaN; the simulation stopped after that step."
);

/// A Rust error as the Python exception it stands for.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Compile {
            rendered, lines, ..
        } => {
            let err = CompileError::new_err(rendered);
            let _ = err.value(py).setattr("locations", lines);
            err
        }
        Error::Name(m) => PyKeyError::new_err(m),
        Error::Value(m) => PyValueError::new_err(m),
        e @ Error::Diverged(_) => DivergedError::new_err(e.to_string()),
        e => NeurographError::new_err(e.to_string()),
    }
}

/// A compiled spec. Every simulation made from it shares its compiled kernels.
#[pyclass(name = "Model", module = "neurograph", frozen)]
struct PyModel {
    model: Model,
}

/// Compile a spec file; data paths in it are relative to its directory.
#[pyfunction]
fn compile(py: Python<'_>, path: PathBuf) -> PyResult<PyModel> {
    let model = py
        .detach(|| Model::compile_file(&path))
        .map_err(|e| to_py(py, e))?;
    Ok(PyModel { model })
}

/// Compile spec text; data paths in it are relative to `base_dir` (default: the current
/// directory).
#[pyfunction]
#[pyo3(signature = (text, base_dir=None))]
fn compile_str(py: Python<'_>, text: String, base_dir: Option<PathBuf>) -> PyResult<PyModel> {
    let path = base_dir.unwrap_or_default().join("<string>");
    let model = py
        .detach(|| Model::compile_text(&path, text))
        .map_err(|e| to_py(py, e))?;
    Ok(PyModel { model })
}

#[pymethods]
impl PyModel {
    /// The model's name.
    #[getter]
    fn name(&self) -> String {
        self.model.name().to_string()
    }

    /// Every parameter that can change without recompiling, as `params`/`set_param` spell it.
    fn parameters(&self) -> Vec<String> {
        self.model.parameters()
    }

    /// A new simulation: `seed` (default: the spec's), `backend` ("jit" or "interp"),
    /// `params` ({"we": "1.7 mV", "LIF.taum": "18 ms"}), `threads` for the population
    /// updates (default 1; results do not depend on it).
    #[pyo3(signature = (seed=None, backend="jit", params=None, threads=1))]
    fn simulation(
        &self,
        py: Python<'_>,
        seed: Option<u64>,
        backend: &str,
        params: Option<&Bound<'_, PyDict>>,
        threads: usize,
    ) -> PyResult<PySimulation> {
        if threads == 0 {
            return Err(PyValueError::new_err("threads must be at least 1"));
        }
        let mut builder = self.model.simulation().backend(match backend {
            "jit" => Backend::Jit,
            "interp" => Backend::Interp,
            other => {
                return Err(PyValueError::new_err(format!(
                    "backend must be \"jit\" or \"interp\", not {other:?}"
                )))
            }
        });
        builder = builder.threads(threads);
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        if let Some(params) = params {
            for (k, v) in params.iter() {
                let name: String = k.extract()?;
                let value: String = match v.extract::<String>() {
                    Ok(s) => s,
                    Err(_) => v.str()?.to_string(),
                };
                builder = builder.set(&name, &value);
            }
        }
        let sim = py.detach(|| builder.build()).map_err(|e| to_py(py, e))?;
        Ok(PySimulation {
            sim: Mutex::new(sim),
        })
    }

    /// A simulation continued from a file written by `Simulation.save`.
    fn resume(&self, py: Python<'_>, path: PathBuf) -> PyResult<PySimulation> {
        let sim = Simulation::load_checkpoint(&self.model, &path).map_err(|e| to_py(py, e))?;
        Ok(PySimulation {
            sim: Mutex::new(sim),
        })
    }

    fn __repr__(&self) -> String {
        format!("<neurograph.Model {}>", self.model.name())
    }
}

/// Spike times (seconds) and element indices.
type SpikeArrays<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u32>>);

/// One simulation of a model.
#[pyclass(name = "Simulation", module = "neurograph", frozen)]
struct PySimulation {
    sim: Mutex<Simulation>,
}

impl PySimulation {
    fn lock(&self) -> std::sync::MutexGuard<'_, Simulation> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulate `n` steps with the GIL released, in pieces of about 50 ms of work: between
    /// pieces Python's signal handlers run, so Ctrl-C raises KeyboardInterrupt after a whole
    /// step (the simulation stays usable).
    fn run_steps(&self, py: Python<'_>, n: u64) -> PyResult<()> {
        let mut done = 0;
        let mut piece = 100u64;
        while done < n {
            let k = piece.min(n - done);
            let started = std::time::Instant::now();
            let outcome = py.detach(|| self.lock().step(k));
            match outcome.map_err(|e| to_py(py, e))? {
                Stopped::Done => {}
                Stopped::Interrupted => return Ok(()),
            }
            done += k;
            py.check_signals()?;
            // Aim at ~50 ms per piece so that Ctrl-C answers quickly at any model size.
            let took = started.elapsed().as_secs_f64().max(1e-6);
            piece = ((k as f64 * 0.05 / took) as u64).clamp(1, 1 << 20);
        }
        Ok(())
    }
}

#[pymethods]
impl PySimulation {
    /// Simulate for a duration with its unit, e.g. "200 ms".
    fn run(&self, py: Python<'_>, duration: &str) -> PyResult<()> {
        let dt = self.lock().dt();
        let (seconds, dim) = ::neurograph::compiler::quantity::parse_quantity(duration)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if dim != ::neurograph::compiler::units::Dim::TIME || seconds.is_nan() || seconds < 0.0 {
            return Err(PyValueError::new_err(format!(
                "{duration:?} is not a non-negative time; write e.g. \"200 ms\""
            )));
        }
        self.run_steps(py, (seconds / dt).round() as u64)
    }

    /// Simulate `n` steps (default 1).
    #[pyo3(signature = (n=1))]
    fn step(&self, py: Python<'_>, n: u64) -> PyResult<()> {
        self.run_steps(py, n)
    }

    /// Steps simulated so far.
    #[getter]
    fn steps(&self) -> u64 {
        self.lock().steps()
    }

    /// Simulated time so far, seconds.
    #[getter]
    fn t(&self) -> f64 {
        self.lock().time()
    }

    /// The recorded spikes of a population: (times in seconds, element indices) arrays.
    fn spikes<'py>(&self, py: Python<'py>, population: &str) -> PyResult<SpikeArrays<'py>> {
        let (t, i) = self.lock().spikes(population).map_err(|e| to_py(py, e))?;
        Ok((PyArray1::from_vec(py, t), PyArray1::from_vec(py, i)))
    }

    /// A variable of a population or projection, one float64 per element, SI units.
    fn state<'py>(
        &self,
        py: Python<'py>,
        node: &str,
        var: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let sim = self.lock();
        let values = sim.state(node, var).map_err(|e| to_py(py, e))?;
        Ok(PyArray1::from_slice(py, &values))
    }

    /// Replace a variable's values (SI units, one per element).
    fn set_state(
        &self,
        py: Python<'_>,
        node: &str,
        var: &str,
        values: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<()> {
        let values = values.as_slice()?.to_vec();
        self.lock()
            .set_state(node, var, &values)
            .map_err(|e| to_py(py, e))
    }

    /// A parameter's current value in SI units ("we", "LIF.taum", "E.taum").
    fn param(&self, py: Python<'_>, name: &str) -> PyResult<f64> {
        self.lock().param(name).map_err(|e| to_py(py, e))
    }

    /// Change a parameter between runs, with its unit: set_param("LIF.taum", "18 ms").
    fn set_param(&self, py: Python<'_>, name: &str, value: &str) -> PyResult<()> {
        self.lock().set_param(name, value).map_err(|e| to_py(py, e))
    }

    /// Silence elements of a population (ablation): from the next step their spikes are neither
    /// delivered, recorded, counted nor followed by a reset. silence("E", [0, 1, 2]).
    fn silence(&self, py: Python<'_>, population: &str, indices: Vec<u32>) -> PyResult<()> {
        self.lock()
            .silence(population, &indices)
            .map_err(|e| to_py(py, e))
    }

    /// The silenced elements of a population, ascending.
    fn silenced(&self, py: Python<'_>, population: &str) -> PyResult<Vec<u32>> {
        let sim = self.lock();
        let list = sim.silenced(population).map_err(|e| to_py(py, e))?;
        Ok(list.to_vec())
    }

    /// Silence no element any more.
    fn unsilence(&self) {
        self.lock().clear_silenced();
    }

    /// Feed token `token` to the token input `input` from the next step on, in place of its
    /// file's tokens (None: back to the file). With `state("Out", "logit")` after each step
    /// this drives a language-model spec token by token.
    #[pyo3(signature = (input, token))]
    fn set_token(&self, py: Python<'_>, input: &str, token: Option<u32>) -> PyResult<()> {
        self.lock().set_token(input, token).map_err(|e| to_py(py, e))
    }

    /// Write a trace directory (manifest.json and .npy files) of what was recorded so far.
    fn write_trace(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.lock().write_trace(&path).map(|_| ()))
            .map_err(|e| to_py(py, e))
    }

    /// Continue `prompt` (token ids) by `tokens` tokens, as `neurograph generate` does:
    /// the prompt is fed one token per step to the token input, then each next token is
    /// chosen from the logits (greedy when `temperature` is 0, else sampled with `top_k`
    /// from the seed's own stream) and fed back. Returns the generated ids. The GIL is
    /// released while it runs.
    #[pyo3(signature = (prompt, tokens, *, temperature=0.0, top_k=None, input=None, logits=None))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        py: Python<'_>,
        prompt: Vec<u32>,
        tokens: u64,
        temperature: f64,
        top_k: Option<usize>,
        input: Option<String>,
        logits: Option<String>,
    ) -> PyResult<Vec<u32>> {
        let options = ::neurograph::generate::GenerateOptions {
            prompt,
            tokens,
            temperature,
            top_k,
            input,
            logits,
        };
        py.detach(|| {
            ::neurograph::generate::generate(&mut self.lock(), &options, &mut |_| {})
                .map(|s| s.generated)
        })
        .map_err(|e| to_py(py, e))
    }

    /// Write what was recorded so far as an NWB 2 file: spike trains as the Units table,
    /// sampled state variables as TimeSeries, the spec text, parameters, seed and version in
    /// its metadata. The subject fields default to those of a simulation (sex `U`, age `P0D/`).
    #[pyo3(signature = (path, *, species=None, age=None, sex=None, experimenter=Vec::new(),
                        institution=None, description=None, overwrite=false))]
    #[allow(clippy::too_many_arguments)]
    fn write_nwb(
        &self,
        py: Python<'_>,
        path: PathBuf,
        species: Option<String>,
        age: Option<String>,
        sex: Option<String>,
        experimenter: Vec<String>,
        institution: Option<String>,
        description: Option<String>,
        overwrite: bool,
    ) -> PyResult<()> {
        let options = ::neurograph::interchange::nwb::NwbOptions {
            species,
            age,
            sex,
            experimenter,
            institution,
            description,
            overwrite,
        };
        py.detach(|| self.lock().write_nwb(&path, &options).map(|_| ()))
            .map_err(|e| to_py(py, e))
    }

    /// Save the complete state to a file; `Model.resume(path)` continues it bit-identically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.lock().save_checkpoint(&path).map_err(|e| to_py(py, e))
    }

    fn __repr__(&self) -> String {
        let sim = self.lock();
        format!(
            "<neurograph.Simulation of {} at t = {} s (seed {})>",
            sim.model().name(),
            sim.time(),
            sim.seed()
        )
    }
}

#[pymodule]
#[pyo3(name = "neurograph")]
fn neurograph_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(compile_str, m)?)?;
    m.add_class::<PyModel>()?;
    m.add_class::<PySimulation>()?;
    m.add("NeurographError", m.py().get_type::<NeurographError>())?;
    m.add("CompileError", m.py().get_type::<CompileError>())?;
    m.add("DivergedError", m.py().get_type::<DivergedError>())?;
    Ok(())
}
