//! The names the Java side, this library and the scripts share. They are
//! defined once, in `java/src/com/pingcap/tispark/telemetry/Names.java`;
//! `build.rs` generates these constants from it.

include!(concat!(env!("OUT_DIR"), "/names.rs"));
