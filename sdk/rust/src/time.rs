//! The host's clock and the tick timer.

use crate::{check, sys, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The host's wall clock (`proxy_get_current_time_nanoseconds`).
pub fn now() -> SystemTime {
    let mut ns = 0u64;
    unsafe { sys::proxy_get_current_time_nanoseconds(&mut ns) };
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Nanoseconds since the Unix epoch, as the host gives them.
pub fn now_nanos() -> u64 {
    let mut ns = 0u64;
    unsafe { sys::proxy_get_current_time_nanoseconds(&mut ns) };
    ns
}

/// Calls `RootContext::on_tick` every `period` (at least 1 ms; zero stops
/// the timer), in each VM of the plugin's pool.
pub fn set_tick_period(period: Duration) -> Result<()> {
    let ms = period.as_millis().min(u32::MAX as u128) as u32;
    check(unsafe { sys::proxy_set_tick_period_milliseconds(ms) })
}
