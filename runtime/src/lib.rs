//! neurograph's runtime: state buffers, connectivity construction, the step loop calling the
//! kernels of the ABI (`neurograph_compiler::abi`), the reference interpreter implementing
//! them, monitors and the trace writer. No terminal I/O and no global state: the caller
//! supplies the stop flag and the progress callback.

pub mod checkpoint;
pub mod eval;
pub mod expm;
pub mod jit;
mod kernels;
pub mod lazy;
pub mod npy;
pub mod params;
pub mod poisson;
pub mod pool;
pub mod rng;
pub mod safetensors;
pub mod sim;
pub mod state;
pub mod trace;

pub use sim::{override_for, Backend, NonFinite, Override, Recording, RunConfig, Sim, SimError};
