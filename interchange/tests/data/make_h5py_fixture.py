"""Writes h5py_default.h5, the fixture of interchange/tests/read_h5py.rs: a file as h5py
writes it by default (superblock 0, version-1 object headers, groups as symbol tables), with
every kind of value the reader must decode. Run with h5py installed:
    python make_h5py_fixture.py   (in this directory; h5py 3.16 wrote the committed one)"""

import h5py
import numpy as np

with h5py.File("h5py_default.h5", "w") as f:
    f.attrs["title"] = "fixture"  # a variable-length UTF-8 string
    f.attrs["count"] = np.int32(-3)
    f.attrs["scales"] = np.array([0.5, 2.0])
    f.attrs["flag"] = True  # h5py stores bool as an enum of int8
    f.attrs["fixed"] = np.bytes_("abc")  # fixed-length
    g = f.create_group("data")
    g["f64"] = np.arange(6, dtype="<f8").reshape(2, 3) / 4
    g["big"] = np.array([1.5, -2.0], dtype=">f8")
    g["f32"] = np.array([0.25], dtype="<f4")
    g["i16"] = np.array([-7, 300], dtype="<i2")
    g["u8"] = np.array([0, 255], dtype="u1")
    g["bools"] = np.array([True, False, True])
    g["names"] = np.array(["alpha", "beta"], dtype=h5py.string_dtype())
    g["scalar"] = "one string"
    g["fixed"] = np.array([b"ab", b"cde"], dtype="S3")
    g["empty"] = np.zeros(0)
    space = h5py.h5s.create_simple((4,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    d = h5py.h5d.create(g.id, b"compact", h5py.h5t.NATIVE_INT32, space, dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([4, 3, 2, 1], dtype="i4"))
    g["f64"].attrs["unit"] = "V"
    # Chunked, the chunks not dividing the shape, shuffled and deflated (as h5py's
    # compression="gzip" and the NIR package write arrays).
    g.create_dataset(
        "gz", data=np.arange(50.0).reshape(5, 10), chunks=(2, 4), compression="gzip", shuffle=True
    )
    # Enough members for a B-tree of two levels (hard links to one dataset: small).
    many = f.create_group("many")
    for k in range(300):
        many[f"m{k:03d}"] = g["u8"]
