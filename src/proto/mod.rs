//! Wire formats between an engine and the monitor.

pub mod attach;
pub mod ctl;
pub mod exit;
pub mod health;
pub mod sync;
