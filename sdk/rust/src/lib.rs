//! Safe Rust bindings for writing [Wedge](../../README.md) plugins: proxy-wasm
//! ABI v0.2.1 filters built for `wasm32-wasi` with nothing but the standard
//! library (Debian's `rustc`, `cargo` and `libstd-rust-dev-wasm32`, offline).
//!
//! A plugin is a `cdylib` that registers its contexts in [`main!`]:
//!
//! ```no_run
//! use wedge::{Action, HttpContext};
//!
//! struct AddHeader;
//!
//! impl HttpContext for AddHeader {
//!     fn on_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
//!         let _ = wedge::headers::add(wedge::headers::Map::RequestHeaders, "x-hello", "rust");
//!         Action::Continue
//!     }
//! }
//!
//! wedge::main! {
//!     wedge::set_http_context(|_context_id| Box::new(AddHeader));
//! }
//! ```
//!
//! The crate exports every callback Wedge calls (`proxy_on_context_create`,
//! `proxy_on_request_headers`, ...) and dispatches them to the
//! [`RootContext`] and [`HttpContext`] objects the plugin's factories make.
//! Host calls are free functions grouped by subject: [`log`], [`headers`],
//! [`buffer`], [`http`], [`property`], [`shared`], [`metrics`], [`time`],
//! [`foreign`]. Each returns [`Result`]; NOT_FOUND becomes `Ok(None)` where
//! "absent" is an ordinary answer. [`json`] parses the plugin configuration
//! (JSON by Wedge's convention) and [`map`] is the proxy-wasm header-map
//! serialization.
//!
//! What Wedge does with each call, and when each is allowed, is in
//! `sdk/README.md` ("Host calls", "Properties"); the ABI is
//! github.com/proxy-wasm/spec, `abi-versions/v0.2.1/README.md`.

#![warn(missing_docs)]

mod sys;

mod context;
pub mod buffer;
pub mod foreign;
pub mod headers;
pub mod http;
pub mod json;
pub mod log;
pub mod map;
pub mod metrics;
pub mod property;
pub mod shared;
pub mod time;

pub use context::{done, set_http_context, set_root_context, HttpContext, RootContext};

use std::fmt;

/// A host call's failure: a `proxy_status_t` other than OK (spec "Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 1, NOT_FOUND: no such value, or not available in this context or phase.
    NotFound,
    /// 2, BAD_ARGUMENT: an argument Wedge refuses (a read-only map, a bad field name, ...).
    BadArgument,
    /// 3, SERIALIZATION_FAILURE.
    SerializationFailure,
    /// 4, PARSE_FAILURE.
    ParseFailure,
    /// 6, INVALID_MEMORY_ACCESS: a pointer outside guest memory, or the allocator failed.
    InvalidMemoryAccess,
    /// 7, EMPTY: a shared queue with no item.
    Empty,
    /// 8, CAS_MISMATCH: shared data changed since it was read.
    CasMismatch,
    /// 10, INTERNAL_FAILURE: a host-side limit or error.
    InternalFailure,
    /// 12, UNIMPLEMENTED: not served by this host (every call, off wasm32).
    Unimplemented,
    /// Any other code.
    Unknown(u32),
}

impl Status {
    /// The status of code `n`; `None` for 0 (OK).
    pub fn from_code(n: u32) -> Option<Status> {
        Some(match n {
            0 => return None,
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            6 => Status::InvalidMemoryAccess,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            10 => Status::InternalFailure,
            12 => Status::Unimplemented,
            n => Status::Unknown(n),
        })
    }

    /// The `proxy_status_t` code.
    pub fn code(self) -> u32 {
        match self {
            Status::NotFound => 1,
            Status::BadArgument => 2,
            Status::SerializationFailure => 3,
            Status::ParseFailure => 4,
            Status::InvalidMemoryAccess => 6,
            Status::Empty => 7,
            Status::CasMismatch => 8,
            Status::InternalFailure => 10,
            Status::Unimplemented => 12,
            Status::Unknown(n) => n,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Status::NotFound => "NOT_FOUND",
            Status::BadArgument => "BAD_ARGUMENT",
            Status::SerializationFailure => "SERIALIZATION_FAILURE",
            Status::ParseFailure => "PARSE_FAILURE",
            Status::InvalidMemoryAccess => "INVALID_MEMORY_ACCESS",
            Status::Empty => "EMPTY",
            Status::CasMismatch => "CAS_MISMATCH",
            Status::InternalFailure => "INTERNAL_FAILURE",
            Status::Unimplemented => "UNIMPLEMENTED",
            Status::Unknown(n) => return write!(f, "proxy status {}", n),
        };
        f.write_str(name)
    }
}

impl std::error::Error for Status {}

/// The result of a host call.
pub type Result<T> = std::result::Result<T, Status>;

/// What a stream callback tells the host (`proxy_action_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 0: go on with the next plugin, phase or upstream.
    Continue,
    /// 1: hold the request until [`http::resume_request`],
    /// [`http::resume_response`] or [`http::send_local_response`] (or
    /// `pause_timeout`). After `send_local_response` the phase ends whatever
    /// is returned.
    Pause,
}

/// Turns a status code into a `Result`.
fn check(n: u32) -> Result<()> {
    match Status::from_code(n) {
        None => Ok(()),
        Some(s) => Err(s),
    }
}

/// Like [`check`], but NOT_FOUND is `Ok(false)`.
fn found(n: u32) -> Result<bool> {
    match Status::from_code(n) {
        None => Ok(true),
        Some(Status::NotFound) => Ok(false),
        Some(s) => Err(s),
    }
}

/// Takes ownership of bytes the host allocated in the guest with
/// `proxy_on_memory_allocate` (align 1, exactly `len` bytes). An empty
/// value comes as (null, 0) and allocates nothing.
///
/// # Safety
/// `ptr` must come from the host for this `len`, once.
unsafe fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    Vec::from_raw_parts(ptr, len, len)
}

/// Calls a host function that returns bytes through (ptr, len) out
/// parameters; NOT_FOUND is `Ok(None)`.
fn get_bytes(f: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0usize);
    if !found(f(&mut ptr, &mut len))? {
        return Ok(None);
    }
    Ok(Some(unsafe { take(ptr, len) }))
}

/// Bytes as a String, invalid UTF-8 replaced by U+FFFD.
fn lossy(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Defines the module's `_initialize` export, which Wedge calls once per VM
/// before any other callback: run the statements given (usually
/// [`set_root_context`] or [`set_http_context`]) there.
///
/// ```no_run
/// # struct Filter; impl wedge::HttpContext for Filter {}
/// wedge::main! {
///     wedge::set_http_context(|_| Box::new(Filter));
/// }
/// ```
#[macro_export]
macro_rules! main {
    ($($body:tt)*) => {
        #[cfg(target_arch = "wasm32")]
        extern "C" {
            fn __wasm_call_ctors();
        }

        /// Runs static constructors, then registers the plugin's contexts.
        #[no_mangle]
        pub extern "C" fn _initialize() {
            #[cfg(target_arch = "wasm32")]
            unsafe {
                __wasm_call_ctors();
            }
            $($body)*
        }
    };
}
