//! Images: reading docker-archive, oci-archive and OCI layout inputs,
//! verifying them, and keeping them in vigil's store as content-addressed
//! blobs, shared unpacked layers and image records.
//!
//! Other runner code uses [`store::Store`]: open it, [`store::Store::resolve`]
//! a name or ID to an [`store::ImageRecord`], then use its
//! [`config`](store::ImageRecord::config) and
//! [`layer_dirs`](store::ImageRecord::layer_dirs).

pub mod archive;
pub mod blobcache;
pub mod change;
pub mod compose;
pub mod compress;
pub mod digest;
pub mod layer_tar;
pub mod layout;
pub mod oci;
pub mod progress;
pub mod reference;
pub mod rootfs;
pub mod save;
pub mod source;
pub mod store;
pub mod tmpdir;
pub mod tree_diff;
pub mod unpack;

pub use store::{ImageRecord, Store, StoreError};
