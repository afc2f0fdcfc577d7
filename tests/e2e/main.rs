//! End-to-end tests of Aduana: the warehouse on real Parquet files, the
//! generator's ground truth, the `aduana` binary as a process, and real
//! clients (pyarrow) and servers (an S3-compatible store) where named.
//!
//! One test binary for the whole crate: each binary links all of
//! DataFusion, so more of them cost minutes of link time.

mod cli;
mod cluster;
mod dashboard;
mod flight;
mod fuzz;
mod hosts;
mod join_order;
mod learned;
mod model;
mod python;
mod refresh;
mod refresh_plan;
mod reports;
mod selection;
mod shell;
mod support;
mod synth;
mod warehouse;
