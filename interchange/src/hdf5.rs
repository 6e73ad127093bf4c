//! A writer of HDF5 files: groups, contiguous datasets and attributes of numbers, UTF-8
//! strings (variable length) and object references — what NWB needs, in the 1.8 file
//! format (superblock version 2, version-2 object headers, links stored in the group's
//! header), which HDF5 1.8 and later (h5py, pynwb, MATLAB, HDFView) read.
//!
//! The file is described as a tree ([`Group`], [`Dataset`], [`Attr`]) and written in one
//! pass: first every variable-length string into global heap collections, then the dataset
//! bytes, then the object headers, children before their parents (a header's size does not
//! depend on the addresses it holds, so every address is known before anything is written),
//! and the superblock last. Written beside the destination and renamed into place, so a
//! reader never sees a half-written file.
//!
//! Layouts follow the HDF5 File Format Specification, version 3.0 (The HDF Group).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

/// The "undefined address" of the format (all bits set).
const UNDEF: u64 = u64::MAX;
/// Size of the superblock (version 2, 8-byte offsets and lengths).
const SUPERBLOCK_SIZE: u64 = 48;
/// A global heap collection is at least this large (readers load this much at first).
const HEAP_MIN: usize = 4096;
/// Objects per global heap collection (the object index is 16 bits; 0 is free space).
const HEAP_MAX_OBJECTS: usize = 65_535;

/// The element type of a dataset or attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    I64,
    I32,
    U64,
    U32,
    U8,
    /// Variable-length UTF-8 string.
    Str,
    /// Object reference (to a dataset or group by its path).
    Ref,
}

/// Values of a dataset or attribute, all of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    U32(Vec<u32>),
    U8(Vec<u8>),
    Str(Vec<String>),
    /// Absolute paths of the objects referred to (e.g. `/units/spike_times`).
    Ref(Vec<String>),
}

impl Values {
    pub fn dtype(&self) -> Dtype {
        match self {
            Values::F64(_) => Dtype::F64,
            Values::F32(_) => Dtype::F32,
            Values::I64(_) => Dtype::I64,
            Values::I32(_) => Dtype::I32,
            Values::U64(_) => Dtype::U64,
            Values::U32(_) => Dtype::U32,
            Values::U8(_) => Dtype::U8,
            Values::Str(_) => Dtype::Str,
            Values::Ref(_) => Dtype::Ref,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::F32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::U64(v) => v.len(),
            Values::U32(v) => v.len(),
            Values::U8(v) => v.len(),
            Values::Str(v) => v.len(),
            Values::Ref(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn strings(&self) -> &[String] {
        match self {
            Values::Str(v) => v,
            _ => &[],
        }
    }
}

/// An attribute: a scalar (`shape` empty) or an array.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: String,
    pub shape: Vec<u64>,
    pub values: Values,
}

impl Attr {
    pub fn str(name: &str, value: &str) -> Attr {
        Attr::scalar(name, Values::Str(vec![value.to_string()]))
    }
    pub fn f64(name: &str, value: f64) -> Attr {
        Attr::scalar(name, Values::F64(vec![value]))
    }
    pub fn reference(name: &str, path: &str) -> Attr {
        Attr::scalar(name, Values::Ref(vec![path.to_string()]))
    }
    pub fn scalar(name: &str, values: Values) -> Attr {
        Attr {
            name: name.to_string(),
            shape: Vec::new(),
            values,
        }
    }
    /// A one-dimensional array attribute.
    pub fn array(name: &str, values: Values) -> Attr {
        Attr {
            name: name.to_string(),
            shape: vec![values.len() as u64],
            values,
        }
    }
}

/// A dataset: a scalar (`shape` empty) or an n-dimensional array, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub shape: Vec<u64>,
    pub values: Values,
    pub attrs: Vec<Attr>,
}

impl Dataset {
    pub fn scalar(values: Values) -> Dataset {
        Dataset {
            shape: Vec::new(),
            values,
            attrs: Vec::new(),
        }
    }
    pub fn str(value: &str) -> Dataset {
        Dataset::scalar(Values::Str(vec![value.to_string()]))
    }
    /// A one-dimensional dataset.
    pub fn array(values: Values) -> Dataset {
        Dataset {
            shape: vec![values.len() as u64],
            values,
            attrs: Vec::new(),
        }
    }
    pub fn with_attr(mut self, attr: Attr) -> Dataset {
        self.attrs.push(attr);
        self
    }
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Group(Group),
    Dataset(Dataset),
}

/// A group: attributes and named members (names hold no `/`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub attrs: Vec<Attr>,
    pub members: Vec<(String, Node)>,
}

impl Group {
    /// An empty group with these attributes.
    pub fn with_attrs(attrs: Vec<Attr>) -> Group {
        Group {
            attrs,
            members: Vec::new(),
        }
    }
    pub fn attr(&mut self, attr: Attr) -> &mut Self {
        self.attrs.push(attr);
        self
    }
    pub fn group(&mut self, name: &str, group: Group) -> &mut Self {
        self.members.push((name.to_string(), Node::Group(group)));
        self
    }
    pub fn dataset(&mut self, name: &str, dataset: Dataset) -> &mut Self {
        self.members
            .push((name.to_string(), Node::Dataset(dataset)));
        self
    }
}

/// Jenkins' lookup3 hash (`hashlittle`, initial value 0): the checksum of HDF5's metadata
/// (superblock v2, version-2 object headers).
pub fn lookup3(data: &[u8]) -> u32 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }
    let word = |k: &[u8]| -> u32 {
        k.iter().enumerate().fold(0u32, |acc, (i, &byte)| {
            acc.wrapping_add(u32::from(byte) << (8 * i))
        })
    };
    let init = 0xdead_beefu32.wrapping_add(data.len() as u32);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = data;
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&k[..k.len().min(4)]));
    if k.len() > 4 {
        b = b.wrapping_add(word(&k[4..k.len().min(8)]));
    }
    if k.len() > 8 {
        c = c.wrapping_add(word(&k[8..]));
    }
    finish(&mut a, &mut b, &mut c);
    c
}

/// Where a string lives: global heap collection address and object index.
#[derive(Clone, Copy)]
struct HeapId {
    collection: u64,
    index: u16,
}

/// The global heap collections of the file's strings, laid out from `start`.
struct Heaps {
    /// Bytes of every collection, back to back.
    bytes: Vec<u8>,
    /// Per string (in the order they were collected), where it lives.
    ids: Vec<HeapId>,
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

impl Heaps {
    fn build(strings: &[&str], start: u64) -> Heaps {
        let mut bytes = Vec::new();
        let mut ids = Vec::with_capacity(strings.len());
        for chunk in strings.chunks(HEAP_MAX_OBJECTS) {
            let base = bytes.len();
            let address = start + base as u64;
            let used: usize = 16 + chunk.iter().map(|s| 16 + align8(s.len())).sum::<usize>();
            // Room after the objects is one free-space object (which needs 16 bytes for its
            // header), or nothing.
            let mut size = used.max(HEAP_MIN);
            if size > used && size - used < 16 {
                size += 16;
            }
            bytes.extend_from_slice(b"GCOL");
            bytes.push(1);
            bytes.extend_from_slice(&[0; 3]);
            bytes.extend_from_slice(&(size as u64).to_le_bytes());
            for (i, s) in chunk.iter().enumerate() {
                let index = (i + 1) as u16;
                bytes.extend_from_slice(&index.to_le_bytes());
                bytes.extend_from_slice(&1u16.to_le_bytes()); // reference count
                bytes.extend_from_slice(&[0; 4]);
                bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
                bytes.extend_from_slice(s.as_bytes());
                bytes.resize(bytes.len() + align8(s.len()) - s.len(), 0);
                ids.push(HeapId {
                    collection: address,
                    index,
                });
            }
            let free = size - used;
            if free > 0 {
                bytes.extend_from_slice(&0u16.to_le_bytes());
                bytes.extend_from_slice(&[0; 6]);
                bytes.extend_from_slice(&(free as u64).to_le_bytes());
                bytes.resize(base + size, 0);
            }
            debug_assert_eq!(bytes.len(), base + size);
        }
        Heaps { bytes, ids }
    }
}

/// Encoding of datatypes, dataspaces and values.
fn datatype(dtype: Dtype) -> Vec<u8> {
    let mut out = Vec::new();
    let fixed = |out: &mut Vec<u8>, bytes: u32, signed: bool| {
        out.push(0x10); // version 1, class 0 (fixed-point)
        out.extend_from_slice(&[if signed { 0x08 } else { 0 }, 0, 0]);
        out.extend_from_slice(&bytes.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // bit offset
        out.extend_from_slice(&((bytes * 8) as u16).to_le_bytes()); // precision
    };
    let float = |out: &mut Vec<u8>, bytes: u32| {
        let (sign, exp_loc, exp_size, mant_size, bias) = if bytes == 8 {
            (63u8, 52u8, 11u8, 52u8, 1023u32)
        } else {
            (31, 23, 8, 23, 127)
        };
        out.push(0x11); // version 1, class 1 (floating-point)
        out.extend_from_slice(&[0x20, sign, 0]); // little endian, implied leading 1
        out.extend_from_slice(&bytes.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&((bytes * 8) as u16).to_le_bytes());
        out.extend_from_slice(&[exp_loc, exp_size, 0, mant_size]);
        out.extend_from_slice(&bias.to_le_bytes());
    };
    match dtype {
        Dtype::F64 => float(&mut out, 8),
        Dtype::F32 => float(&mut out, 4),
        Dtype::I64 => fixed(&mut out, 8, true),
        Dtype::I32 => fixed(&mut out, 4, true),
        Dtype::U64 => fixed(&mut out, 8, false),
        Dtype::U32 => fixed(&mut out, 4, false),
        Dtype::U8 => fixed(&mut out, 1, false),
        Dtype::Str => {
            out.push(0x19); // version 1, class 9 (variable-length)
            out.extend_from_slice(&[0x01, 0x01, 0]); // a string, null-terminated padding, UTF-8
            out.extend_from_slice(&16u32.to_le_bytes());
            fixed(&mut out, 1, false); // its base type: one unsigned byte
        }
        Dtype::Ref => {
            out.push(0x17); // version 1, class 7 (reference)
            out.extend_from_slice(&[0, 0, 0]); // an object reference
            out.extend_from_slice(&8u32.to_le_bytes());
        }
    }
    out
}

fn element_size(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::F64 | Dtype::I64 | Dtype::U64 | Dtype::Ref => 8,
        Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
        Dtype::U8 => 1,
        Dtype::Str => 16,
    }
}

fn dataspace(shape: &[u64]) -> Vec<u8> {
    let mut out = vec![
        2,
        shape.len() as u8,
        0,
        if shape.is_empty() { 0 } else { 1 },
    ];
    for d in shape {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

/// What the encoder needs to turn strings and references into bytes.
struct Context<'a> {
    heaps: &'a [HeapId],
    addresses: &'a HashMap<String, u64>,
}

/// The bytes of `values`; `strings` is the heap position of the first of its strings.
fn encode_values(values: &Values, strings: usize, cx: &Context, out: &mut Vec<u8>) {
    match values {
        Values::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Values::U8(v) => out.extend_from_slice(v),
        Values::Str(v) => {
            for (i, s) in v.iter().enumerate() {
                let id = cx.heaps.get(strings + i).copied().unwrap_or(HeapId {
                    collection: 0,
                    index: 0,
                });
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(&id.collection.to_le_bytes());
                out.extend_from_slice(&u32::from(id.index).to_le_bytes());
            }
        }
        Values::Ref(v) => {
            for path in v {
                let address = cx.addresses.get(path).copied().unwrap_or(UNDEF);
                out.extend_from_slice(&address.to_le_bytes());
            }
        }
    }
}

/// One header message: type, body.
fn message(out: &mut Vec<u8>, kind: u8, body: &[u8]) -> io::Result<()> {
    let size = u16::try_from(body.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "an HDF5 header message of {} bytes (an attribute too large?)",
                body.len()
            ),
        )
    })?;
    out.push(kind);
    out.extend_from_slice(&size.to_le_bytes());
    out.push(0);
    out.extend_from_slice(body);
    Ok(())
}

fn attribute_message(attr: &Attr, strings: usize, cx: &Context) -> Vec<u8> {
    let dt = datatype(attr.values.dtype());
    let ds = dataspace(&attr.shape);
    let mut body = vec![3, 0];
    body.extend_from_slice(&((attr.name.len() + 1) as u16).to_le_bytes());
    body.extend_from_slice(&(dt.len() as u16).to_le_bytes());
    body.extend_from_slice(&(ds.len() as u16).to_le_bytes());
    body.push(1); // the name is UTF-8
    body.extend_from_slice(attr.name.as_bytes());
    body.push(0);
    body.extend_from_slice(&dt);
    body.extend_from_slice(&ds);
    encode_values(&attr.values, strings, cx, &mut body);
    body
}

/// An object header (version 2) around `messages`.
fn object_header(messages: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messages.len() + 16);
    out.extend_from_slice(b"OHDR");
    out.push(2); // version
    out.push(0x02); // the size of chunk 0 takes 4 bytes; no times, no creation order
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    out.extend_from_slice(messages);
    let sum = lookup3(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// An object of the tree in write order (children before parents), with what its header
/// needs.
struct Flat<'a> {
    path: String,
    node: FlatNode<'a>,
    /// Heap position of the first string of each attribute (and, for a dataset, of its data).
    attr_strings: Vec<usize>,
    data_strings: usize,
}

enum FlatNode<'a> {
    Group(&'a Group, Vec<(String, String)>),
    Dataset(&'a Dataset),
}

fn flatten<'a>(
    group: &'a Group,
    path: &str,
    strings: &mut Vec<&'a str>,
    out: &mut Vec<Flat<'a>>,
) -> io::Result<()> {
    let mut links = Vec::new();
    for (name, node) in &group.members {
        if name.is_empty() || name.contains('/') || name == "." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not an HDF5 member name"),
            ));
        }
        let child = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        match node {
            Node::Group(g) => flatten(g, &child, strings, out)?,
            Node::Dataset(d) => {
                let count: u64 = d.shape.iter().product();
                if count != d.values.len() as u64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "dataset {child}: shape {:?} holds {count} values, not {}",
                            d.shape,
                            d.values.len()
                        ),
                    ));
                }
                let attr_strings = collect_attr_strings(&d.attrs, strings);
                let data_strings = strings.len();
                strings.extend(d.values.strings().iter().map(String::as_str));
                out.push(Flat {
                    path: child.clone(),
                    node: FlatNode::Dataset(d),
                    attr_strings,
                    data_strings,
                });
            }
        }
        links.push((name.clone(), child));
    }
    let attr_strings = collect_attr_strings(&group.attrs, strings);
    out.push(Flat {
        path: path.to_string(),
        node: FlatNode::Group(group, links),
        attr_strings,
        data_strings: 0,
    });
    Ok(())
}

fn collect_attr_strings<'a>(attrs: &'a [Attr], strings: &mut Vec<&'a str>) -> Vec<usize> {
    attrs
        .iter()
        .map(|a| {
            let first = strings.len();
            strings.extend(a.values.strings().iter().map(String::as_str));
            first
        })
        .collect()
}

/// The header of one object, given where its data lives (datasets).
fn header_of(flat: &Flat, data: (u64, u64), cx: &Context) -> io::Result<Vec<u8>> {
    let mut m = Vec::new();
    let attrs = match &flat.node {
        FlatNode::Group(g, links) => {
            let mut info = vec![0, 0];
            info.extend_from_slice(&UNDEF.to_le_bytes()); // no fractal heap: links are here
            info.extend_from_slice(&UNDEF.to_le_bytes());
            message(&mut m, 0x02, &info)?; // link info
            message(&mut m, 0x0A, &[0, 0])?; // group info
            for (name, child) in links {
                let mut link = vec![1];
                let len = name.len();
                let (code, width) = if len < 0x100 {
                    (0u8, 1)
                } else if len < 0x1_0000 {
                    (1, 2)
                } else {
                    (2, 4)
                };
                link.push(code | 0x10); // a hard link, its name UTF-8
                link.push(1);
                link.extend_from_slice(&(len as u64).to_le_bytes()[..width]);
                link.extend_from_slice(name.as_bytes());
                link.extend_from_slice(
                    &cx.addresses
                        .get(child)
                        .copied()
                        .unwrap_or(UNDEF)
                        .to_le_bytes(),
                );
                message(&mut m, 0x06, &link)?;
            }
            &g.attrs
        }
        FlatNode::Dataset(d) => {
            message(&mut m, 0x01, &dataspace(&d.shape))?;
            message(&mut m, 0x03, &datatype(d.values.dtype()))?;
            message(&mut m, 0x05, &[3, 0x05])?; // fill value: allocated early, never filled
            let mut layout = vec![3, 1]; // contiguous
            layout.extend_from_slice(&data.0.to_le_bytes());
            layout.extend_from_slice(&data.1.to_le_bytes());
            message(&mut m, 0x08, &layout)?;
            &d.attrs
        }
    };
    for (attr, &first) in attrs.iter().zip(&flat.attr_strings) {
        if attr.shape.iter().product::<u64>() != attr.values.len() as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "attribute {}@{}: shape {:?} does not hold {} values",
                    flat.path,
                    attr.name,
                    attr.shape,
                    attr.values.len()
                ),
            ));
        }
        message(&mut m, 0x0C, &attribute_message(attr, first, cx))?;
    }
    Ok(object_header(&m))
}

/// Write `root` as the HDF5 file `path` (through a temporary file beside it, renamed into
/// place once complete).
pub fn write_file(path: &Path, root: &Group) -> io::Result<()> {
    let mut objects = Vec::new();
    let mut strings = Vec::new();
    flatten(root, "/", &mut strings, &mut objects)?;
    let heaps = Heaps::build(&strings, SUPERBLOCK_SIZE);
    let mut at = SUPERBLOCK_SIZE + heaps.bytes.len() as u64;
    // Dataset bytes, in object order.
    let mut data_at = Vec::with_capacity(objects.len());
    for flat in &objects {
        match &flat.node {
            FlatNode::Dataset(d) if !d.values.is_empty() => {
                let size = d.values.len() as u64 * element_size(d.values.dtype());
                data_at.push((at, size));
                at += size;
            }
            _ => data_at.push((UNDEF, 0)),
        }
    }
    // Header sizes do not depend on the addresses they hold: size them with none known.
    let none = HashMap::new();
    let cx = Context {
        heaps: &heaps.ids,
        addresses: &none,
    };
    let mut addresses = HashMap::new();
    for (flat, &data) in objects.iter().zip(&data_at) {
        addresses.insert(flat.path.clone(), at);
        at += header_of(flat, data, &cx)?.len() as u64;
    }
    let eof = at;
    let cx = Context {
        heaps: &heaps.ids,
        addresses: &addresses,
    };
    let tmp = path.with_file_name(format!(
        ".{}.partial-{}",
        path.file_name()
            .map_or("out".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = (|| -> io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        let mut sb = Vec::with_capacity(SUPERBLOCK_SIZE as usize);
        sb.extend_from_slice(b"\x89HDF\r\n\x1a\n");
        sb.extend_from_slice(&[2, 8, 8, 0]); // version 2, 8-byte offsets and lengths
        sb.extend_from_slice(&0u64.to_le_bytes()); // base address
        sb.extend_from_slice(&UNDEF.to_le_bytes()); // no superblock extension
        sb.extend_from_slice(&eof.to_le_bytes());
        sb.extend_from_slice(&addresses["/"].to_le_bytes());
        let sum = lookup3(&sb);
        sb.extend_from_slice(&sum.to_le_bytes());
        w.write_all(&sb)?;
        w.write_all(&heaps.bytes)?;
        let mut buf = Vec::new();
        for flat in &objects {
            if let FlatNode::Dataset(d) = &flat.node {
                buf.clear();
                encode_values(&d.values, flat.data_strings, &cx, &mut buf);
                w.write_all(&buf)?;
            }
        }
        for (flat, &data) in objects.iter().zip(&data_at) {
            w.write_all(&header_of(flat, data, &cx)?)?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup3_matches_the_published_test_values() {
        // From the comments of Bob Jenkins' lookup3.c (driver5): hashlittle("", 0) and
        // hashlittle("Four score and seven years ago", 0).
        assert_eq!(lookup3(b""), 0xdead_beef);
        assert_eq!(lookup3(b"Four score and seven years ago"), 0x1777_0551);
    }

    #[test]
    fn heaps_are_at_least_the_minimum_and_hold_every_string() {
        let strings: Vec<String> = (0..70_000).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
        let heaps = Heaps::build(&refs, 48);
        assert_eq!(heaps.ids.len(), strings.len());
        // Two collections: 65,535 objects fit in one.
        assert_eq!(heaps.ids[65_534].collection, 48);
        assert_eq!(heaps.ids[65_535].index, 1);
        let second = heaps.ids[65_535].collection as usize - 48;
        assert_eq!(&heaps.bytes[second..second + 4], b"GCOL");
        let small = Heaps::build(&["a"], 0);
        assert_eq!(small.bytes.len(), HEAP_MIN);
    }
}
