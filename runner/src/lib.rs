//! The library `neurograph build` links a runner's object file against: the C `main` of the
//! executable, which reads what the object embeds (kernel table, spec text, build
//! information; see `neurograph::native`) and runs `neurograph::cli::runner_main`.

use std::ffi::c_int;
use std::sync::Arc;

use neurograph::compiler::codegen::KernelTable;

/// One kernel table entry as `ObjectCodegen::finish` writes it.
#[repr(C)]
struct Entry {
    key: *const u8,
    key_len: u64,
    func: *const u8,
}

extern "C" {
    static ng_kernel_table: Entry;
    static ng_kernel_count: u64;
    static ng_runner_spec: u8;
    static ng_runner_spec_len: u64;
    static ng_runner_spec_path: u8;
    static ng_runner_spec_path_len: u64;
    static ng_runner_info: u8;
    static ng_runner_info_len: u64;
    static ng_runner_fingerprint: [u8; 8];
    static ng_runner_abi: [u8; 8];
}

/// The embedded text at `start` (`len` bytes).
///
/// # Safety
/// `start` must point at `len` bytes that live for the whole program.
unsafe fn text(start: *const u8, len: u64) -> &'static str {
    // SAFETY: by the caller; `ObjectCodegen` wrote UTF-8 (spec text, a path, ASCII info) —
    // checked anyway.
    let bytes = unsafe { std::slice::from_raw_parts(start, len as usize) };
    std::str::from_utf8(bytes).unwrap_or("")
}

/// The runner's entry point (called by the C start-up code; arguments are read through
/// `std::env`).
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const u8) -> c_int {
    // SAFETY: the object file defines `ng_runner_abi` as 8 bytes (`neurograph::native`).
    let abi = u64::from_le_bytes(unsafe { ng_runner_abi });
    let ours = neurograph::compiler::codegen::abi::KERNEL_ABI_VERSION;
    if abi != ours {
        eprintln!(
            "error: this runner's kernels were generated for kernel ABI {abi}, its runtime \
             library has ABI {ours}: build the runner again with `neurograph build`"
        );
        return 2;
    }
    // SAFETY: the object file linked with this library defines these symbols as
    // `ObjectCodegen::finish` documents: `ng_kernel_count` entries of (key address, key
    // length, function address), and each blob followed by its length; all are static data
    // of the executable.
    let (entries, spec, spec_path, info, fingerprint) = unsafe {
        let table = std::slice::from_raw_parts(
            std::ptr::addr_of!(ng_kernel_table),
            ng_kernel_count as usize,
        );
        let entries: Vec<(String, *const u8)> = table
            .iter()
            .map(|e| (text(e.key, e.key_len).to_string(), e.func))
            .collect();
        (
            entries,
            text(std::ptr::addr_of!(ng_runner_spec), ng_runner_spec_len),
            text(
                std::ptr::addr_of!(ng_runner_spec_path),
                ng_runner_spec_path_len,
            ),
            text(std::ptr::addr_of!(ng_runner_info), ng_runner_info_len),
            u64::from_le_bytes(ng_runner_fingerprint),
        )
    };
    // SAFETY: the table's functions were generated for this spec's model by `ObjectCodegen`,
    // with the signatures their key kinds give, and are code of this executable.
    let kernels = Arc::new(unsafe { KernelTable::new(entries) });
    c_int::from(neurograph::cli::runner_main(neurograph::cli::Embedded {
        spec,
        spec_path,
        info,
        kernels,
        fingerprint,
    }))
}
