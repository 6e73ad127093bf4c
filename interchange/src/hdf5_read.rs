//! A reader of HDF5 files: groups, datasets and attributes of numbers and strings, as h5py
//! writes them by default (superblock 0, version-1 object headers, groups as symbol tables
//! with a B-tree and a local heap) and as [`crate::hdf5`] writes them (superblock 2,
//! version-2 object headers, links in the header). Contiguous and compact data; integers,
//! floats (either byte order), fixed and variable-length strings, enums (read as their
//! integers). Chunked data (layout version 3, as h5py writes it) with the deflate, shuffle
//! and Fletcher-32 filters. Other filters, dense link storage and committed datatypes are
//! refused with a message saying so. The whole file is read into memory.
//!
//! Layouts follow the HDF5 File Format Specification, version 3.0 (The HDF Group).

use std::path::{Path, PathBuf};

use crate::hdf5::Values;

const UNDEF: u64 = u64::MAX;

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub message: String,
}

/// An open HDF5 file.
pub struct File {
    path: PathBuf,
    bytes: Vec<u8>,
    root: u64,
}

/// A member of a group, or the root.
#[derive(Debug, Clone)]
pub enum Object {
    Group(Group),
    Dataset(Dataset),
}

#[derive(Debug, Clone)]
pub struct Group {
    /// Members in name order: name and object header address.
    pub members: Vec<(String, u64)>,
    pub attrs: Vec<(String, Values)>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub shape: Vec<u64>,
    pub values: Values,
    pub attrs: Vec<(String, Values)>,
}

/// How to decode an element.
#[derive(Debug, Clone)]
enum Type {
    Int {
        size: usize,
        signed: bool,
        big: bool,
    },
    Float {
        size: usize,
        big: bool,
    },
    FixedStr(usize),
    VlenStr,
    ObjectRef,
}

impl Type {
    fn size(&self) -> usize {
        match self {
            Type::Int { size, .. } | Type::Float { size, .. } => *size,
            Type::FixedStr(n) => *n,
            Type::VlenStr => 16,
            Type::ObjectRef => 8,
        }
    }
}

/// A cursor over the file's bytes with bounds-checked reads.
struct Cur<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// An unsigned little-endian number of `n` bytes.
    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }
}

/// A raw header message.
struct Message<'a> {
    kind: u16,
    flags: u8,
    body: &'a [u8],
}

impl File {
    pub fn open(path: &Path) -> Result<File, ReadError> {
        let bytes = std::fs::read(path).map_err(|e| ReadError {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        File::from_bytes(path, bytes)
    }

    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<File, ReadError> {
        let err = |message: String| ReadError {
            path: path.to_path_buf(),
            message,
        };
        // The superblock is at 0, 512, 1024, ... (a user block may precede it).
        let mut base = 0usize;
        loop {
            if base + 8 > bytes.len() {
                return Err(err("not an HDF5 file (no superblock signature)".into()));
            }
            if &bytes[base..base + 8] == b"\x89HDF\r\n\x1a\n" {
                break;
            }
            base = if base == 0 { 512 } else { base * 2 };
        }
        let mut c = Cur {
            bytes: &bytes,
            at: base + 8,
        };
        let version = c.u8().map_err(&err)?;
        let root = match version {
            0 | 1 => {
                c.skip(4).map_err(&err)?; // free-space, root table, reserved, shared header versions
                let (offsets, lengths) = (c.u8().map_err(&err)?, c.u8().map_err(&err)?);
                if offsets != 8 || lengths != 8 {
                    return Err(err(format!(
                        "{offsets}-byte addresses and {lengths}-byte lengths are not supported (only 8)"
                    )));
                }
                c.skip(1 + 4 + 4).map_err(&err)?; // reserved, group K values, flags
                if version == 1 {
                    c.skip(4).map_err(&err)?;
                }
                c.skip(8 * 4).map_err(&err)?; // base, free-space, end-of-file, driver addresses
                c.skip(8).map_err(&err)?; // the root entry's link name offset
                c.u64().map_err(&err)?
            }
            2 | 3 => {
                let (offsets, lengths) = (c.u8().map_err(&err)?, c.u8().map_err(&err)?);
                if offsets != 8 || lengths != 8 {
                    return Err(err(format!(
                        "{offsets}-byte addresses and {lengths}-byte lengths are not supported (only 8)"
                    )));
                }
                c.skip(1 + 8 + 8 + 8).map_err(&err)?;
                c.u64().map_err(&err)?
            }
            v => return Err(err(format!("superblock version {v} is not supported"))),
        };
        Ok(File {
            path: path.to_path_buf(),
            bytes,
            root,
        })
    }

    fn err(&self, message: impl Into<String>) -> ReadError {
        ReadError {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn cur(&self, at: u64) -> Result<Cur<'_>, ReadError> {
        if at as usize >= self.bytes.len() {
            return Err(self.err(format!("address {at} is past the end of the file")));
        }
        Ok(Cur {
            bytes: &self.bytes,
            at: at as usize,
        })
    }

    /// The object at `path` (`/`-separated, from the root).
    pub fn get(&self, path: &str) -> Result<Object, ReadError> {
        let mut obj = self.object(self.root)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let Object::Group(g) = &obj else {
                return Err(self.err(format!("{path}: `{part}` is inside a dataset")));
            };
            let Some((_, addr)) = g.members.iter().find(|(n, _)| n == part) else {
                return Err(self.err(format!("{path}: there is no `{part}`")));
            };
            obj = self.object(*addr)?;
        }
        Ok(obj)
    }

    /// The object whose header is at `addr`.
    pub fn object(&self, addr: u64) -> Result<Object, ReadError> {
        let messages = self.messages(addr)?;
        let at = |kind: u16| messages.iter().find(|m| m.kind == kind);
        let mut attrs = Vec::new();
        for m in messages.iter().filter(|m| m.kind == 0x0C) {
            attrs.push(
                self.attribute(m.body)
                    .map_err(|e| self.err(format!("attribute at {addr}: {e}")))?,
            );
        }
        if let Some(layout) = at(0x08) {
            let space = at(0x01).ok_or_else(|| self.err("a dataset without a dataspace"))?;
            let dtype = at(0x03).ok_or_else(|| self.err("a dataset without a datatype"))?;
            if dtype.flags & 0x02 != 0 {
                return Err(self.err("committed (shared) datatypes are not supported"));
            }
            let shape = dataspace(space.body).map_err(|e| self.err(e))?;
            let ty = datatype(&mut Cur {
                bytes: dtype.body,
                at: 0,
            })
            .map_err(|e| self.err(e))?;
            let (count, bytes) = extent(&shape, &ty).map_err(|e| self.err(e))?;
            let filters = match at(0x0B) {
                Some(m) => filter_pipeline(m.body).map_err(|e| self.err(e))?,
                None => Vec::new(),
            };
            let raw = self.layout_bytes(layout.body, bytes, &shape, ty.size(), &filters)?;
            let values = self.decode(&ty, &raw, count as usize)?;
            return Ok(Object::Dataset(Dataset {
                shape,
                values,
                attrs,
            }));
        }
        let mut members = Vec::new();
        if let Some(table) = at(0x11) {
            let mut c = Cur {
                bytes: table.body,
                at: 0,
            };
            let (btree, heap) = (
                c.u64().map_err(|e| self.err(e))?,
                c.u64().map_err(|e| self.err(e))?,
            );
            let names = self.local_heap(heap)?;
            self.btree_group(btree, names, &mut members, 0)?;
        }
        if let Some(info) = at(0x02) {
            let mut c = Cur {
                bytes: info.body,
                at: 0,
            };
            c.skip(1).map_err(|e| self.err(e))?;
            let flags = c.u8().map_err(|e| self.err(e))?;
            if flags & 1 != 0 {
                c.skip(8).map_err(|e| self.err(e))?;
            }
            if c.u64().map_err(|e| self.err(e))? != UNDEF {
                return Err(
                    self.err("groups with dense link storage (a fractal heap) are not supported")
                );
            }
        }
        for m in messages.iter().filter(|m| m.kind == 0x06) {
            if let Some(link) = link(m.body).map_err(|e| self.err(e))? {
                members.push(link);
            }
        }
        members.sort();
        Ok(Object::Group(Group { members, attrs }))
    }

    /// Every message of the object header at `addr`, continuation blocks included.
    fn messages(&self, addr: u64) -> Result<Vec<Message<'_>>, ReadError> {
        let e = |m: String| self.err(format!("object header at {addr}: {m}"));
        let mut c = self.cur(addr)?;
        let mut out = Vec::new();
        // Blocks of messages still to read: (start, end, version-2 framing).
        let mut blocks: Vec<(usize, usize, bool, bool)> = Vec::new();
        let mut creation_order = false;
        if self.bytes.get(addr as usize..addr as usize + 4) == Some(b"OHDR") {
            c.skip(4).map_err(e)?;
            let version = c.u8().map_err(e)?;
            if version != 2 {
                return Err(e(format!("version {version} after OHDR")));
            }
            let flags = c.u8().map_err(e)?;
            if flags & 0x20 != 0 {
                c.skip(16).map_err(e)?;
            }
            if flags & 0x10 != 0 {
                c.skip(4).map_err(e)?;
            }
            creation_order = flags & 0x04 != 0;
            let size = c.uint(1 << (flags & 3)).map_err(e)? as usize;
            blocks.push((c.at, c.at + size, true, creation_order));
        } else {
            let version = c.u8().map_err(e)?;
            if version != 1 {
                return Err(e(format!("version {version} is not supported")));
            }
            c.skip(1 + 2 + 4).map_err(e)?;
            let size = c.u32().map_err(e)? as usize;
            c.skip(4).map_err(e)?; // padding to 8 bytes
            blocks.push((c.at, c.at + size, false, false));
        }
        let mut seen = 0;
        while let Some((start, end, v2, order)) = blocks.pop() {
            seen += 1;
            if seen > 10_000 || end > self.bytes.len() {
                return Err(e("header continuation blocks run past the file".into()));
            }
            let mut c = Cur {
                bytes: &self.bytes[..end],
                at: start,
            };
            let header = if v2 { 4 + usize::from(order) * 2 } else { 8 };
            while c.at + header <= end {
                let (kind, size, flags) = if v2 {
                    let kind = u16::from(c.u8().map_err(e)?);
                    let size = c.u16().map_err(e)? as usize;
                    let flags = c.u8().map_err(e)?;
                    if order {
                        c.skip(2).map_err(e)?;
                    }
                    (kind, size, flags)
                } else {
                    let kind = c.u16().map_err(e)?;
                    let size = c.u16().map_err(e)? as usize;
                    let flags = c.u8().map_err(e)?;
                    c.skip(3).map_err(e)?;
                    (kind, size, flags)
                };
                let body = c.take(size).map_err(e)?;
                if kind == 0x10 {
                    let mut b = Cur { bytes: body, at: 0 };
                    let (at, len) = (b.u64().map_err(e)? as usize, b.u64().map_err(e)? as usize);
                    if v2 {
                        if self.bytes.get(at..at.saturating_add(4)) != Some(b"OCHK") {
                            return Err(e("a continuation block without OCHK".into()));
                        }
                        let end = at.saturating_add(len).saturating_sub(4);
                        blocks.push((at + 4, end, true, creation_order));
                    } else {
                        blocks.push((at, at.saturating_add(len), false, false));
                    }
                } else {
                    out.push(Message { kind, flags, body });
                }
            }
        }
        Ok(out)
    }

    /// The data segment of the local heap at `addr`.
    fn local_heap(&self, addr: u64) -> Result<&[u8], ReadError> {
        let mut c = self.cur(addr)?;
        let e = |m: String| self.err(format!("local heap at {addr}: {m}"));
        if c.take(4).map_err(e)? != b"HEAP" {
            return Err(e("no HEAP signature".into()));
        }
        c.skip(4).map_err(e)?;
        let size = c.u64().map_err(e)? as usize;
        c.skip(8).map_err(e)?;
        let data = c.u64().map_err(e)? as usize;
        self.bytes
            .get(data..data.saturating_add(size))
            .ok_or_else(|| e("its data runs past the file".into()))
    }

    /// The header of a version-1 B-tree node of type `kind` (0 groups, 1 chunks) at `addr`:
    /// a cursor at its first key, its level and its number of entries.
    fn tree_node(
        &self,
        addr: u64,
        kind: u8,
        depth: usize,
    ) -> Result<(Cur<'_>, u8, usize), ReadError> {
        let what = if kind == 0 { "group" } else { "chunk" };
        let e = |m: String| self.err(format!("{what} B-tree node at {addr}: {m}"));
        if depth > 64 {
            return Err(e("nested too deeply".into()));
        }
        let mut c = self.cur(addr)?;
        if c.take(4).map_err(e)? != b"TREE" {
            return Err(e("no TREE signature".into()));
        }
        let (found, level) = (c.u8().map_err(e)?, c.u8().map_err(e)?);
        if found != kind {
            return Err(e(format!("node type {found} in a {what} tree")));
        }
        let entries = c.u16().map_err(e)? as usize;
        c.skip(16).map_err(e)?; // siblings
        Ok((c, level, entries))
    }

    /// The members of a group from its B-tree (version 1, group nodes) at `addr`.
    fn btree_group(
        &self,
        addr: u64,
        names: &[u8],
        out: &mut Vec<(String, u64)>,
        depth: usize,
    ) -> Result<(), ReadError> {
        let e = |m: String| self.err(format!("group B-tree node at {addr}: {m}"));
        let (mut c, level, entries) = self.tree_node(addr, 0, depth)?;
        let mut children = Vec::with_capacity(entries);
        c.skip(8).map_err(e)?; // key 0
        for _ in 0..entries {
            children.push(c.u64().map_err(e)?);
            c.skip(8).map_err(e)?;
        }
        for child in children {
            if level > 0 {
                self.btree_group(child, names, out, depth + 1)?;
                continue;
            }
            let mut s = self.cur(child)?;
            let e = |m: String| self.err(format!("symbol table node at {child}: {m}"));
            if s.take(4).map_err(e)? != b"SNOD" {
                return Err(e("no SNOD signature".into()));
            }
            s.skip(2).map_err(e)?;
            let n = s.u16().map_err(e)?;
            for _ in 0..n {
                let name_at = s.u64().map_err(e)? as usize;
                let header = s.u64().map_err(e)?;
                s.skip(4 + 4 + 16).map_err(e)?;
                let name = names
                    .get(name_at..)
                    .and_then(|n| n.split(|&b| b == 0).next())
                    .ok_or_else(|| e("a name past its heap".into()))?;
                out.push((String::from_utf8_lossy(name).into_owned(), header));
            }
        }
        Ok(())
    }

    /// The raw bytes of a dataset's data, `size` bytes long (`shape` of elements of
    /// `element` bytes; `filters` the pipeline of chunked data).
    fn layout_bytes(
        &self,
        body: &[u8],
        size: u64,
        shape: &[u64],
        element: usize,
        filters: &[u16],
    ) -> Result<Vec<u8>, ReadError> {
        let mut c = Cur { bytes: body, at: 0 };
        let e = |m: String| self.err(format!("data layout: {m}"));
        let version = c.u8().map_err(e)?;
        if !(3..=4).contains(&version) {
            return Err(e(format!(
                "layout message version {version} is not supported"
            )));
        }
        match c.u8().map_err(e)? {
            0 => {
                let n = c.u16().map_err(e)? as usize;
                let raw = c.take(n).map_err(e)?;
                if (n as u64) < size {
                    return Err(e(format!("{n} compact bytes for {size}")));
                }
                Ok(raw[..size as usize].to_vec())
            }
            1 => {
                let (at, n) = (c.u64().map_err(e)?, c.u64().map_err(e)?);
                if at == UNDEF {
                    // Never written: the fill value (zeros). A damaged size is not allocated.
                    if size > 1 << 30 {
                        return Err(e(format!("{size} unwritten bytes")));
                    }
                    return Ok(vec![0; size as usize]);
                }
                if n < size {
                    return Err(e(format!("{n} stored bytes for {size}")));
                }
                self.bytes
                    .get(at as usize..at.saturating_add(size) as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| e("the data runs past the file".into()))
            }
            2 if version == 3 => {
                let rank = c.u8().map_err(e)? as usize;
                let tree = c.u64().map_err(e)?;
                let chunk: Vec<u64> = (0..rank)
                    .map(|_| c.u32().map(u64::from))
                    .collect::<Result<_, _>>()
                    .map_err(e)?;
                if rank != shape.len() + 1 || chunk[rank - 1] != element as u64 {
                    return Err(e(format!("chunk dimensions {chunk:?} for shape {shape:?}")));
                }
                if chunk[..rank - 1].contains(&0) {
                    return Err(e("a chunk dimension of 0".into()));
                }
                // Deflate packs at most about 1,032 bytes into one: a larger array than that
                // is a damaged size, not allocated.
                if size > (self.bytes.len() as u64).saturating_mul(1100).max(1 << 20) {
                    return Err(e(format!("{size} bytes of data in a file of {}", self.bytes.len())));
                }
                let chunk_bytes = chunk.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
                let chunk_bytes = chunk_bytes
                    .filter(|&b| b <= size.max(element as u64) * 2 + (1 << 20))
                    .ok_or_else(|| e(format!("chunk dimensions {chunk:?}")))?
                    as usize;
                let mut out = vec![0u8; size as usize];
                if tree != UNDEF {
                    let mut chunks = Vec::new();
                    self.btree_chunks(tree, rank, &mut chunks, 0)?;
                    for (offsets, mask, at, len) in chunks {
                        let stored = self
                            .bytes
                            .get(at as usize..(at as usize).saturating_add(len))
                            .ok_or_else(|| e("a chunk runs past the file".into()))?;
                        let data =
                            unfilter(stored, filters, mask, element, chunk_bytes).map_err(e)?;
                        place_chunk(&mut out, &data, shape, &chunk[..rank - 1], &offsets, element)
                            .map_err(e)?;
                    }
                }
                Ok(out)
            }
            2 => Err(e(format!(
                "chunked datasets in layout version {version} are not supported (h5py's default writes version 3)"
            ))),
            k => Err(e(format!("layout class {k}"))),
        }
    }

    /// The chunks of a chunked dataset from its B-tree (version 1, chunk nodes) at `addr`:
    /// (element offsets, filter mask, address, stored size).
    #[allow(clippy::type_complexity)]
    fn btree_chunks(
        &self,
        addr: u64,
        rank: usize,
        out: &mut Vec<(Vec<u64>, u32, u64, usize)>,
        depth: usize,
    ) -> Result<(), ReadError> {
        let e = |m: String| self.err(format!("chunk B-tree node at {addr}: {m}"));
        let (mut c, level, entries) = self.tree_node(addr, 1, depth)?;
        for _ in 0..entries {
            let len = c.u32().map_err(e)? as usize;
            let mask = c.u32().map_err(e)?;
            let offsets: Vec<u64> = (0..rank)
                .map(|_| c.u64())
                .collect::<Result<_, _>>()
                .map_err(e)?;
            let child = c.u64().map_err(e)?;
            if level > 0 {
                self.btree_chunks(child, rank, out, depth + 1)?;
            } else {
                out.push((offsets[..rank - 1].to_vec(), mask, child, len));
            }
        }
        Ok(())
    }

    /// The bytes of object `index` of the global heap collection at `addr`.
    fn global(&self, addr: u64, index: u32) -> Result<&[u8], ReadError> {
        let e = |m: String| self.err(format!("global heap at {addr}: {m}"));
        let mut c = self.cur(addr)?;
        if c.take(4).map_err(e)? != b"GCOL" {
            return Err(e("no GCOL signature".into()));
        }
        c.skip(4).map_err(e)?;
        let size = c.u64().map_err(e)? as usize;
        let end = (addr as usize).saturating_add(size).min(self.bytes.len());
        while c.at + 16 <= end {
            let i = c.u16().map_err(e)?;
            c.skip(6).map_err(e)?;
            let n = c.u64().map_err(e)? as usize;
            if i == 0 {
                break;
            }
            let data = c.take(n).map_err(e)?;
            if u32::from(i) == index {
                return Ok(data);
            }
            c.skip(n.div_ceil(8) * 8 - n).map_err(e)?;
        }
        Err(e(format!("no object {index}")))
    }

    fn decode(&self, ty: &Type, raw: &[u8], count: usize) -> Result<Values, ReadError> {
        let size = ty.size();
        let items = raw.chunks_exact(size).take(count);
        let ordered = |b: &[u8], big: bool| -> u64 {
            let mut v = 0u64;
            if big {
                b.iter().for_each(|&x| v = (v << 8) | u64::from(x));
            } else {
                b.iter().rev().for_each(|&x| v = (v << 8) | u64::from(x));
            }
            v
        };
        Ok(match *ty {
            Type::Int { size, signed, big } => {
                if signed {
                    let shift = 64 - 8 * size as u32;
                    Values::I64(
                        items
                            .map(|b| ((ordered(b, big) << shift) as i64) >> shift)
                            .collect(),
                    )
                } else {
                    Values::U64(items.map(|b| ordered(b, big)).collect())
                }
            }
            Type::Float { size: 8, big } => {
                Values::F64(items.map(|b| f64::from_bits(ordered(b, big))).collect())
            }
            Type::Float { big, .. } => Values::F32(
                items
                    .map(|b| f32::from_bits(ordered(b, big) as u32))
                    .collect(),
            ),
            Type::FixedStr(_) => Values::Str(
                items
                    .map(|b| {
                        let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                        String::from_utf8_lossy(&b[..end]).trim_end().to_string()
                    })
                    .collect(),
            ),
            Type::VlenStr => {
                let mut out = Vec::with_capacity(count);
                for b in items {
                    let mut c = Cur { bytes: b, at: 0 };
                    let len = c.u32().map_err(|e| self.err(e))? as usize;
                    let (addr, index) = (
                        c.u64().map_err(|e| self.err(e))?,
                        c.u32().map_err(|e| self.err(e))?,
                    );
                    if len == 0 || addr == 0 {
                        out.push(String::new());
                        continue;
                    }
                    let data = self.global(addr, index)?;
                    let data = &data[..len.min(data.len())];
                    let end = data.iter().position(|&x| x == 0).unwrap_or(data.len());
                    out.push(String::from_utf8_lossy(&data[..end]).into_owned());
                }
                Values::Str(out)
            }
            Type::ObjectRef => Values::U64(items.map(|b| ordered(b, false)).collect()),
        })
    }

    fn attribute(&self, body: &[u8]) -> Result<(String, Values), String> {
        let mut c = Cur { bytes: body, at: 0 };
        let version = c.u8()?;
        c.skip(1)?;
        let (name_size, dt_size, ds_size) =
            (c.u16()? as usize, c.u16()? as usize, c.u16()? as usize);
        if version == 3 {
            c.skip(1)?;
        }
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let name = c.take(pad(name_size))?;
        let name = String::from_utf8_lossy(&name[..name_size.saturating_sub(1)]).into_owned();
        let dt = c.take(pad(dt_size))?;
        let ty = datatype(&mut Cur { bytes: dt, at: 0 })?;
        let ds = c.take(pad(ds_size))?;
        let shape = dataspace(ds)?;
        let (count, bytes) = extent(&shape, &ty)?;
        let raw = c.take(bytes as usize)?;
        let values = self
            .decode(&ty, raw, count as usize)
            .map_err(|e| e.message)?;
        Ok((name, values))
    }
}

/// The filter ids of a filter pipeline message.
fn filter_pipeline(body: &[u8]) -> Result<Vec<u16>, String> {
    let mut c = Cur { bytes: body, at: 0 };
    let version = c.u8()?;
    let n = c.u8()?;
    if version == 1 {
        c.skip(6)?;
    }
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = c.u16()?;
        let name_len = if version == 1 || id >= 256 {
            c.u16()? as usize
        } else {
            0
        };
        c.skip(2)?; // flags
        let values = c.u16()? as usize;
        if version == 1 {
            c.skip(name_len.div_ceil(8) * 8)?;
        } else {
            c.skip(name_len)?;
        }
        c.skip(4 * values)?;
        if version == 1 && values % 2 == 1 {
            c.skip(4)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A stored chunk with its filters undone (last applied first; a set bit of `mask` means
/// the filter was skipped for this chunk).
fn unfilter(
    stored: &[u8],
    filters: &[u16],
    mask: u32,
    element: usize,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut data = stored.to_vec();
    for (k, &id) in filters.iter().enumerate().rev() {
        if k < 32 && mask & (1 << k) != 0 {
            continue;
        }
        data = match id {
            1 => miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&data, limit + 4)
                .map_err(|e| format!("a chunk does not inflate: {e:?}"))?,
            2 => {
                // Shuffle: byte j of every element was stored together.
                let n = data.len() / element.max(1);
                let mut out = vec![0u8; data.len()];
                for j in 0..element {
                    for i in 0..n {
                        out[i * element + j] = data[j * n + i];
                    }
                }
                out[n * element..].copy_from_slice(&data[n * element..]);
                out
            }
            3 => {
                // Fletcher-32: a checksum appended; not verified here.
                let keep = data.len().saturating_sub(4);
                data.truncate(keep);
                data
            }
            other => {
                return Err(format!(
                    "filter {other} is not supported (deflate, shuffle and fletcher32 are)"
                ))
            }
        };
    }
    Ok(data)
}

/// Copy the elements of one chunk (`chunk` elements per dimension, starting at element
/// `offsets`) into the row-major array `out` of `shape`; parts past the edge are dropped.
fn place_chunk(
    out: &mut [u8],
    data: &[u8],
    shape: &[u64],
    chunk: &[u64],
    offsets: &[u64],
    element: usize,
) -> Result<(), String> {
    let per_chunk = chunk
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&n| n.saturating_mul(element as u64) <= data.len() as u64)
        .ok_or_else(|| format!("a chunk of {} bytes for chunk shape {chunk:?}", data.len()))?;
    if shape.is_empty() {
        let n = out.len();
        out.copy_from_slice(&data[..n]);
        return Ok(());
    }
    let rank = shape.len();
    let mut index = vec![0u64; rank];
    for k in 0..per_chunk as usize {
        // Global position of chunk element k.
        let mut flat = 0u64;
        let mut inside = true;
        for d in 0..rank {
            let g = offsets[d].saturating_add(index[d]);
            if g >= shape[d] {
                inside = false;
                break;
            }
            flat = flat * shape[d] + g;
        }
        if inside {
            let to = flat as usize * element;
            out[to..to + element].copy_from_slice(&data[k * element..(k + 1) * element]);
        }
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < chunk[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(())
}

/// The number of elements of `shape` and their bytes, or an error when that overflows.
fn extent(shape: &[u64], ty: &Type) -> Result<(u64, u64), String> {
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    let bytes = count
        .checked_mul(ty.size() as u64)
        .filter(|&b| b < 1 << 48)
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    Ok((count, bytes))
}

/// A link message: its name and, for a hard link, the target's address (soft and external
/// links are skipped).
fn link(body: &[u8]) -> Result<Option<(String, u64)>, String> {
    let mut c = Cur { bytes: body, at: 0 };
    c.skip(1)?;
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?;
    }
    if flags & 0x10 != 0 {
        c.skip(1)?;
    }
    let len = c.uint(1 << (flags & 3))? as usize;
    let name = String::from_utf8_lossy(c.take(len)?).into_owned();
    if kind != 0 {
        return Ok(None);
    }
    Ok(Some((name, c.u64()?)))
}

/// The shape of a dataspace message (empty for a scalar; a null space has no elements).
fn dataspace(body: &[u8]) -> Result<Vec<u64>, String> {
    let mut c = Cur { bytes: body, at: 0 };
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    c.u8()?;
    match version {
        1 => c.skip(5)?,
        2 => {
            if c.u8()? == 2 {
                return Ok(vec![0]);
            }
        }
        v => return Err(format!("dataspace version {v}")),
    }
    (0..rank).map(|_| c.u64()).collect()
}

/// A datatype message.
fn datatype(c: &mut Cur) -> Result<Type, String> {
    let class_version = c.u8()?;
    let bits = c.take(3)?;
    let size = c.u32()? as usize;
    let big = bits[0] & 1 != 0;
    match class_version & 0x0f {
        0 | 3 if size == 0 => Err("a datatype of size 0".into()),
        0 if size > 8 => Err(format!("integers of {size} bytes are not supported")),
        0 => Ok(Type::Int {
            size,
            signed: bits[0] & 0x08 != 0,
            big,
        }),
        1 if size == 4 || size == 8 => Ok(Type::Float { size, big }),
        3 => Ok(Type::FixedStr(size)),
        7 if bits[0] & 0x0f == 0 => Ok(Type::ObjectRef),
        8 => {
            // An enumeration: read as its base integer type.
            let base = datatype(c)?;
            match base {
                Type::Int { .. } => Ok(base),
                _ => Err("an enumeration over a non-integer type".into()),
            }
        }
        9 if bits[0] & 0x0f == 1 => Ok(Type::VlenStr),
        class => Err(format!(
            "datatype class {class} (size {size}) is not supported"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdf5::{write_file, Attr, Dataset as WDataset, Group as WGroup};

    #[test]
    fn what_the_writer_writes_reads_back() {
        let dir = std::env::temp_dir().join(format!("ng-h5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.h5");
        let mut root = WGroup::default();
        root.attr(Attr::str("title", "héllo"));
        let mut g = WGroup::default();
        g.dataset(
            "x",
            WDataset {
                shape: vec![2, 3],
                values: Values::F64(vec![1.0, -2.5, 3.0, 4.0, 5.0, f64::MIN_POSITIVE]),
                attrs: vec![Attr::array(
                    "names",
                    Values::Str(vec!["a".into(), "".into()]),
                )],
            },
        );
        g.dataset("i", WDataset::array(Values::I32(vec![-1, 7])));
        g.dataset("u", WDataset::array(Values::U8(vec![255, 0])));
        g.dataset("f", WDataset::array(Values::F32(vec![0.5])));
        g.dataset("s", WDataset::str("text"));
        g.dataset("empty", WDataset::array(Values::F64(vec![])));
        root.group("g", g);
        root.dataset("r", WDataset::scalar(Values::Ref(vec!["/g/x".into()])));
        write_file(&path, &root).unwrap();
        let f = File::open(&path).unwrap();
        let Object::Group(r) = f.get("/").unwrap() else {
            panic!()
        };
        assert_eq!(
            r.attrs,
            vec![("title".to_string(), Values::Str(vec!["héllo".into()]))]
        );
        let Object::Dataset(x) = f.get("g/x").unwrap() else {
            panic!()
        };
        assert_eq!(x.shape, [2, 3]);
        assert_eq!(
            x.values,
            Values::F64(vec![1.0, -2.5, 3.0, 4.0, 5.0, f64::MIN_POSITIVE])
        );
        assert_eq!(x.attrs[0].1, Values::Str(vec!["a".into(), "".into()]));
        let read = |p: &str| match f.get(p).unwrap() {
            Object::Dataset(d) => d.values,
            Object::Group(_) => panic!("{p} is a group"),
        };
        assert_eq!(read("g/i"), Values::I64(vec![-1, 7]));
        assert_eq!(read("g/u"), Values::U64(vec![255, 0]));
        assert_eq!(read("g/f"), Values::F32(vec![0.5]));
        assert_eq!(read("g/s"), Values::Str(vec!["text".into()]));
        assert_eq!(read("g/empty"), Values::F64(vec![]));
        let Values::U64(addr) = read("r") else {
            panic!()
        };
        assert!(matches!(f.object(addr[0]).unwrap(), Object::Dataset(d) if d.shape == [2, 3]));
        assert!(f.get("g/nope").unwrap_err().message.contains("no `nope`"));
        assert!(File::from_bytes(&path, b"not hdf5".to_vec()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
