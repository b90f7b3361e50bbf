//! Log record formats written by the monitor and read by engines.

pub mod k8s;
pub mod timestamp;
