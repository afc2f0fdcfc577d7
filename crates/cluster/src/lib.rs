//! Aduana on Apache Ballista. A plan crosses the wire with only the names
//! of the functions it calls, so a function must be known in three places:
//! the client (which plans), the scheduler (which decodes the client's
//! logical plan and plans stages) and every executor (which decodes and
//! runs tasks). Each of them builds the same session as the in-process
//! engine, from the same warehouse: tables, functions and the risk model.

mod client;
mod codec;
mod compact_views;
mod logging;
mod plan_tables;
mod union_leaves;

use std::net::SocketAddr;
use std::sync::Arc;

use aduana_engine::{EngineOptions, Session};
use aduana_warehouse::Warehouse;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Engine(#[from] aduana_engine::EngineError),
    #[error("{0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

pub type Result<T> = std::result::Result<T, ClusterError>;

pub use client::BallistaConnector;

/// The connector a session runs on a Ballista cluster with.
pub fn connector() -> Arc<dyn aduana_engine::ClusterConnector> {
    Arc::new(BallistaConnector)
}

/// The plan codecs a scheduler or executor serving `session`'s warehouse
/// needs: Ballista's, with Aduana's model-backed functions rebuilt from
/// the model version a plan names.
fn codecs(
    session: &Session,
) -> (
    Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec>,
    Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec>,
) {
    let functions = Arc::new(codec::FunctionResolver::new(
        session.warehouse().location().store.clone(),
        session.model(),
    ));
    (
        Arc::new(codec::LogicalCodec::new(functions.clone())),
        Arc::new(codec::PhysicalCodec::new(functions)),
    )
}

/// Seconds between an executor's heartbeats.
pub const HEARTBEAT_SECONDS: u64 = 5;

/// Opens the in-process session a scheduler or executor serves `warehouse`
/// with (never itself a cluster client).
pub async fn open(warehouse: Warehouse, options: &EngineOptions) -> Result<Session> {
    let options = EngineOptions {
        cluster: None,
        ..options.clone()
    };
    Ok(Session::open(warehouse, &options).await?)
}

/// Runs a scheduler on `addr` until it stops.
///
/// An executor that sends no heartbeat for `executor_timeout_seconds` is
/// taken as dead: its tasks run again elsewhere.
pub async fn run_scheduler(
    addr: SocketAddr,
    session: &Session,
    executor_timeout_seconds: u64,
) -> Result<()> {
    logging::start();
    let state = session.context().state();
    let (logical, physical) = codecs(session);
    // The client's session config (its settings) over the engine's state
    // (its functions, tables and object stores).
    let builder = move |config: SessionConfig| {
        Ok(SessionStateBuilder::new_from_existing(state.clone())
            .with_config(config)
            .with_physical_optimizer_rule(Arc::new(union_leaves::MemoryScansForUnionLeaves))
            .with_physical_optimizer_rule(Arc::new(compact_views::CompactViewsAtExchanges))
            .build())
    };
    let config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        external_host: addr.ip().to_string(),
        bind_port: addr.port(),
        executor_timeout_seconds: executor_timeout_seconds.max(3 * HEARTBEAT_SECONDS),
        expire_dead_executor_interval_seconds: HEARTBEAT_SECONDS,
        override_logical_codec: Some(logical),
        override_physical_codec: Some(physical),
        ..Default::default()
    }
    .with_override_session_builder(Arc::new(builder));
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await?;
    Ok(())
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler_host: String,
    pub scheduler_port: u16,
    pub bind_host: String,
    pub port: u16,
    pub grpc_port: u16,
    /// Where shuffle files go.
    pub work_dir: Option<String>,
    /// Task slots (default: the cores).
    pub slots: Option<usize>,
}

/// Runs an executor until it stops.
pub async fn run_executor(options: ExecutorOptions, session: &Session) -> Result<()> {
    logging::start();
    let state = session.context().state();
    let (logical, physical) = codecs(session);
    let registry = BallistaFunctionRegistry::from(&state);
    let runtime = state.runtime_env().clone();
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(options.bind_host.clone()),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        // A killed executor is noticed in seconds, not minutes.
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        work_dir: options.work_dir.clone(),
        override_function_registry: Some(Arc::new(registry)),
        override_logical_codec: Some(logical),
        override_physical_codec: Some(physical),
        // The engine's runtime: its object stores (s3://) and memory pool.
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| Ok(runtime.clone()))),
        ..Default::default()
    };
    if let Some(slots) = options.slots {
        config.vcores = slots;
    }
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}
