//! The `vigil` runner: a daemonless, Podman-like container runner built on the
//! `vigil` protocol library and its `conmon`-compatible monitor.
//!
//! The binary (`src/main.rs`) only parses, dispatches and maps errors to exit
//! codes; everything else lives in this library so it can be tested.

pub mod build;
pub mod cli;
pub mod clock;
pub mod config;
pub mod container;
pub mod context;
pub mod error;
pub mod fsroot;
pub mod image;
pub mod interrupt;
pub mod logging;
pub mod network;
pub mod paths;
pub mod registry;
pub mod rootless;
pub mod spec;

pub use context::Context;
pub use error::RunnerError;
pub use paths::Paths;
