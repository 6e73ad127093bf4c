//! Reading one tensor of a `.safetensors` file (the format of Hugging Face's `safetensors`:
//! an 8-byte little-endian header length, a JSON header naming each tensor's `dtype`, `shape`
//! and `data_offsets` into the bytes that follow), converted to f64. Every problem is an
//! `io::Error` saying what is wrong; nothing panics on a damaged file.

use std::io;
use std::path::Path;

use serde_json::Value;

use crate::npy::Array;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The names and shapes of the tensors in a header, sorted by name (for messages).
fn listing(header: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<String> = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape: Vec<String> = v
                .get("shape")
                .and_then(Value::as_array)
                .map(|s| s.iter().map(|d| d.to_string()).collect())
                .unwrap_or_default();
            format!("{k} ({})", shape.join(", "))
        })
        .collect();
    names.sort();
    if names.len() > 20 {
        let more = names.len() - 20;
        names.truncate(20);
        names.push(format!("and {more} more"));
    }
    names.join(", ")
}

/// Tensor `name` of the safetensors bytes `bytes`.
pub fn parse(bytes: &[u8], name: &str) -> io::Result<Array> {
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .ok_or_else(|| bad("not a .safetensors file (shorter than its header length)"))?;
    let header = usize::try_from(len)
        .ok()
        .and_then(|l| bytes.get(8..8usize.checked_add(l)?))
        .ok_or_else(|| {
            bad(format!(
                "not a .safetensors file (a header of {len} bytes in a file of {})",
                bytes.len()
            ))
        })?;
    let header: Value = serde_json::from_slice(header).map_err(|e| {
        bad(format!(
            "not a .safetensors file (its header is not JSON: {e})"
        ))
    })?;
    let header = header
        .as_object()
        .ok_or_else(|| bad("not a .safetensors file (its header is not a JSON object)"))?;
    let data = &bytes[8 + len as usize..];
    let entry = header
        .get(name)
        .filter(|_| name != "__metadata__")
        .ok_or_else(|| {
            bad(format!(
                "it has no tensor `{name}`; it has {}",
                listing(header)
            ))
        })?;
    let dtype = entry
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("tensor `{name}` has no dtype")))?;
    let shape: Vec<usize> = entry
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
        .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?;
    let offsets: Vec<usize> = entry
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
        .filter(|o: &Vec<usize>| o.len() == 2 && o[0] <= o[1])
        .ok_or_else(|| bad(format!("tensor `{name}` has no valid data_offsets")))?;
    let raw = data.get(offsets[0]..offsets[1]).ok_or_else(|| {
        bad(format!(
            "tensor `{name}`: its data runs past the end of the file"
        ))
    })?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("tensor `{name}` is too large")))?;
    let (size, conv): (usize, fn(&[u8]) -> f64) = match dtype {
        "F64" => (8, |b| f64::from_le_bytes(b.try_into().unwrap())),
        "F32" => (4, |b| f64::from(f32::from_le_bytes(b.try_into().unwrap()))),
        "F16" => (2, |b| half_to_f64(u16::from_le_bytes([b[0], b[1]]))),
        "BF16" => (2, |b| {
            f64::from(f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
        }),
        "I64" => (8, |b| i64::from_le_bytes(b.try_into().unwrap()) as f64),
        "I32" => (4, |b| f64::from(i32::from_le_bytes(b.try_into().unwrap()))),
        "I16" => (2, |b| f64::from(i16::from_le_bytes([b[0], b[1]]))),
        "I8" => (1, |b| f64::from(b[0] as i8)),
        "U64" => (8, |b| u64::from_le_bytes(b.try_into().unwrap()) as f64),
        "U32" => (4, |b| f64::from(u32::from_le_bytes(b.try_into().unwrap()))),
        "U16" => (2, |b| f64::from(u16::from_le_bytes([b[0], b[1]]))),
        "U8" | "BOOL" => (1, |b| f64::from(b[0])),
        other => {
            return Err(bad(format!(
                "tensor `{name}` has dtype {other}, which neurograph does not read (F64, F32, F16, BF16, integers, BOOL)"
            )))
        }
    };
    if count.checked_mul(size) != Some(raw.len()) {
        return Err(bad(format!(
            "tensor `{name}`: {} bytes for shape {shape:?} of {dtype}",
            raw.len()
        )));
    }
    Ok(Array {
        shape,
        data: raw.chunks_exact(size).map(conv).collect(),
    })
}

/// IEEE 754 half precision to f64 (exact).
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Tensor `name` of the file at `path`.
pub fn read(path: &Path, name: &str) -> io::Result<Array> {
    parse(&std::fs::read(path)?, name)
}

/// Entries `index` of `a`'s leading axes (each index drops one axis): `a[i][j]`.
pub fn pick(a: &Array, index: &[u64]) -> Result<Array, String> {
    // The offset of the sub-array, axis by axis; one copy at the end.
    let (mut start, mut shape) = (0usize, a.shape.as_slice());
    for (k, &i) in index.iter().enumerate() {
        let Some((&first, rest)) = shape.split_first() else {
            return Err(format!(
                "index {k} ([{i}]) goes past the array's dimensions (it has {})",
                k
            ));
        };
        if i as usize >= first {
            return Err(format!("index [{i}] is outside its axis of length {first}"));
        }
        start += i as usize * rest.iter().product::<usize>();
        shape = rest;
    }
    let len: usize = shape.iter().product();
    Ok(Array {
        shape: shape.to_vec(),
        data: a.data[start..start + len].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A safetensors file of `tensors` (name, dtype, shape, little-endian bytes).
    pub fn file(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes.len()]}),
            );
            data.extend_from_slice(bytes);
        }
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let text = serde_json::to_vec(&Value::Object(header)).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text);
        out.extend(data);
        out
    }

    #[test]
    fn tensors_read_by_name_in_every_dtype() {
        let f32s: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f16: Vec<u8> = [0x3c00u16, 0xc000, 0x0001]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bf16: Vec<u8> = [0x3f80u16, 0x4040]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bytes = file(&[
            ("w", "F32", vec![3, 2], f32s),
            ("h", "F16", vec![3], f16),
            ("b", "BF16", vec![2], bf16),
            ("i", "I64", vec![1], (-7i64).to_le_bytes().to_vec()),
        ]);
        let w = parse(&bytes, "w").unwrap();
        assert_eq!(w.shape, [3, 2]);
        assert_eq!(w.data, [1.5, -2.0, 0.25, 8.0, 3.0, 4.0]);
        assert_eq!(
            parse(&bytes, "h").unwrap().data,
            [1.0, -2.0, 2f64.powi(-24)]
        );
        assert_eq!(parse(&bytes, "b").unwrap().data, [1.0, 3.0]);
        assert_eq!(parse(&bytes, "i").unwrap().data, [-7.0]);
        let e = parse(&bytes, "encoder").unwrap_err().to_string();
        assert!(
            e.contains("no tensor `encoder`") && e.contains("w (3, 2)"),
            "{e}"
        );
        assert!(parse(&bytes, "__metadata__").is_err());
        // Damaged: every truncation is an error, never a panic.
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut], "w");
        }
        let row = pick(&w, &[1]).unwrap();
        assert_eq!((row.shape, row.data), (vec![2], vec![0.25, 8.0]));
        let e = pick(&parse(&bytes, "w").unwrap(), &[3]).unwrap_err();
        assert!(e.contains("outside its axis of length 3"), "{e}");
        let e = pick(&parse(&bytes, "w").unwrap(), &[0, 1, 0]).unwrap_err();
        assert!(e.contains("past the array's dimensions"), "{e}");
    }
}
