//! The collector: the receiving end of the reports, for a team that runs its
//! own (`tispark-telemetry collect`, `fleet`, `export`; feature `cli`, never
//! in the jar's library). docs/collector.md says what it answers, its limits
//! and how it is protected.
//!
//! - [`server`]: the HTTP server (`collect`): every connection taken, each
//!   report stored before it is answered; [`stalls`]: what it bounds so that
//!   no client can starve it.
//! - [`intake`]: what it accepts: one report of exactly the library's schema.
//! - [`store`]: its SQLite database: checked like the library's state, bounded
//!   in size, one writer thread committing in batches.
//! - [`mysql_store`]: the same on a MySQL-protocol server (TiDB), which
//!   several collectors may share.
//! - [`fleet`]: the summaries (`fleet`, `fleet --json`) and `export`.
//! - [`token`]: `--token-file`, so that only the fleet may write.
//! - [`page`]: the fleet page (`GET /` on `--ui`), from [`fleet`]'s counts.
//! - [`metrics`]: `GET /metrics` on `--ui`, in Prometheus' text format.

pub mod fleet;
pub mod intake;
pub mod metrics;
pub mod mysql_store;
pub mod page;
pub mod server;
pub mod sqlite_store;
pub mod stalls;
pub mod store;
pub mod token;
