//! Metrics (`proxy_define_metric` and friends), exported by Wedge on
//! `/metrics` as `wedge_<name>{plugin="<plugin name>"}`.

use crate::{check, sys, Result};

/// A metric this plugin defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric(u32);

/// A `proxy_metric_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 0: only goes up.
    Counter = 0,
    /// 1: goes up and down.
    Gauge = 1,
    /// 2: observations in Envoy's default buckets.
    Histogram = 2,
}

impl Metric {
    /// Defines (or finds again) metric `name` of `kind`. BAD_ARGUMENT for an
    /// empty name, one over 256 bytes, or a kind clash.
    pub fn define(kind: Kind, name: &str) -> Result<Metric> {
        let mut id = 0u32;
        check(unsafe { sys::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
        Ok(Metric(id))
    }

    /// Adds `delta` to a counter (`delta` >= 0) or gauge.
    pub fn increment(self, delta: i64) -> Result<()> {
        check(unsafe { sys::proxy_increment_metric(self.0, delta) })
    }

    /// Sets a gauge, raises a counter to `value`, or observes `value` in a
    /// histogram.
    pub fn record(self, value: u64) -> Result<()> {
        check(unsafe { sys::proxy_record_metric(self.0, value) })
    }

    /// A counter's or gauge's value.
    pub fn value(self) -> Result<u64> {
        let mut v = 0u64;
        check(unsafe { sys::proxy_get_metric(self.0, &mut v) })?;
        Ok(v)
    }
}
