//! Buffers (`proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`,
//! `proxy_get_buffer_status`): message bodies, the HTTP call response body
//! and the configurations. Wedge buffers whole bodies, so a body callback
//! sees the complete body once; the request body is readable only in
//! `on_request_body`, the response body only in `on_response_body`.

use crate::{check, sys, Result};

/// A `proxy_buffer_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// 0: the request body, in `on_request_body`.
    RequestBody = 0,
    /// 1: the response body, in `on_response_body`.
    ResponseBody = 1,
    /// 4: a `proxy_http_call` response body, in `on_http_call_response`.
    HttpCallResponseBody = 4,
    /// 6: the VM configuration (`vm_config:`, JSON), read-only.
    VmConfiguration = 6,
    /// 7: the plugin configuration (`config:`, JSON), read-only.
    PluginConfiguration = 7,
}

/// Up to `max` bytes of `buf` from byte `start`; `None` when the buffer is
/// not available now.
pub fn get(buf: Buffer, start: usize, max: usize) -> Result<Option<Vec<u8>>> {
    crate::get_bytes(|p, l| unsafe { sys::proxy_get_buffer_bytes(buf as u32, start, max, p, l) })
}

/// The whole of `buf` (empty when it is), `None` when not available now.
pub fn get_all(buf: Buffer) -> Result<Option<Vec<u8>>> {
    match len(buf)? {
        None => Ok(None),
        Some(0) => Ok(Some(Vec::new())),
        Some(n) => get(buf, 0, n),
    }
}

/// The length of `buf` in bytes, `None` when not available now.
pub fn len(buf: Buffer) -> Result<Option<usize>> {
    let (mut n, mut flags) = (0usize, 0u32);
    if !crate::found(unsafe { sys::proxy_get_buffer_status(buf as u32, &mut n, &mut flags) })? {
        return Ok(None);
    }
    Ok(Some(n))
}

/// Replaces `size` bytes of a body at `start` with `data`: `(0, 0)`
/// prepends, `(len, 0)` appends, `(0, len)` replaces everything. Wedge
/// sets Content-Length from the result.
pub fn set(buf: Buffer, start: usize, size: usize, data: &[u8]) -> Result<()> {
    check(unsafe { sys::proxy_set_buffer_bytes(buf as u32, start, size, data.as_ptr(), data.len()) })
}

/// The plugin configuration (`config:` in wedge.yaml, as JSON); empty when
/// none was given.
pub fn plugin_configuration() -> Result<Vec<u8>> {
    Ok(get_all(Buffer::PluginConfiguration)?.unwrap_or_default())
}

/// The VM configuration (`vm_config:`, as JSON); empty when none was given.
pub fn vm_configuration() -> Result<Vec<u8>> {
    Ok(get_all(Buffer::VmConfiguration)?.unwrap_or_default())
}
