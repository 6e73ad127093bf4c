//! Generated code as an object file, for native runners (`neurograph build`).
//!
//! The same translators as the JIT write every kernel a model needs into a relocatable object
//! (position-independent, with the CPU features asked for). The object also holds the kernel table the
//! runtime looks kernels up in, and named byte strings (the spec text, build information):
//!
//! - `ng_kernel_table`: `ng_kernel_count` entries of three 8-byte words: the address of the
//!   entry's key text, its length, and the function's address. A key text is `kernel_id` of
//!   the key (`K`, `F` or `D` and the key's `Debug` form: the same spec gives the same IR, so
//!   the runner finds a key by recomputing it);
//! - each blob `name`: the bytes at symbol `name`, their length (8 bytes) at `name_len`.

use std::collections::BTreeMap;

use cranelift_module::{default_libcall_names, DataDescription, FuncId, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

use super::{isa, Codegen};
pub use crate::codegen::{kernel_id, KernelRef};
use crate::codegen::{CodegenError, CpuFeatures};
use crate::ir::Model;

/// Kernels being written into an object file.
pub struct ObjectCodegen {
    gen: Codegen<ObjectModule>,
    /// Kernel id to function (sorted: the same model gives the same table).
    entries: BTreeMap<String, FuncId>,
}

impl ObjectCodegen {
    /// Kernels for machines with the CPU features `cpu`.
    pub fn new(cpu: CpuFeatures) -> Result<ObjectCodegen, CodegenError> {
        let builder = ObjectBuilder::new(
            isa(true, cpu)?,
            "neurograph_kernels",
            default_libcall_names(),
        )
        .map_err(|e| CodegenError(e.to_string()))?;
        Ok(ObjectCodegen {
            gen: Codegen::with_module(ObjectModule::new(builder), Linkage::Local)?,
            entries: BTreeMap::new(),
        })
    }

    /// Kernels written so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Translate the kernel of `key` into the object (once per key).
    pub fn add(&mut self, model: &Model, key: KernelRef) -> Result<(), CodegenError> {
        let id = kernel_id(&key);
        if self.entries.contains_key(&id) {
            return Ok(());
        }
        let func = match key {
            KernelRef::Expr(k) => self.gen.attempt(|g| g.translate(model, k))?.0,
            KernelRef::Fused(k) => self.gen.attempt(|g| g.translate_fused(model, k))?,
            KernelRef::Delivery(k) => self.gen.attempt(|g| g.translate_delivery(model, k))?,
        };
        self.entries.insert(id, func);
        Ok(())
    }

    /// The object file: the kernels, their table, and `blobs` (exported by name).
    pub fn finish(mut self, blobs: &[(&str, &[u8])]) -> Result<Vec<u8>, CodegenError> {
        let module = self.gen.module_mut();
        let define = |module: &mut ObjectModule,
                      name: &str,
                      linkage: Linkage,
                      desc: &DataDescription|
         -> Result<cranelift_module::DataId, CodegenError> {
            let id = module.declare_data(name, linkage, false, false)?;
            module.define_data(id, desc)?;
            Ok(id)
        };
        let word = |x: u64| x.to_le_bytes();
        for (name, bytes) in blobs {
            let mut desc = DataDescription::new();
            desc.define(bytes.to_vec().into_boxed_slice());
            define(module, name, Linkage::Export, &desc)?;
            let mut len = DataDescription::new();
            len.define(Box::new(word(bytes.len() as u64)));
            len.set_align(8);
            define(module, &format!("{name}_len"), Linkage::Export, &len)?;
        }
        // Key texts, then the table pointing at them and at the functions.
        let mut keys = Vec::with_capacity(self.entries.len());
        for (k, (text, _)) in self.entries.iter().enumerate() {
            let mut desc = DataDescription::new();
            desc.define(text.as_bytes().to_vec().into_boxed_slice());
            keys.push(define(
                module,
                &format!("ng_key{k}"),
                Linkage::Local,
                &desc,
            )?);
        }
        let mut table = DataDescription::new();
        let mut contents = Vec::with_capacity(24 * self.entries.len());
        for text in self.entries.keys() {
            contents.extend_from_slice(&word(0));
            contents.extend_from_slice(&word(text.len() as u64));
            contents.extend_from_slice(&word(0));
        }
        // An empty table still needs a symbol.
        if contents.is_empty() {
            contents.extend_from_slice(&word(0));
        }
        table.define(contents.into_boxed_slice());
        table.set_align(8);
        for (k, ((_, func), key)) in self.entries.iter().zip(&keys).enumerate() {
            let gv = module.declare_data_in_data(*key, &mut table);
            table.write_data_addr(24 * k as u32, gv, 0);
            let fr = module.declare_func_in_data(*func, &mut table);
            table.write_function_addr(24 * k as u32 + 16, fr);
        }
        define(module, "ng_kernel_table", Linkage::Export, &table)?;
        let mut count = DataDescription::new();
        count.define(Box::new(word(self.entries.len() as u64)));
        count.set_align(8);
        define(module, "ng_kernel_count", Linkage::Export, &count)?;
        self.gen
            .into_module()
            .finish()
            .emit()
            .map_err(|e| CodegenError(e.to_string()))
    }
}
