//! Safe file operations inside a directory tree whose contents someone else
//! controls (an image layer being unpacked, a container's root file system):
//! paths are resolved one component at a time from a directory fd, symlinks
//! as if the tree's top were `/`, so nothing can lead outside it.
//!
//! The unpacker (`image::unpack`), the image readers and the rootless setup
//! (`rootless`) all use this module; it depends on nothing else in the crate.

mod root;
pub mod sys;

pub use root::{clean, clear_dir, display, remove_all, DirMaker, InPath, Root};
