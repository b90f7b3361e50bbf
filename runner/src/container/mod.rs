//! Containers: records on disk, root file systems, and the lifecycle through
//! the monitor (`vigil::client`), shared by the container commands in `cli/`.

pub mod control;
pub mod create;
pub mod defaults;
pub mod etc;
pub mod exec;
pub mod health;
pub mod image;
pub mod lifecycle;
pub mod record;
pub mod rootfs;
pub mod runtime;
pub mod session;
pub mod stats;
pub mod store;
pub mod usage;

pub use create::CreateRequest;
pub use lifecycle::Engine;
pub use record::{Record, Status};
