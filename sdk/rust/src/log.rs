//! Logging to Wedge's error log (`proxy_log`). Records carry the plugin's
//! name and, inside a request, the request id. The levels map to slog's as
//! `sdk/README.md` ("Host calls") says.
//!
//! The macros [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn), [`error!`](crate::error)
//! take `format!` arguments and skip formatting below the host's level.

use crate::{check, sys, Result};

/// A `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// 0, slog Debug-4.
    Trace = 0,
    /// 1, slog Debug.
    Debug = 1,
    /// 2, slog Info.
    Info = 2,
    /// 3, slog Warn.
    Warn = 3,
    /// 4, slog Error.
    Error = 4,
    /// 5, slog Error+4.
    Critical = 5,
}

/// Logs `msg` at `level`.
pub fn log(level: Level, msg: &str) -> Result<()> {
    check(unsafe { sys::proxy_log(level as u32, msg.as_ptr(), msg.len()) })
}

/// The lowest level the host records (`proxy_get_log_level`); Trace when
/// the host does not say.
pub fn level() -> Level {
    let mut n = 0u32;
    if unsafe { sys::proxy_get_log_level(&mut n) } != 0 {
        return Level::Trace;
    }
    match n {
        0 => Level::Trace,
        1 => Level::Debug,
        2 => Level::Info,
        3 => Level::Warn,
        4 => Level::Error,
        _ => Level::Critical,
    }
}

/// Whether a record at `level` would be kept.
pub fn enabled(level: Level) -> bool {
    level >= self::level()
}

#[doc(hidden)]
pub fn log_fmt(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let _ = log(level, &args.to_string());
    }
}

/// Logs at trace level, with `format!` arguments.
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::log_fmt($crate::log::Level::Trace, format_args!($($t)*)) } }
/// Logs at debug level, with `format!` arguments.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log_fmt($crate::log::Level::Debug, format_args!($($t)*)) } }
/// Logs at info level, with `format!` arguments.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log_fmt($crate::log::Level::Info, format_args!($($t)*)) } }
/// Logs at warn level, with `format!` arguments.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log_fmt($crate::log::Level::Warn, format_args!($($t)*)) } }
/// Logs at error level, with `format!` arguments.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log_fmt($crate::log::Level::Error, format_args!($($t)*)) } }
