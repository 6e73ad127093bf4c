//! The C ABI of neurograph: opaque handles to a compiled model and its simulations, functions
//! that return a status code, and `ng_last_error` for the message of the last failure on the
//! calling thread (with file:line:col and the source excerpt for spec errors). No panic
//! crosses the boundary: each function catches it and reports `NG_PANIC`.
//!
//! The header `include/neurograph.h` is generated from this file by cbindgen; a test fails
//! when the committed header is stale. `examples/run_cuba.c` shows a complete use.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use neurograph::{Backend, Error, Model, Simulation, Stopped};

/// Outcome of a call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NgStatus {
    /// Success.
    NG_OK = 0,
    /// The spec has errors (`ng_last_error` renders them).
    NG_COMPILE_ERROR = 1,
    /// A name the model does not have (population, variable, parameter).
    NG_NAME_ERROR = 2,
    /// A value that does not fit (unit, length, range), or a buffer that is too small.
    NG_VALUE_ERROR = 3,
    /// Setting up or running failed (a data file, a trace that cannot be written).
    NG_RUN_ERROR = 4,
    /// A state value became inf or NaN; the simulation stopped after that step.
    NG_DIVERGED = 5,
    /// A required pointer was null, or a string was not UTF-8.
    NG_INVALID_ARGUMENT = 6,
    /// neurograph panicked (a bug); the handle should not be used again.
    NG_PANIC = 7,
    /// The run was stopped by `ng_simulation_stop` before all steps were done.
    NG_INTERRUPTED = 8,
}

/// Which code simulates.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NgBackend {
    /// Code generated with Cranelift (the default).
    NG_BACKEND_JIT = 0,
    /// The reference interpreter (bit-identical, slower).
    NG_BACKEND_INTERP = 1,
}

/// A compiled spec. Free with `ng_model_free`.
pub struct NgModel {
    model: Model,
}

/// A simulation of a model. Free with `ng_simulation_free`.
pub struct NgSimulation {
    sim: Simulation,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

fn status_of(e: &Error) -> NgStatus {
    match e {
        Error::Compile { .. } => NgStatus::NG_COMPILE_ERROR,
        Error::Name(_) => NgStatus::NG_NAME_ERROR,
        Error::Value(_) => NgStatus::NG_VALUE_ERROR,
        Error::Run(_) | Error::Io(_) => NgStatus::NG_RUN_ERROR,
        Error::Diverged(_) => NgStatus::NG_DIVERGED,
    }
}

/// Run `f`, turning errors and panics into a status and the thread's last error.
fn guard(f: impl FnOnce() -> Result<NgStatus, (NgStatus, String)>) -> NgStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(status)) => status,
        Ok(Err((status, message))) => {
            set_error(&message);
            status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_string());
            set_error(&format!(
                "neurograph panicked (a bug, please report it): {what}"
            ));
            NgStatus::NG_PANIC
        }
    }
}

fn fail(e: Error) -> (NgStatus, String) {
    (status_of(&e), e.to_string())
}

fn invalid(what: &str) -> (NgStatus, String) {
    (NgStatus::NG_INVALID_ARGUMENT, what.to_string())
}

/// A UTF-8 string argument.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, (NgStatus, String)> {
    if p.is_null() {
        return Err(invalid(&format!("{what} is null")));
    }
    // SAFETY: non-null and NUL-terminated, as the caller promises.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

/// The message of the last failed call on this thread ("" when none). Valid until the next
/// call that fails on this thread.
#[no_mangle]
pub extern "C" fn ng_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Compile spec text; data paths in it are relative to `base_dir` (may be null: the current
/// directory). On success `*out` holds a new model.
///
/// # Safety
/// `spec` and `base_dir` (when not null) are NUL-terminated strings; `out` points to writable
/// memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ng_model_compile_str(
    spec: *const c_char,
    base_dir: *const c_char,
    out: *mut *mut NgModel,
) -> NgStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        // SAFETY: as documented for the caller.
        let spec = unsafe { text(spec, "spec") }?;
        let path = if base_dir.is_null() {
            Path::new("<string>").to_path_buf()
        } else {
            // SAFETY: as documented for the caller.
            Path::new(unsafe { text(base_dir, "base_dir") }?).join("<string>")
        };
        let model = Model::compile_text(&path, spec.to_string()).map_err(fail)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(NgModel { model })) };
        Ok(NgStatus::NG_OK)
    })
}

/// Read and compile a spec file. On success `*out` holds a new model.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ng_model_compile_file(
    path: *const c_char,
    out: *mut *mut NgModel,
) -> NgStatus {
    guard(|| {
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        // SAFETY: as documented for the caller.
        let path = unsafe { text(path, "path") }?;
        let model = Model::compile_file(Path::new(path)).map_err(fail)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(NgModel { model })) };
        Ok(NgStatus::NG_OK)
    })
}

/// Free a model (null is allowed). Simulations made from it stay valid.
///
/// # Safety
/// `model` is null or a model from `ng_model_compile_*` not freed before.
#[no_mangle]
pub unsafe extern "C" fn ng_model_free(model: *mut NgModel) {
    if !model.is_null() {
        // SAFETY: a pointer from Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(model) });
    }
}

/// Make a simulation of `model` with a seed and a backend; initial values and connectivity
/// are set up. On success `*out` holds it.
///
/// # Safety
/// `model` is a live model; `out` points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_new(
    model: *const NgModel,
    seed: u64,
    backend: NgBackend,
    out: *mut *mut NgSimulation,
) -> NgStatus {
    guard(|| {
        if model.is_null() || out.is_null() {
            return Err(invalid("model or out is null"));
        }
        // SAFETY: a live model, as documented.
        let model = unsafe { &(*model).model };
        let backend = match backend {
            NgBackend::NG_BACKEND_JIT => Backend::Jit,
            NgBackend::NG_BACKEND_INTERP => Backend::Interp,
        };
        let sim = model
            .simulation()
            .seed(seed)
            .backend(backend)
            .build()
            .map_err(fail)?;
        // SAFETY: `out` is non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(NgSimulation { sim })) };
        Ok(NgStatus::NG_OK)
    })
}

/// Free a simulation (null is allowed).
///
/// # Safety
/// `sim` is null or a simulation from `ng_simulation_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_free(sim: *mut NgSimulation) {
    if !sim.is_null() {
        // SAFETY: a pointer from Box::into_raw, freed once.
        drop(unsafe { Box::from_raw(sim) });
    }
}

/// The simulation behind a handle.
///
/// # Safety
/// `sim` is null or a live simulation used by no other thread during the call.
unsafe fn sim_mut<'a>(sim: *mut NgSimulation) -> Result<&'a mut Simulation, (NgStatus, String)> {
    if sim.is_null() {
        return Err(invalid("sim is null"));
    }
    // SAFETY: as documented.
    Ok(unsafe { &mut (*sim).sim })
}

fn stepped(result: Result<Stopped, Error>) -> Result<NgStatus, (NgStatus, String)> {
    match result.map_err(fail)? {
        Stopped::Done => Ok(NgStatus::NG_OK),
        Stopped::Interrupted => Ok(NgStatus::NG_INTERRUPTED),
    }
}

/// Run the population updates on `threads` threads (default 1: the calling thread only). A
/// population with at least 1024 cells per thread is split between them when that is faster
/// (timed over its first steps); results do not depend on the number.
///
/// # Safety
/// `sim` is a live simulation.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_set_threads(
    sim: *mut NgSimulation,
    threads: u32,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        if threads == 0 {
            return Err((
                NgStatus::NG_VALUE_ERROR,
                "threads must be at least 1".to_string(),
            ));
        }
        sim.set_threads(threads as usize);
        Ok(NgStatus::NG_OK)
    })
}

/// Simulate `n` steps.
///
/// # Safety
/// `sim` is a live simulation.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_step(sim: *mut NgSimulation, n: u64) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        stepped(sim.step(n))
    })
}

/// Simulate for a duration with its unit, e.g. "200 ms".
///
/// # Safety
/// `sim` is a live simulation; `duration` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_run_for(
    sim: *mut NgSimulation,
    duration: *const c_char,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let duration = unsafe { text(duration, "duration") }?;
        stepped(sim.run_for(duration))
    })
}

/// Ask a running `ng_simulation_step`/`run_for` (on another thread) to stop at the end of the
/// current step; it then returns `NG_INTERRUPTED`. Safe to call from any thread or a signal
/// handler while the simulation runs.
///
/// # Safety
/// `sim` is a live simulation.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_stop(sim: *const NgSimulation) {
    if !sim.is_null() {
        // SAFETY: a live simulation; only its atomic stop flag is touched.
        let flag = unsafe { (*sim).sim.stop_flag() };
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Steps simulated so far (0 for a null handle).
///
/// # Safety
/// `sim` is null or a live simulation.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_steps(sim: *const NgSimulation) -> u64 {
    if sim.is_null() {
        return 0;
    }
    // SAFETY: a live simulation.
    unsafe { (*sim).sim.steps() }
}

/// Change a parameter between steps, with its unit: ("LIF.taum", "18 ms"), ("we", "1.7 mV").
///
/// # Safety
/// `sim` is a live simulation; `name` and `value` NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_set_param(
    sim: *mut NgSimulation,
    name: *const c_char,
    value: *const c_char,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let (name, value) = unsafe { (text(name, "name")?, text(value, "value")?) };
        sim.set_param(name, value).map_err(fail)?;
        Ok(NgStatus::NG_OK)
    })
}

/// A parameter's current value in SI units, into `*out`.
///
/// # Safety
/// `sim` is a live simulation; `name` a NUL-terminated string; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_param(
    sim: *mut NgSimulation,
    name: *const c_char,
    out: *mut f64,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let name = unsafe { text(name, "name") }?;
        if out.is_null() {
            return Err(invalid("out is null"));
        }
        let x = sim.param(name).map_err(fail)?;
        // SAFETY: non-null and writable.
        unsafe { *out = x };
        Ok(NgStatus::NG_OK)
    })
}

/// Copy a variable of a population or projection (SI units, one value per element) into
/// `values`, which has room for `capacity` values; `*len` receives the element count. With
/// `values` null (or too small: `NG_VALUE_ERROR`) only `*len` is written: call once to size
/// the buffer.
///
/// # Safety
/// `sim` is a live simulation; `node` and `var` NUL-terminated strings; `values` null or
/// writable for `capacity` doubles; `len` writable.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_state(
    sim: *mut NgSimulation,
    node: *const c_char,
    var: *const c_char,
    values: *mut f64,
    capacity: usize,
    len: *mut usize,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let (node, var) = unsafe { (text(node, "node")?, text(var, "var")?) };
        if len.is_null() {
            return Err(invalid("len is null"));
        }
        let state = sim.state(node, var).map_err(fail)?;
        // SAFETY: non-null and writable.
        unsafe { *len = state.len() };
        if values.is_null() {
            return Ok(NgStatus::NG_OK);
        }
        if capacity < state.len() {
            return Err((
                NgStatus::NG_VALUE_ERROR,
                format!(
                    "{node}.{var} has {} values; the buffer holds {capacity}",
                    state.len()
                ),
            ));
        }
        // SAFETY: `values` is writable for `capacity >= state.len()` doubles.
        unsafe { std::ptr::copy_nonoverlapping(state.as_ptr(), values, state.len()) };
        Ok(NgStatus::NG_OK)
    })
}

/// Replace a variable of a population or projection, `len` values (SI units).
///
/// # Safety
/// `sim` is a live simulation; `node` and `var` NUL-terminated strings; `values` readable
/// for `len` doubles.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_set_state(
    sim: *mut NgSimulation,
    node: *const c_char,
    var: *const c_char,
    values: *const f64,
    len: usize,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let (node, var) = unsafe { (text(node, "node")?, text(var, "var")?) };
        if values.is_null() {
            return Err(invalid("values is null"));
        }
        // SAFETY: readable for `len` doubles.
        let values = unsafe { std::slice::from_raw_parts(values, len) };
        sim.set_state(node, var, values).map_err(fail)?;
        Ok(NgStatus::NG_OK)
    })
}

/// Silence elements of a population (ablation): from the next step their spikes are neither
/// delivered, recorded, counted nor followed by a reset; their own equations keep running.
/// `len` indices; with `len` 0 the call changes nothing. `ng_simulation_unsilence` undoes all.
///
/// # Safety
/// `sim` is a live simulation; `population` a NUL-terminated string; `indices` readable for
/// `len` values (may be null when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_silence(
    sim: *mut NgSimulation,
    population: *const c_char,
    indices: *const u32,
    len: usize,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let population = unsafe { text(population, "population") }?;
        let indices: &[u32] = if len == 0 {
            &[]
        } else if indices.is_null() {
            return Err(invalid("indices is null"));
        } else {
            // SAFETY: readable for `len` values.
            unsafe { std::slice::from_raw_parts(indices, len) }
        };
        sim.silence(population, indices).map_err(fail)?;
        Ok(NgStatus::NG_OK)
    })
}

/// Silence no element any more (undoes every `ng_simulation_silence`).
///
/// # Safety
/// `sim` is a live simulation.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_unsilence(sim: *mut NgSimulation) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        sim.clear_silenced();
        Ok(NgStatus::NG_OK)
    })
}

/// Copy the spikes recorded for a population (`record P.spikes` in the spec): times in
/// seconds and element indices, `capacity` of each at most; `*count` receives the number of
/// spikes. With null buffers only `*count` is written.
///
/// # Safety
/// `sim` is a live simulation; `population` a NUL-terminated string; `times` and `indices`
/// null or writable for `capacity` values each; `count` writable.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_spikes(
    sim: *mut NgSimulation,
    population: *const c_char,
    times: *mut f64,
    indices: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let population = unsafe { text(population, "population") }?;
        if count.is_null() {
            return Err(invalid("count is null"));
        }
        let (t, i) = sim.spikes(population).map_err(fail)?;
        // SAFETY: non-null and writable.
        unsafe { *count = t.len() };
        if times.is_null() || indices.is_null() {
            return Ok(NgStatus::NG_OK);
        }
        if capacity < t.len() {
            return Err((
                NgStatus::NG_VALUE_ERROR,
                format!(
                    "{population} has {} spikes; the buffers hold {capacity}",
                    t.len()
                ),
            ));
        }
        // SAFETY: both writable for `capacity >= t.len()` values.
        unsafe {
            std::ptr::copy_nonoverlapping(t.as_ptr(), times, t.len());
            std::ptr::copy_nonoverlapping(i.as_ptr(), indices, i.len());
        }
        Ok(NgStatus::NG_OK)
    })
}

/// Write a trace directory of what was recorded so far.
///
/// # Safety
/// `sim` is a live simulation; `dir` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_write_trace(
    sim: *mut NgSimulation,
    dir: *const c_char,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let dir = unsafe { text(dir, "dir") }?;
        sim.write_trace(Path::new(dir)).map_err(fail)?;
        Ok(NgStatus::NG_OK)
    })
}

/// Save the simulation's complete state to a file (`ng_simulation_load` continues it
/// bit-identically, in this process or another).
///
/// # Safety
/// `sim` is a live simulation; `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_save(
    sim: *mut NgSimulation,
    path: *const c_char,
) -> NgStatus {
    guard(|| {
        // SAFETY: as documented.
        let sim = unsafe { sim_mut(sim) }?;
        // SAFETY: as documented.
        let path = unsafe { text(path, "path") }?;
        sim.save_checkpoint(Path::new(path)).map_err(fail)?;
        Ok(NgStatus::NG_OK)
    })
}

/// A simulation of `model` continued from a file written by `ng_simulation_save`.
///
/// # Safety
/// `model` is a live model; `path` a NUL-terminated string; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn ng_simulation_load(
    model: *const NgModel,
    path: *const c_char,
    out: *mut *mut NgSimulation,
) -> NgStatus {
    guard(|| {
        if model.is_null() || out.is_null() {
            return Err(invalid("model or out is null"));
        }
        // SAFETY: as documented.
        let (model, path) = unsafe { (&(*model).model, text(path, "path")?) };
        let sim = Simulation::load_checkpoint(model, Path::new(path)).map_err(fail)?;
        // SAFETY: non-null and writable.
        unsafe { *out = Box::into_raw(Box::new(NgSimulation { sim })) };
        Ok(NgStatus::NG_OK)
    })
}
