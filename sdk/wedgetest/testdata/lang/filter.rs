// filter.rs: a proxy-wasm (ABI v0.2.1) filter in Rust against the raw ABI,
// no crates. It logs each request's path, sends /api/ requests to the
// "api" pool (wedge.upstream) and adds x-from-rust: 1 to every request.
//
// Built with Debian bookworm's rustc 1.63 and its wasm32 standard library
// (apt-get install rustc libstd-rust-dev-wasm32):
//
//	rustc --edition 2021 --target wasm32-wasi --crate-type cdylib -C opt-level=s -C strip=symbols -o filter_rust.wasm filter.rs
//
// (rustc 1.78 and later call the target wasm32-wasip1.)
use std::alloc::{alloc, Layout};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, msg: *const u8, len: usize) -> u32;
    fn proxy_get_property(path: *const u8, path_len: usize, value: *mut *mut u8, value_len: *mut usize) -> u32;
    fn proxy_set_property(path: *const u8, path_len: usize, value: *const u8, value_len: usize) -> u32;
    fn proxy_add_header_map_value(map: u32, key: *const u8, key_len: usize, value: *const u8, value_len: usize) -> u32;
}

/// Reads a property; the host allocated it with proxy_on_memory_allocate.
fn property(path: &str) -> Option<Vec<u8>> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0usize);
    if unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut ptr, &mut len) } != 0 {
        return None;
    }
    if len == 0 {
        return Some(Vec::new());
    }
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return std::ptr::NonNull::dangling().as_ptr();
    }
    unsafe { alloc(Layout::from_size_align(size, 1).unwrap()) }
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_id: u32, _parent: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_id: u32, _num_headers: u32, _end_of_stream: u32) -> u32 {
    if let Some(path) = property("request.url_path") {
        unsafe { proxy_log(2, path.as_ptr(), path.len()) };
        if path.starts_with(b"/api/") {
            let (k, v) = ("wedge.upstream", "api");
            unsafe { proxy_set_property(k.as_ptr(), k.len(), v.as_ptr(), v.len()) };
        }
    }
    let (k, v) = ("x-from-rust", "1");
    unsafe { proxy_add_header_map_value(0, k.as_ptr(), k.len(), v.as_ptr(), v.len()) };
    0 // Continue
}
