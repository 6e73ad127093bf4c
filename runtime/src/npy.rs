//! Reading and writing NumPy `.npy` files (format version 1.0), the array format of traces and
//! of weight and connectivity files. Only what neurograph needs: little-endian `f8`, `f4`,
//! `i8`, `i4`, `u4`, `u1` arrays in C order.

use std::io::{self, Write};
use std::path::Path;

/// Element types neurograph writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    I64,
    U32,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F64 => "<f8",
            Dtype::F32 => "<f4",
            Dtype::I64 => "<i8",
            Dtype::U32 => "<u4",
        }
    }
}

/// Serialise an array given as f64 values, stored with `dtype`.
pub fn to_bytes(values: &[f64], shape: &[usize], dtype: Dtype) -> Vec<u8> {
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_txt}, }}",
        dtype.descr()
    );
    // Pad so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        match dtype {
            Dtype::F64 => out.extend_from_slice(&v.to_le_bytes()),
            Dtype::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            Dtype::I64 => out.extend_from_slice(&(v as i64).to_le_bytes()),
            Dtype::U32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
        }
    }
    out
}

pub fn write(path: &Path, values: &[f64], shape: &[usize], dtype: Dtype) -> io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&to_bytes(values, shape, dtype))?;
    f.sync_all()
}

/// An array read from a file, converted to f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub fn parse(bytes: &[u8]) -> io::Result<Array> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (missing magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated .npy header"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        Some(header[at + key.len() + 2..].trim_start_matches([':', ' ']))
    };
    let descr = field("descr").ok_or_else(|| bad("no descr in .npy header"))?;
    let descr = descr.trim_start_matches(['\'', '"']);
    let descr = &descr[..descr.find(['\'', '"']).unwrap_or(descr.len())];
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(bad(
            "Fortran-ordered .npy arrays are not supported; save with C order",
        ));
    }
    let shape_txt = field("shape").ok_or_else(|| bad("no shape in .npy header"))?;
    let close = shape_txt.find(')').ok_or_else(|| bad("bad shape"))?;
    let shape_txt = shape_txt
        .strip_prefix('(')
        .and_then(|t| t.get(..close.saturating_sub(1)))
        .ok_or_else(|| bad("bad shape"))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<io::Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("array too large"))?;
    let body = &bytes[start + header_len..];
    let (size, conv): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap())),
        "<f4" => (4, |b| f32::from_le_bytes(b.try_into().unwrap()) as f64),
        "<i8" => (8, |b| i64::from_le_bytes(b.try_into().unwrap()) as f64),
        "<i4" => (4, |b| i32::from_le_bytes(b.try_into().unwrap()) as f64),
        "<u4" => (4, |b| u32::from_le_bytes(b.try_into().unwrap()) as f64),
        "|u1" | "<u1" => (1, |b| b[0] as f64),
        "|b1" => (1, |b| f64::from(b[0] != 0)),
        other => return Err(bad(format!("unsupported .npy dtype {other}"))),
    };
    let bytes_needed = count
        .checked_mul(size)
        .ok_or_else(|| bad("array too large"))?;
    if body.len() < bytes_needed {
        return Err(bad(format!(
            "truncated .npy data: {count} elements need {} bytes, found {}",
            count * size,
            body.len()
        )));
    }
    let data = body[..bytes_needed].chunks_exact(size).map(conv).collect();
    Ok(Array { shape, data })
}

pub fn read(path: &Path) -> io::Result<Array> {
    parse(&std::fs::read(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        for (dtype, vals) in [
            (Dtype::F64, vec![1.5, -2.25, 3.0, 0.1]),
            (Dtype::F32, vec![1.5, -2.25, 3.0, 0.5]),
            (Dtype::I64, vec![1.0, -2.0, 3.0, 4.0]),
            (Dtype::U32, vec![1.0, 2.0, 3.0, 4_000_000_000.0]),
        ] {
            let bytes = to_bytes(&vals, &[2, 2], dtype);
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            let a = parse(&bytes).unwrap();
            assert_eq!(a.shape, vec![2, 2]);
            assert_eq!(a.data, vals);
        }
        let a = parse(&to_bytes(&[], &[0], Dtype::F64)).unwrap();
        assert_eq!(a.shape, vec![0]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"hello world").is_err());
        let mut b = to_bytes(&[1.0, 2.0], &[2], Dtype::F64);
        b.truncate(b.len() - 3);
        assert!(parse(&b).is_err());
        for header in ["{'descr': '<f8', 'fortran_order': False, 'shape': ), }", "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999), }"] {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(header.len() as u16).to_le_bytes());
            b.extend_from_slice(header.as_bytes());
            assert!(parse(&b).is_err(), "{header}");
        }
    }
}
