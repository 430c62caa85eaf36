//! TiSpark's telemetry as a native library for the Spark driver.
//!
//! - [`conf`]: which Spark conf keys are read, the on/off decision, typed values.
//! - [`report`]: the wire schema, field for field TiSpark's.
//! - [`host_facts`]: the `hardware` block, from `sysinfo`.
//! - [`files`]: bounded reads of regular files, private writes, private directories.
//! - [`log_line`]: what may go into a log line (control characters escaped).
//! - [`state`]: the host's state directory and track id.
//! - [`audit`]: the record of every report delivered, kept in the state directory.
//! - [`tidb`]: the TiDB version, asked of PD.
//! - [`sink`]: delivery, over HTTP(S) or to a local file.
//! - [`driver`]: build, log, deliver and audit one report on the calling thread;
//!   also the report `preview` of the command-line tool (`src/bin/tispark-telemetry/`).
//! - `jni_bridge`: the JNI entry points the Java side calls (on its sender
//!   thread, once per class loader, until the JVM has reported), and the log bridge.
//!
//! The driver thread itself never enters this library: `NativeTelemetry.report`
//! decides "certainly off" in Java, and otherwise starts the sender thread,
//! which loads the library; JVM shutdown waits for that thread at most the
//! flush bound (2 s by default).

pub mod audit;
pub mod conf;
pub mod driver;
pub mod files;
pub mod host_facts;
mod jni_bridge;
pub mod log_line;
pub mod report;
pub mod sink;
pub mod state;
pub mod tidb;
