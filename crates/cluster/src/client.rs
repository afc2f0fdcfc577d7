//! The client side of a cluster: a session context that plans on the
//! Ballista scheduler, built for the engine through its
//! [`ClusterConnector`](aduana_engine::ClusterConnector).

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use aduana_engine::{ClusterConnector, EngineError};
use aduana_udfs::ModelHandle;
use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::planner::BallistaQueryPlanner;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::logical_expr::{UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::generated::datafusion::LogicalPlanNode;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use object_store::ObjectStore;

use crate::codec::{FunctionResolver, LogicalCodec};

/// Connects sessions to Ballista schedulers.
#[derive(Debug, Default)]
pub struct BallistaConnector;

#[async_trait::async_trait]
impl ClusterConnector for BallistaConnector {
    async fn connect(
        &self,
        url: &str,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
        model: &ModelHandle,
        store: Arc<dyn ObjectStore>,
    ) -> std::result::Result<SessionContext, EngineError> {
        let functions = Arc::new(FunctionResolver::new(store, model));
        remote_context(url, config, runtime, functions).await
    }
}

/// A client context planning on the Ballista scheduler at `url`
/// (`df://host:port`), with `config` and `runtime`; functions and tables are
/// registered on it afterwards (Ballista's upgrade replaces the function
/// set).
async fn remote_context(
    url: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    functions: Arc<FunctionResolver>,
) -> std::result::Result<SessionContext, EngineError> {
    let address = url
        .strip_prefix("df://")
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| {
            EngineError::InvalidOption(format!(
                "--cluster {url:?}: expected df://HOST:PORT (a Ballista scheduler)"
            ))
        })?;
    // Ballista connects on the first query; say now that nothing listens.
    let reachable = address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok());
    if !reachable {
        return Err(EngineError::InvalidOption(format!(
            "--cluster {url}: no Ballista scheduler answers at {address} \
             (start one with `aduana scheduler --warehouse W --bind {address}`)"
        )));
    }
    let codec: Arc<dyn LogicalExtensionCodec> = Arc::new(LogicalCodec::new(functions));
    let ballista = BallistaQueryPlanner::<LogicalPlanNode>::with_extension(
        format!("http://{address}"),
        config.clone().upgrade_for_ballista().ballista_config(),
        codec.clone(),
    );
    // Ballista's adaptive planner is off: with it on, the scheduler spun in
    // its adaptive execution graph without scheduling the refresh job's
    // tasks (a livelock seen here), and returned a report out of order.
    let config = config
        .upgrade_for_ballista()
        .set_bool(
            ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED,
            false,
        )
        .with_ballista_logical_extension_codec(codec)
        .with_ballista_query_planner(Arc::new(ClientOrderPlanner {
            ballista: Arc::new(ballista),
        }));
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    SessionContext::remote_with_state(url, state)
        .await
        .map_err(EngineError::from)
}

/// Ballista's planner with the outermost `ORDER BY` (and the `LIMIT` and
/// projections above it) run in the client over the cluster's result.
///
/// Why: Ballista 55 returned a distributed result out of order (with its
/// adaptive planner on, since turned off): on the `audit_candidates`
/// report the final stage's sort and merge were lost after sort-merge
/// joins and the rows came back in join-key order. The result crosses to
/// the client anyway; sorting it there is exact whatever the planner does.
#[derive(Debug)]
struct ClientOrderPlanner {
    ballista: Arc<BallistaQueryPlanner<LogicalPlanNode>>,
}

#[async_trait::async_trait]
impl QueryPlanner for ClientOrderPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match with_remote_below_final_sort(plan)? {
            None => self.ballista.create_physical_plan(plan, state).await,
            Some(local) => {
                DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(RemotePlanner {
                    ballista: self.ballista.clone(),
                })])
                .create_physical_plan(&local, state)
                .await
            }
        }
    }
}

/// `plan` with the input of its outermost sort replaced by a [`Remote`]
/// node, when its top is projections and limits over a sort; `None` when it
/// does not end in a sort.
fn with_remote_below_final_sort(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    match plan {
        LogicalPlan::Sort(sort) => {
            let remote = LogicalPlan::Extension(Extension {
                node: Arc::new(Remote {
                    plan: sort.input.as_ref().clone(),
                }),
            });
            Ok(Some(plan.with_new_exprs(plan.expressions(), vec![remote])?))
        }
        LogicalPlan::Projection(_) | LogicalPlan::Limit(_) => {
            let input = plan.inputs()[0];
            match with_remote_below_final_sort(input)? {
                Some(local) => Ok(Some(plan.with_new_exprs(plan.expressions(), vec![local])?)),
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// A logical plan to run on the cluster, as a leaf of a client plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
struct Remote {
    plan: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for Remote {
    fn name(&self) -> &str {
        "Remote"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![]
    }

    fn schema(&self) -> &datafusion::common::DFSchemaRef {
        self.plan.schema()
    }

    fn expressions(&self) -> Vec<datafusion::logical_expr::Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Remote")
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<datafusion::logical_expr::Expr>,
        _inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        Ok(self.clone())
    }
}

/// Plans [`Remote`] nodes with Ballista.
struct RemotePlanner {
    ballista: Arc<BallistaQueryPlanner<LogicalPlanNode>>,
}

#[async_trait::async_trait]
impl ExtensionPlanner for RemotePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        state: &dyn datafusion::catalog::Session,
        _context: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match node.as_any().downcast_ref::<Remote>() {
            Some(remote) => Ok(Some(
                self.ballista
                    .create_physical_plan(&remote.plan, state)
                    .await?,
            )),
            None => Ok(None),
        }
    }
}
