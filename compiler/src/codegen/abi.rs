//! The argument blocks of generated functions, each declared once.
//!
//! Every generated function takes one pointer, to an argument block the runtime fills; the
//! blocks point at tables of further blocks (input columns, delivery columns, endpoint parts).
//! `arg_block!` declares each as a `repr(C)` struct and, from the same field list, the byte
//! offset and machine type of every field as generated code loads it (`Block::AT.field`,
//! derived with `offset_of!`). Code generation loads fields through those only, never at
//! hand-computed offsets, so reordering, adding or retyping a field changes both sides at once;
//! `tests::every_field_loads_back` compiles a loader of every block and checks it reads what
//! Rust wrote. Only 8-byte fields are allowed (`Field` is implemented for nothing else).

use std::marker::PhantomData;

#[cfg(feature = "cranelift")]
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
#[cfg(feature = "cranelift")]
use cranelift_frontend::FunctionBuilder;

/// The machine type generated code loads a field as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    I64,
    F64,
    /// The target's pointer type.
    Ptr,
}

/// How generated code loads a field: the Rust types an argument block may hold.
pub trait Field {
    const MACHINE: Machine;
    /// The value with these 8 bytes (the ABI test fills blocks with distinct patterns).
    fn from_bits(bits: u64) -> Self;
}

impl Field for u64 {
    const MACHINE: Machine = Machine::I64;
    fn from_bits(bits: u64) -> Self {
        bits
    }
}
impl Field for i64 {
    const MACHINE: Machine = Machine::I64;
    fn from_bits(bits: u64) -> Self {
        bits as i64
    }
}
impl Field for f64 {
    const MACHINE: Machine = Machine::F64;
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}
impl<T> Field for *const T {
    const MACHINE: Machine = Machine::Ptr;
    fn from_bits(bits: u64) -> Self {
        bits as usize as *const T
    }
}
impl<T> Field for *mut T {
    const MACHINE: Machine = Machine::Ptr;
    fn from_bits(bits: u64) -> Self {
        bits as usize as *mut T
    }
}

/// What every argument block offers generically (the ABI test runs over all of them).
pub trait ArgBlock: Sized {
    /// Field names with their offsets, in declaration order.
    fn layout() -> Vec<(&'static str, usize)>;
    /// A block whose field number `k` (declaration order) holds the 8 bytes `bits(k)`.
    fn from_field_bits(bits: impl Fn(usize) -> u64) -> Self;
    /// Generated code loading every field of block `index` of the table at `base`, in
    /// declaration order.
    #[cfg(feature = "cranelift")]
    fn load_fields(b: &mut FunctionBuilder, base: Value, index: usize, ptr: Type) -> Vec<Value>;
}

/// A field of an argument block: its byte offset, and the size of the block (the stride of a
/// table of blocks).
pub struct At<T> {
    pub offset: usize,
    pub stride: usize,
    _field: PhantomData<T>,
}

impl<T> Clone for At<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for At<T> {}

impl<T: Field> At<T> {
    pub const fn new(offset: usize, stride: usize) -> At<T> {
        At {
            offset,
            stride,
            _field: PhantomData,
        }
    }

    /// The machine type of the field (`ptr`: the target's pointer type).
    #[cfg(feature = "cranelift")]
    pub fn ty(self, ptr: Type) -> Type {
        match T::MACHINE {
            Machine::I64 => types::I64,
            Machine::F64 => types::F64,
            Machine::Ptr => ptr,
        }
    }

    /// Load the field of the block at `base`.
    #[cfg(feature = "cranelift")]
    pub fn load(self, b: &mut FunctionBuilder, base: Value, ptr: Type) -> Value {
        self.load_in(b, base, 0, ptr)
    }

    /// Load the field of block number `index` of the table at `base`.
    #[cfg(feature = "cranelift")]
    pub fn load_in(self, b: &mut FunctionBuilder, base: Value, index: usize, ptr: Type) -> Value {
        let offset = i32::try_from(index * self.stride + self.offset)
            .expect("argument tables are far smaller than 2 GiB");
        b.ins()
            .load(self.ty(ptr), MemFlagsData::trusted(), base, offset)
    }
}

/// Declares a `repr(C)` argument block `$name`, its field table `$at` (`$name::AT`) and the
/// loaded values `$values` (`$values::load`: every field, in declaration order).
macro_rules! arg_block {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($at:ident, $values:ident) {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        #[doc = concat!("Where each field of `", stringify!($name), "` lies (`", stringify!($name), "::AT`).")]
        #[derive(Clone, Copy)]
        pub struct $at {
            $( pub $field: $crate::codegen::abi::At<$ty>, )*
        }

        #[doc = concat!("Every field of a `", stringify!($name), "`, loaded by generated code.")]
        #[cfg(feature = "cranelift")]
        #[derive(Clone, Copy)]
        #[allow(dead_code)]
        pub(crate) struct $values {
            $( pub $field: cranelift_codegen::ir::Value, )*
        }

        impl $name {
            pub const AT: $at = $at {
                $( $field: $crate::codegen::abi::At::new(
                    std::mem::offset_of!($name, $field),
                    std::mem::size_of::<$name>(),
                ), )*
            };

        }

        impl $crate::codegen::abi::ArgBlock for $name {
            fn layout() -> Vec<(&'static str, usize)> {
                vec![$( (stringify!($field), std::mem::offset_of!($name, $field)), )*]
            }

            #[allow(unused_assignments)]
            fn from_field_bits(bits: impl Fn(usize) -> u64) -> $name {
                let mut k = 0;
                $name {
                    $( $field: {
                        let v = <$ty as $crate::codegen::abi::Field>::from_bits(bits(k));
                        k += 1;
                        v
                    }, )*
                }
            }

            #[cfg(feature = "cranelift")]
            fn load_fields(
                b: &mut cranelift_frontend::FunctionBuilder,
                base: cranelift_codegen::ir::Value,
                index: usize,
                ptr: cranelift_codegen::ir::Type,
            ) -> Vec<cranelift_codegen::ir::Value> {
                vec![$( $name::AT.$field.load_in(b, base, index, ptr), )*]
            }
        }

        #[cfg(feature = "cranelift")]
        impl $values {
            /// Load every field of the block at `base` (unused loads are removed by the
            /// optimiser).
            #[allow(dead_code)]
            pub(crate) fn load(
                b: &mut cranelift_frontend::FunctionBuilder,
                base: cranelift_codegen::ir::Value,
                ptr: cranelift_codegen::ir::Type,
            ) -> $values {
                $values {
                    $( $field: $name::AT.$field.load(b, base, ptr), )*
                }
            }
        }
    };
}

arg_block! {
    /// One input column of an expression or fused kernel.
    pub struct InputArg (InputArgAt, InputArgValues) {
        pub ptr: *const f64,
        pub index: *const u32,
        pub offset: i64,
    }
}

arg_block! {
    /// The argument block of an expression kernel.
    pub struct KernelArgs (KernelArgsAt, KernelArgsValues) {
        /// Number of elements evaluated.
        pub n: u64,
        /// Element indices (ascending), or null for `0..n`.
        pub elems: *const u32,
        /// `n` outputs.
        pub out: *mut f64,
        pub inputs: *const InputArg,
        /// Endpoint indices of each synapse (synapse evaluation) or null (cells).
        pub pre_idx: *const u32,
        pub post_idx: *const u32,
        pub t: f64,
        pub step: u64,
        /// High half of the random element coordinate: `node key << 32`.
        pub node_key: u64,
        pub seed: u64,
        /// Number of elements of the node (`N`).
        pub size: u64,
    }
}

arg_block! {
    /// The argument block of a fused kernel.
    pub struct FusedArgs (FusedArgsAt, FusedArgsValues) {
        /// Number of elements of the node (`N`).
        pub n: u64,
        /// The elements this call updates: `first..end` (`end <= n`; a thread's share).
        pub first: u64,
        pub end: u64,
        /// One pointer per state column (`FusedKey::state_vars`), updated in place.
        pub state: *const *mut f64,
        /// Per element: the first step at which it is no longer refractory (below 2^63).
        pub ref_until: *const u64,
        pub step: u64,
        pub inputs: *const InputArg,
        /// Output: indices of the elements that spiked, ascending (capacity `end - first`).
        pub spikes: *mut u32,
        pub t: f64,
        pub node_key: u64,
        pub seed: u64,
        /// Each shared value twice, 16-byte aligned (`PairLayout`).
        pub pairs: *const Pair,
    }
}

arg_block! {
    /// One part of a synapse endpoint as generated code sees it: endpoint index `j`, from the
    /// previous part's `end` up to this `end`, lives at `base[(j + bias) * stride]` (`stride` 0
    /// for a value shared by the whole part).
    pub struct PartArg (PartArgAt, PartArgValues) {
        pub base: *mut f64,
        pub bias: i64,
        pub stride: i64,
        pub end: u64,
    }
}

arg_block! {
    /// One column of a delivery kernel: a shared value or a per-synapse column (`ptr`), or the
    /// parts of an endpoint variable (`parts`).
    pub struct ColumnArg (ColumnArgAt, ColumnArgValues) {
        pub ptr: *mut f64,
        pub parts: *const PartArg,
    }
}

arg_block! {
    /// The argument block of a delivery kernel.
    pub struct DeliveryArgs (DeliveryArgsAt, DeliveryArgsValues) {
        /// Number of due synapses (rows mode: of spiking sources).
        pub n: u64,
        /// Due synapse indices, ascending (rows mode: spiking source endpoint indices, ascending).
        pub due: *const u32,
        /// One per `delivery_columns(..)` entry.
        pub columns: *const ColumnArg,
        pub pre_idx: *const u32,
        pub post_idx: *const u32,
        pub t: f64,
        pub step: u64,
        /// High half of the random element coordinate: `node key << 32`.
        pub node_key: u64,
        pub seed: u64,
        /// Number of synapses of the projection (cells of the population).
        pub size: u64,
        /// `n` values of room for statements that must compute before they write (rows: one
        /// per synapse of the rows).
        pub scratch: *mut f64,
        /// Rows mode: the CSR row pointers of the projection (`n_pre + 1` entries).
        pub row_ptr: *const u32,
        /// Runs mode (rows whose post indices are consecutive): the post index of each row's
        /// first synapse (`n_pre` entries); the post indices are not read.
        pub row_first: *const u32,
        /// Runs mode: only the synapses whose post index `j` has `post_from <= j < post_to`
        /// (a thread's share of the post elements).
        pub post_from: i64,
        pub post_to: i64,
    }
}

/// A shared value twice, as an `f64x2` (or `i64x2`) lane pair in memory.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pair(pub [u64; 2]);

impl Pair {
    pub fn f64(x: f64) -> Pair {
        Pair([x.to_bits(); 2])
    }
}

/// The generated functions' signatures.
pub type KernelFn = unsafe extern "C" fn(*const KernelArgs);
/// Returns the number of spikes written.
pub type FusedFn = unsafe extern "C" fn(*const FusedArgs) -> u64;

/// The version of the kernel ABI (the argument blocks' fields and their order). A native
/// runner's object file records the version its kernels were generated for, and the runner
/// library refuses another one (`runner/src/lib.rs`) instead of calling them with blocks of
/// another shape. `the_abi_version_follows_the_blocks` fails when a block changes and the
/// version does not.
pub const KERNEL_ABI_VERSION: u64 = 3;

/// Every argument block's fields in order: what `KERNEL_ABI_VERSION` stands for.
pub fn abi_signature() -> String {
    [
        ("KernelArgs", KernelArgs::layout()),
        ("FusedArgs", FusedArgs::layout()),
        ("DeliveryArgs", DeliveryArgs::layout()),
        ("InputArg", InputArg::layout()),
        ("PartArg", PartArg::layout()),
        ("ColumnArg", ColumnArg::layout()),
    ]
    .iter()
    .map(|(name, fields)| {
        let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        format!("{name}({})", names.join(","))
    })
    .collect::<Vec<_>>()
    .join(";")
}
pub type DeliveryFn = unsafe extern "C" fn(*const DeliveryArgs);

#[cfg(all(test, feature = "cranelift"))]
mod tests {
    use super::*;
    use cranelift_codegen::ir::AbiParam;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_frontend::FunctionBuilderContext;
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::{default_libcall_names, Linkage, Module};

    /// Distinct 8-byte patterns, one per field (pointers as integers, floats by their bits).
    fn pattern(k: usize) -> u64 {
        0x0101_0101_0101_0101u64.wrapping_mul(k as u64 + 1) ^ 0x8000_0000_0000_0003
    }

    /// Generated code reads back, through `B::AT`, the fields Rust wrote into entry `index` of
    /// a table of two blocks: compiles `fn(table, out)` storing every loaded field's 8 bytes
    /// to `out` in declaration order, runs it, and returns `out`.
    fn read_back<B: ArgBlock>(index: usize) -> Vec<u64> {
        let table = [
            B::from_field_bits(pattern),
            B::from_field_bits(|k| pattern(k + 100)),
        ];
        let count = B::layout().len();
        let mut flags = settings::builder();
        flags.set("enable_verifier", "true").unwrap();
        let isa = cranelift_native::builder()
            .unwrap()
            .finish(settings::Flags::new(flags))
            .unwrap();
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let ptr = module.target_config().pointer_type();
        let mut ctx = module.make_context();
        ctx.func.signature.params.push(AbiParam::new(ptr));
        ctx.func.signature.params.push(AbiParam::new(ptr));
        let mut fctx = FunctionBuilderContext::new();
        {
            let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let (base, out) = (b.block_params(entry)[0], b.block_params(entry)[1]);
            let values = B::load_fields(&mut b, base, index, ptr);
            for (k, v) in values.into_iter().enumerate() {
                b.ins().store(MemFlagsData::trusted(), v, out, 8 * k as i32);
            }
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        let id = module
            .declare_function("probe", Linkage::Local, &ctx.func.signature)
            .unwrap();
        module.define_function(id, &mut ctx).unwrap();
        module.finalize_definitions().unwrap();
        let code = module.get_finalized_function(id);
        // SAFETY: `probe` was defined with two pointer parameters and no result.
        let f = unsafe {
            std::mem::transmute::<*const u8, unsafe extern "C" fn(*const u8, *mut u64)>(code)
        };
        let mut out = vec![0u64; count];
        // SAFETY: the probe reads the fields of entry `index` < 2 of `table` and writes one
        // value per field to `out`.
        unsafe { f(table.as_ptr() as *const u8, out.as_mut_ptr()) };
        // SAFETY: the module owns the code; nothing runs it after this.
        unsafe { module.free_memory() };
        out
    }

    fn loads_back<B: ArgBlock>() {
        for (index, shift) in [(0, 0), (1, 100)] {
            let want: Vec<u64> = (0..B::layout().len()).map(|k| pattern(k + shift)).collect();
            assert_eq!(
                read_back::<B>(index),
                want,
                "{} entry {index}",
                std::any::type_name::<B>()
            );
        }
    }

    /// Every block: filled by Rust with a distinct value per field, read back field by field
    /// by generated code through `Block::AT` (as kernels load them), alone and as the second
    /// entry of a table.
    #[test]
    fn every_field_loads_back() {
        loads_back::<KernelArgs>();
        loads_back::<FusedArgs>();
        loads_back::<DeliveryArgs>();
        loads_back::<InputArg>();
        loads_back::<PartArg>();
        loads_back::<ColumnArg>();
    }

    /// A change to any block needs a new `KERNEL_ABI_VERSION` (then update both here).
    #[test]
    fn the_abi_version_follows_the_blocks() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in abi_signature().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(
            (KERNEL_ABI_VERSION, h),
            (3, 12747975071970096792),
            "the blocks are {}",
            abi_signature()
        );
    }

    /// The layouts are what C callers of a native runner's kernels see: 8-byte fields back to
    /// back, in declaration order.
    #[test]
    fn blocks_are_packed_in_declaration_order() {
        for layout in [
            KernelArgs::layout(),
            FusedArgs::layout(),
            DeliveryArgs::layout(),
            InputArg::layout(),
            PartArg::layout(),
            ColumnArg::layout(),
        ] {
            for (k, (name, offset)) in layout.iter().enumerate() {
                assert_eq!(*offset, 8 * k, "field `{name}`");
            }
        }
        assert_eq!(std::mem::size_of::<Pair>(), 16);
        assert_eq!(std::mem::align_of::<Pair>(), 16);
    }
}
