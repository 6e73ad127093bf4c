//! neurograph in community formats. `hdf5` writes HDF5 files and `hdf5_read` reads them (no
//! C library: the format is written and read directly); `nwb` turns a trace into an NWB 2
//! file on top of the writer.

pub mod hdf5;
pub mod hdf5_read;
pub mod nwb;
