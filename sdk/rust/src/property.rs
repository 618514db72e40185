//! Properties (`proxy_get_property`, `proxy_set_property`): Envoy's
//! attributes that Wedge serves and Wedge's own `wedge.*`, listed with
//! their types and phases in `sdk/README.md` ("Properties").
//!
//! A path is given as its segments (`&["request", "url_path"]`), sent
//! joined by NUL bytes as the other SDKs do, so a segment may hold a dot
//! (`&["request", "headers", "x.y"]`). Values are serialized the Envoy way:
//! strings as their bytes, ints as 8 bytes little-endian, bools as one
//! byte, timestamps and durations as int nanoseconds, maps as
//! [`crate::map`].

use crate::{check, lossy, sys, Result, Status};

fn join(path: &[&str]) -> Vec<u8> {
    let mut p = Vec::with_capacity(path.iter().map(|s| s.len() + 1).sum());
    for (i, s) in path.iter().enumerate() {
        if i > 0 {
            p.push(0);
        }
        p.extend_from_slice(s.as_bytes());
    }
    p
}

/// The serialized value of property `path`; `None` when it has no value
/// here (NOT_FOUND). An empty string is `Some(vec![])`.
pub fn get(path: &[&str]) -> Result<Option<Vec<u8>>> {
    let p = join(path);
    crate::get_bytes(|d, l| unsafe { sys::proxy_get_property(p.as_ptr(), p.len(), d, l) })
}

/// A string property, invalid UTF-8 replaced by U+FFFD.
pub fn get_string(path: &[&str]) -> Result<Option<String>> {
    Ok(get(path)?.map(lossy))
}

/// An int, timestamp or duration property; SERIALIZATION_FAILURE when the
/// value is not 8 bytes.
pub fn get_int(path: &[&str]) -> Result<Option<i64>> {
    match get(path)? {
        None => Ok(None),
        Some(v) if v.len() == 8 => Ok(Some(i64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]))),
        Some(_) => Err(Status::SerializationFailure),
    }
}

/// Sets property `path` to `value` for the rest of the request (later
/// phases and later plugins read it back). BAD_ARGUMENT for Envoy's
/// read-only attributes; NOT_FOUND outside a request's context.
pub fn set(path: &[&str], value: &[u8]) -> Result<()> {
    let p = join(path);
    check(unsafe { sys::proxy_set_property(p.as_ptr(), p.len(), value.as_ptr(), value.len()) })
}

/// `wedge.upstream`: the upstream pool the request goes to
/// (`default_upstream` until a plugin sets it).
pub fn upstream() -> Result<Option<String>> {
    get_string(&["wedge", "upstream"])
}

/// Sends the request to the pool `name` (a name under `upstreams:`; an
/// unknown name fails the request with 500). Effective only in
/// `on_request_headers`.
pub fn set_upstream(name: &str) -> Result<()> {
    set(&["wedge", "upstream"], name.as_bytes())
}

/// `wedge.static`: the static mount prefix a plugin chose, "" by default.
pub fn static_mount() -> Result<Option<String>> {
    get_string(&["wedge", "static"])
}

/// Serves the request from the static mount with prefix `prefix` instead
/// of going upstream. Effective only in `on_request_headers`.
pub fn set_static_mount(prefix: &str) -> Result<()> {
    set(&["wedge", "static"], prefix.as_bytes())
}

/// `source.address`: the client's `ip:port` (an IPv6 address in brackets).
pub fn source_address() -> Result<Option<String>> {
    get_string(&["source", "address"])
}

/// The client's IP address without the port, from `source.address`.
pub fn source_ip() -> Result<Option<String>> {
    Ok(source_address()?.map(|a| strip_port(&a).to_string()))
}

/// `ip:port` or `[ip6]:port` without the port and brackets.
fn strip_port(addr: &str) -> &str {
    match addr.rfind(':') {
        Some(i) if !addr[..i].contains(':') || addr.starts_with('[') => addr[..i].trim_start_matches('[').trim_end_matches(']'),
        _ => addr,
    }
}

/// `request.url_path`: the request path without the query.
pub fn request_url_path() -> Result<Option<String>> {
    get_string(&["request", "url_path"])
}

/// `request.path`: the request-target, query included.
pub fn request_path() -> Result<Option<String>> {
    get_string(&["request", "path"])
}

/// `request.method`.
pub fn request_method() -> Result<Option<String>> {
    get_string(&["request", "method"])
}

/// `request.host`: the Host (`:authority`).
pub fn request_host() -> Result<Option<String>> {
    get_string(&["request", "host"])
}

/// `request.id`: the client's X-Request-Id, else the id in Wedge's logs.
pub fn request_id() -> Result<Option<String>> {
    get_string(&["request", "id"])
}

/// `response.code`: the response status, in response phases.
pub fn response_code() -> Result<Option<i64>> {
    get_int(&["response", "code"])
}

/// `plugin_name`: `name:` in wedge.yaml.
pub fn plugin_name() -> Result<Option<String>> {
    get_string(&["plugin_name"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_segments() {
        assert_eq!(join(&["request", "headers", "x.y"]), b"request\0headers\0x.y");
        assert_eq!(join(&["plugin_name"]), b"plugin_name");
    }

    #[test]
    fn strip_ports() {
        for (addr, ip) in [("127.0.0.2:4567", "127.0.0.2"), ("[::1]:80", "::1"), ("[2001:db8::1]:443", "2001:db8::1"), ("::1", "::1"), ("host", "host")] {
            assert_eq!(strip_port(addr), ip, "{}", addr);
        }
    }
}
