//! neurograph in community formats. `hdf5` writes HDF5 files (no C library: the format is
//! written directly); `nwb` turns a trace into an NWB 2 file on top of it.

pub mod hdf5;
pub mod nwb;
