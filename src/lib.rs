pub mod proto; pub mod logfmt;
