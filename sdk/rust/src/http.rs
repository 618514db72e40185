//! Answering, pausing and resuming requests, and HTTP calls to upstream
//! pools.

use crate::{check, lossy, map, sys, Result};
use std::time::Duration;

/// Answers the request with `status` (100-999; 0 means 200), the fields
/// `headers` (pseudo-fields ignored) and `body`, instead of going upstream
/// (in a request phase) or instead of the upstream's response (in a
/// response phase). The phase ends at once whatever the callback returns.
/// `details` shows as `response.code_details` and in the access log.
pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8], details: &str) -> Result<()> {
    let h = map::serialize(headers);
    check(unsafe {
        sys::proxy_send_local_response(status, details.as_ptr(), details.len(), body.as_ptr(), body.len(), h.as_ptr(), h.len(), -1)
    })
}

/// Resumes a request the plugin paused in a request phase
/// (`proxy_continue_stream(0)`).
pub fn resume_request() -> Result<()> {
    check(unsafe { sys::proxy_continue_stream(0) })
}

/// Resumes a request the plugin paused in a response phase
/// (`proxy_continue_stream(1)`).
pub fn resume_response() -> Result<()> {
    check(unsafe { sys::proxy_continue_stream(1) })
}

/// Ends the exchange without a response: the client connection is closed
/// (`proxy_close_stream(0)`).
pub fn close_request() -> Result<()> {
    check(unsafe { sys::proxy_close_stream(0) })
}

/// Sends an HTTP/1.1 request to the upstream pool named `upstream`
/// (`proxy_http_call`) and returns its token. `headers` must hold
/// `:method`, `:path` and `:authority`; a zero `timeout` means 60 s. The
/// answer comes to `on_http_call_response` of the context that made the
/// call (a stream's context, switched to with `proxy_set_effective_context`,
/// or the root context), with the token.
pub fn dispatch_call(upstream: &str, headers: &[(&str, &str)], body: &[u8], timeout: Duration) -> Result<u32> {
    let h = map::serialize(headers);
    let t = map::serialize::<&str, &str>(&[]);
    let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
    let mut token = 0u32;
    check(unsafe {
        sys::proxy_http_call(upstream.as_ptr(), upstream.len(), h.as_ptr(), h.len(), body.as_ptr(), body.len(), t.as_ptr(), t.len(), ms, &mut token)
    })?;
    crate::context::note_call(token);
    Ok(token)
}

/// In `on_http_call_response`: the call's HTTP status, or 0 and the reason
/// when the call failed (`proxy_get_status`).
pub fn call_status() -> Result<(u32, String)> {
    let mut code = 0u32;
    let msg = crate::get_bytes(|p, l| unsafe { sys::proxy_get_status(&mut code, p, l) })?;
    Ok((code, msg.map(lossy).unwrap_or_default()))
}
