//! Header maps (`proxy_*_header_map_*`). A request map holds the
//! pseudo-fields `:authority`, `:path`, `:method`, `:scheme` then the
//! fields; a response map `:status` then the fields. Names are matched
//! case-insensitively and listed in lower case; `host` is `:authority`.
//! Setting `:path` rewrites the request-target, `:authority` the Host,
//! `:status` the status.
//!
//! Request headers are writable in `on_request_headers` (and while the
//! plugin holds the request paused), response headers in
//! `on_response_headers`; both stay readable until `on_log`.

use crate::{check, lossy, map, sys, Result, Status};

/// A `proxy_map_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Map {
    /// 0: the request's head.
    RequestHeaders = 0,
    /// 2: the response's head.
    ResponseHeaders = 2,
    /// 6: the head of a `proxy_http_call` response, read-only, in
    /// `on_http_call_response`.
    HttpCallResponseHeaders = 6,
}

/// The first value of field `name`, `None` when absent (or when the map is
/// not available now). Invalid UTF-8 is replaced by U+FFFD; see
/// [`get_bytes`] for the raw value.
pub fn get(map: Map, name: &str) -> Result<Option<String>> {
    Ok(get_bytes(map, name)?.map(lossy))
}

/// The first value of field `name` as bytes, `None` when absent.
pub fn get_bytes(map: Map, name: &str) -> Result<Option<Vec<u8>>> {
    crate::get_bytes(|p, l| unsafe { sys::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), p, l) })
}

/// Appends field `name: value` (on a pseudo-field, sets it).
pub fn add(map: Map, name: &str, value: &str) -> Result<()> {
    check(unsafe { sys::proxy_add_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Sets field `name` to `value`: replaces the first, drops the others,
/// appends when absent.
pub fn set(map: Map, name: &str, value: &str) -> Result<()> {
    check(unsafe { sys::proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Removes every field named `name` (pseudo-fields cannot be removed).
pub fn remove(map: Map, name: &str) -> Result<()> {
    check(unsafe { sys::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Every pair of the map, pseudo-fields first, names in lower case
/// (values lossily decoded as in [`get`]). NOT_FOUND (map not available
/// now) is an error here.
pub fn pairs(map: Map) -> Result<Vec<(String, String)>> {
    let data = crate::get_bytes(|p, l| unsafe { sys::proxy_get_header_map_pairs(map as u32, p, l) })?.ok_or(Status::NotFound)?;
    let pairs = map::deserialize(&data).ok_or(Status::SerializationFailure)?;
    Ok(pairs.into_iter().map(|(k, v)| (lossy(k), lossy(v))).collect())
}

/// Replaces every field of the map with `pairs`; pseudo-fields absent from
/// `pairs` keep their values. Nothing changes unless every pair is valid.
pub fn set_pairs(map: Map, pairs: &[(&str, &str)]) -> Result<()> {
    let data = map::serialize(pairs);
    check(unsafe { sys::proxy_set_header_map_pairs(map as u32, data.as_ptr(), data.len()) })
}

/// [`get`] on the request headers.
pub fn request(name: &str) -> Result<Option<String>> {
    get(Map::RequestHeaders, name)
}

/// [`get`] on the response headers.
pub fn response(name: &str) -> Result<Option<String>> {
    get(Map::ResponseHeaders, name)
}
