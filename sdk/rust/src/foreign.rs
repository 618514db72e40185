//! Wedge's `wedge_*` host functions, reached through
//! `proxy_call_foreign_function`. None is registered yet: every call
//! answers `Ok(None)` (NOT_FOUND), which a plugin should treat as "this
//! Wedge does not have it".

use crate::sys;
use crate::Result;

/// Calls host function `name` with `args`; `None` when the host has no
/// such function.
pub fn call(name: &str, args: &[u8]) -> Result<Option<Vec<u8>>> {
    crate::get_bytes(|p, l| unsafe { sys::proxy_call_foreign_function(name.as_ptr(), name.len(), args.as_ptr(), args.len(), p, l) })
}
