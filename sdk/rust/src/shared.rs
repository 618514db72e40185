//! Shared data and shared queues. In Wedge both are host-wide: every VM of
//! every plugin (and the next configuration after a reload) sees the same
//! keys, so prefix keys with the plugin's name. Shared data has no delete;
//! bound the key space (at most 64 MiB in all).

use crate::{check, found, sys, Result, Status};

/// The value of `key` and its CAS (compare-and-swap token), `None` when
/// the key was never set.
pub fn get(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let (mut ptr, mut len, mut cas) = (std::ptr::null_mut(), 0usize, 0u32);
    if !found(unsafe { sys::proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut len, &mut cas) })? {
        return Ok(None);
    }
    Ok(Some((unsafe { crate::take(ptr, len) }, cas)))
}

/// Stores `value` under `key`. With `cas` 0 it always writes; otherwise
/// only if `cas` is the key's current CAS (from [`get`]), else
/// `Err(Status::CasMismatch)`: read again and retry. A key not yet set
/// accepts any CAS.
pub fn set(key: &str, value: &[u8], cas: u32) -> Result<()> {
    check(unsafe { sys::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Runs `update` on the current value of `key` (`None` when unset) and
/// stores what it returns with the value's CAS, retrying on CAS_MISMATCH
/// up to `attempts` times. Returns the value stored; CAS_MISMATCH when
/// every attempt lost a race.
pub fn update(key: &str, attempts: usize, mut update: impl FnMut(Option<&[u8]>) -> Vec<u8>) -> Result<Vec<u8>> {
    for _ in 0..attempts {
        let cur = get(key)?;
        let (val, cas) = match &cur {
            Some((v, cas)) => (Some(&v[..]), *cas),
            None => (None, 0),
        };
        let next = update(val);
        match set(key, &next, cas) {
            Ok(()) => return Ok(next),
            Err(Status::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Status::CasMismatch)
}

/// Opens or creates the queue `name` in the namespace of this plugin's
/// `vm_id`; items enqueued to it wake this VM with
/// `RootContext::on_queue_ready`. Returns the queue id.
pub fn register_queue(name: &str) -> Result<u32> {
    let mut id = 0u32;
    check(unsafe { sys::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// The id of queue `name` registered under `vm_id`, `None` when none is.
pub fn resolve_queue(vm_id: &str, name: &str) -> Result<Option<u32>> {
    let mut id = 0u32;
    if !found(unsafe { sys::proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id) })? {
        return Ok(None);
    }
    Ok(Some(id))
}

/// Appends a copy of `data` to queue `id`.
pub fn enqueue(id: u32, data: &[u8]) -> Result<()> {
    check(unsafe { sys::proxy_enqueue_shared_queue(id, data.as_ptr(), data.len()) })
}

/// Takes the oldest item of queue `id`, `None` when it is empty.
pub fn dequeue(id: u32) -> Result<Option<Vec<u8>>> {
    let (mut ptr, mut len) = (std::ptr::null_mut(), 0usize);
    match Status::from_code(unsafe { sys::proxy_dequeue_shared_queue(id, &mut ptr, &mut len) }) {
        None => Ok(Some(unsafe { crate::take(ptr, len) })),
        Some(Status::Empty) => Ok(None),
        Some(s) => Err(s),
    }
}
