//! The HDF5 reader on a file h5py wrote with its defaults (superblock 0, version-1 object
//! headers, symbol-table groups, a B-tree of two levels): `data/h5py_default.h5`, made by
//! `data/make_h5py_fixture.py`.

use std::path::Path;

use neurograph_interchange::hdf5::Values;
use neurograph_interchange::hdf5_read::{File, Object};

fn fixture() -> File {
    File::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/h5py_default.h5")).unwrap()
}

fn values(f: &File, path: &str) -> (Vec<u64>, Values) {
    match f.get(path).unwrap() {
        Object::Dataset(d) => (d.shape, d.values),
        Object::Group(_) => panic!("{path} is a group"),
    }
}

#[test]
fn every_kind_of_value_h5py_writes_reads_back() {
    let f = fixture();
    let Object::Group(root) = f.get("/").unwrap() else {
        panic!()
    };
    let attr = |name: &str| {
        root.attrs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(attr("title"), Values::Str(vec!["fixture".into()]));
    assert_eq!(attr("count"), Values::I64(vec![-3]));
    assert_eq!(attr("scales"), Values::F64(vec![0.5, 2.0]));
    assert_eq!(attr("flag"), Values::I64(vec![1]));
    assert_eq!(attr("fixed"), Values::Str(vec!["abc".into()]));
    let (shape, v) = values(&f, "data/f64");
    assert_eq!(shape, [2, 3]);
    assert_eq!(v, Values::F64(vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25]));
    assert_eq!(values(&f, "data/big").1, Values::F64(vec![1.5, -2.0]));
    assert_eq!(values(&f, "data/f32").1, Values::F32(vec![0.25]));
    assert_eq!(values(&f, "data/i16").1, Values::I64(vec![-7, 300]));
    assert_eq!(values(&f, "data/u8").1, Values::U64(vec![0, 255]));
    assert_eq!(values(&f, "data/bools").1, Values::I64(vec![1, 0, 1]));
    assert_eq!(
        values(&f, "data/names").1,
        Values::Str(vec!["alpha".into(), "beta".into()])
    );
    let (shape, v) = values(&f, "data/scalar");
    assert!(shape.is_empty());
    assert_eq!(v, Values::Str(vec!["one string".into()]));
    assert_eq!(
        values(&f, "data/fixed").1,
        Values::Str(vec!["ab".into(), "cde".into()])
    );
    assert_eq!(values(&f, "data/empty").1, Values::F64(vec![]));
    assert_eq!(values(&f, "data/compact").1, Values::I64(vec![4, 3, 2, 1]));
    let (shape, v) = values(&f, "data/gz");
    assert_eq!(shape, [5, 10]);
    assert_eq!(v, Values::F64((0..50).map(f64::from).collect()));
    let Object::Dataset(d) = f.get("data/f64").unwrap() else {
        panic!()
    };
    assert_eq!(
        d.attrs,
        vec![("unit".to_string(), Values::Str(vec!["V".into()]))]
    );
}

#[test]
fn a_group_of_many_members_lists_them_all_in_order() {
    let f = fixture();
    let Object::Group(many) = f.get("many").unwrap() else {
        panic!()
    };
    let names: Vec<&str> = many.members.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<String> = (0..300).map(|k| format!("m{k:03}")).collect();
    assert_eq!(names, want);
    assert_eq!(values(&f, "many/m299").1, Values::U64(vec![0, 255]));
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/h5py_default.h5"))
            .unwrap();
    // Every truncation, and a byte flipped at many places: an error or a value, never a panic.
    for cut in (0..bytes.len()).step_by(97) {
        if let Ok(f) = File::from_bytes(Path::new("cut.h5"), bytes[..cut].to_vec()) {
            let _ = f.get("data/f64");
            let _ = f.get("many");
        }
    }
    for at in (0..bytes.len()).step_by(13) {
        let mut b = bytes.clone();
        b[at] ^= 0xff;
        if let Ok(f) = File::from_bytes(Path::new("flip.h5"), b) {
            for p in [
                "/",
                "data/f64",
                "data/names",
                "many",
                "data/compact",
                "data/gz",
            ] {
                let _ = f.get(p);
            }
        }
    }
}

/// Every byte of the fixture and of a file neurograph wrote set to 0x00, 0x80 and 0xff in
/// turn (slow in debug builds: `cargo test --release -- --ignored`).
#[test]
#[ignore]
fn every_single_byte_damage_is_an_error_or_a_value() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/h5py_default.h5"))
            .unwrap();
    for at in 0..bytes.len() {
        for v in [0x00, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] = v;
            if let Ok(f) = File::from_bytes(Path::new("x.h5"), b) {
                for p in [
                    "/",
                    "data/f64",
                    "data/names",
                    "data/scalar",
                    "many",
                    "data/compact",
                    "data/fixed",
                ] {
                    let _ = f.get(p);
                }
            }
        }
    }
}
