//! vigil: the protocol between a container engine and its monitor (a conmon 2.2.1
//! compatible `conmon`), shared by the monitor itself, the `vigil` runner and any
//! engine that embeds it.
//!
//! Every byte format that crosses the engine <-> monitor boundary lives here, once:
//!
//! * [`proto::sync`]: JSON lines on `_OCI_SYNCPIPE` / `_OCI_ATTACHPIPE`;
//! * [`proto::attach`]: stream ids and framing on the attach socket;
//! * [`proto::ctl`]: the `ctl` / `winsz` FIFO line grammar;
//! * [`proto::exit`]: exit / oom files (atomic write, read);
//! * [`logfmt::k8s`]: k8s-file (CRI) log records, writer and reader.
//!
//! With the default `client` feature, [`client`] drives a monitor from an engine:
//! spawn, attach, resize, wait for exit, read logs.

#[cfg(feature = "client")]
pub mod client;
pub mod logfmt;
pub mod proto;
