//! neurograph in community formats. `hdf5` writes HDF5 files and `hdf5_read` reads them (no
//! C library: the format is written and read directly); `nwb` turns a trace into an NWB 2
//! file on top of the writer; `nir` reads and writes NIR graphs and turns one into a spec.

pub mod hdf5;
pub mod hdf5_read;
pub mod nir;
pub mod nwb;
