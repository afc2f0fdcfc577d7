//! The plan codecs of every cluster process. A plan crosses the wire as
//! protobuf in which a function is only its name, so every process of a
//! cluster (client, scheduler, executors) opens the same warehouse and
//! registers the same functions. The risk functions carry state, the risk
//! model: they are encoded as the model's root and version, and each process
//! loads that version from the warehouse itself (once, then from a cache),
//! so a scheduler or executor started before `aduana model build` still
//! computes with the model the client planned with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aduana_udfs::ModelHandle;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use object_store::ObjectStore;

use aduana_engine::prefix_join::{self, PrefixJoinExec};
use aduana_engine::ranking::{self, RankingWindowExec};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};

use crate::compact_views::CompactViewsExec;
use crate::plan_tables;

/// What starts an encoded model reference (a function's definition bytes
/// that are not ours are refused, not misread).
const MODEL_REF_TAG: &str = "aduana-model/1";

/// Rebuilds Aduana's model-backed functions from the model version a plan
/// names, loading each version once per process.
#[derive(Debug)]
pub struct FunctionResolver {
    store: Arc<dyn ObjectStore>,
    /// The functions over each loaded model, by (root, version).
    loaded: Mutex<HashMap<(String, String), Arc<Vec<Arc<ScalarUDF>>>>>,
}

impl FunctionResolver {
    /// A resolver reading models from `store`, starting with the session's
    /// own `model` (no reload for the version everyone uses).
    pub fn new(store: Arc<dyn ObjectStore>, model: &ModelHandle) -> Self {
        let mut loaded = HashMap::new();
        if let Some((root, version)) = model.origin() {
            loaded.insert(
                (root.to_string(), version.to_string()),
                Arc::new(aduana_udfs::scalar_functions(model)),
            );
        }
        FunctionResolver {
            store,
            loaded: Mutex::new(loaded),
        }
    }

    /// The model reference of a model-backed function; nothing for others
    /// (they are found by name).
    fn encode(&self, udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if let Some((root, version)) = aduana_udfs::model_of(udf).and_then(ModelHandle::origin) {
            buf.extend_from_slice(format!("{MODEL_REF_TAG}\n{root}\n{version}").as_bytes());
        }
        Ok(())
    }

    /// The function `name` over the model `buf` names. An empty `buf` means
    /// the process's registry does not know `name` at all.
    fn decode(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if buf.is_empty() {
            return Err(DataFusionError::Plan(format!(
                "function '{name}' is not known to this Aduana cluster process: the client \
                 planned with a function the scheduler and executors do not register \
                 (are they running the same Aduana version as the client?)"
            )));
        }
        let (root, version) = std::str::from_utf8(buf)
            .ok()
            .and_then(|text| text.strip_prefix(MODEL_REF_TAG)?.strip_prefix('\n'))
            .and_then(|rest| rest.split_once('\n'))
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "function '{name}' arrived with a definition that is not an Aduana model reference"
                ))
            })?;
        let functions = self.functions_over(root, version)?;
        functions
            .iter()
            .find(|f| f.name() == name)
            .cloned()
            .ok_or_else(|| {
                DataFusionError::Plan(format!(
                    "function '{name}' is not one of Aduana's model-backed functions"
                ))
            })
    }

    fn functions_over(&self, root: &str, version: &str) -> Result<Arc<Vec<Arc<ScalarUDF>>>> {
        let key = (root.to_string(), version.to_string());
        if let Some(functions) = self.loaded.lock().expect("not poisoned").get(&key) {
            return Ok(functions.clone());
        }
        // Decoding is synchronous; the model is read from the object store.
        let store = self.store.clone();
        let model = block_on(async move {
            aduana_model::load_version(store.as_ref(), &root.into(), version).await
        })
        .map_err(|e| {
            DataFusionError::Execution(format!(
                "risk model {version} under {root:?}, which the plan was made with: {e}"
            ))
        })?;
        let functions = Arc::new(aduana_udfs::scalar_functions(&ModelHandle::located(
            Arc::new(model),
            root,
        )));
        let mut loaded = self.loaded.lock().expect("not poisoned");
        Ok(loaded.entry(key).or_insert(functions).clone())
    }
}

/// Runs `future` to completion from synchronous code inside or outside a
/// Tokio runtime.
fn block_on<F: Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(future))
        }
        // No runtime, or one that cannot block in place: a thread of our own.
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a Tokio runtime")
                        .block_on(future)
                })
                .join()
                .expect("model loading thread")
        }),
    }
}

/// Ballista's logical codec, with Aduana's model references for functions.
#[derive(Debug)]
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
    functions: Arc<FunctionResolver>,
}

impl LogicalCodec {
    pub fn new(functions: Arc<FunctionResolver>) -> Self {
        LogicalCodec {
            ballista: BallistaLogicalExtensionCodec::default(),
            functions,
        }
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(table) = plan_tables::decode(&table_ref.to_string(), buf, schema.clone())? {
            return Ok(table);
        }
        self.ballista
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if plan_tables::encode(&table_ref.to_string(), node.as_ref(), buf)? {
            return Ok(());
        }
        self.ballista
            .try_encode_table_provider(table_ref, node, buf)
            .map_err(|e| {
                DataFusionError::Plan(format!(
                    "table {table_ref} cannot run on a cluster (only Parquet tables, views \
                     over them and small memory tables can): {e}"
                ))
            })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.functions.decode(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.functions.encode(node, buf)
    }
}

/// How a [`CompactViewsExec`] travels: the node has no state but its input.
const COMPACT_VIEWS_TAG: &[u8] = b"aduana:compact_views";

/// The engine's faster operators travel as the DataFusion operator each
/// runs in place of (a `BoundedWindowAggExec`, a `NestedLoopJoinExec`),
/// encoded with placeholder inputs after the tag; the receiving process
/// puts the real inputs back and swaps in the faster operator again.
const RANKING_WINDOW_TAG: &[u8] = b"aduana:ranking_window\n";
const PREFIX_JOIN_TAG: &[u8] = b"aduana:prefix_join\n";

/// `node` with each input replaced by an empty scan of its schema (the
/// codec encodes a node's inputs itself).
fn without_inputs(node: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let placeholders = node
        .children()
        .iter()
        .map(|input| Arc::new(EmptyExec::new(input.schema())) as Arc<dyn ExecutionPlan>)
        .collect();
    node.replace_children(
        placeholders,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
    )
}

/// Ballista's physical codec, with Aduana's model references for functions
/// and Aduana's own plan node.
#[derive(Debug)]
pub struct PhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
    functions: Arc<FunctionResolver>,
}

impl PhysicalCodec {
    pub fn new(functions: Arc<FunctionResolver>) -> Self {
        PhysicalCodec {
            ballista: BallistaPhysicalExtensionCodec::default(),
            functions,
        }
    }
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        for (tag, replaced, what) in [
            (
                RANKING_WINDOW_TAG,
                ranking::replaced as fn(Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan>,
                "RankingWindowExec",
            ),
            (PREFIX_JOIN_TAG, prefix_join::replaced, "PrefixJoinExec"),
        ] {
            let Some(inner) = buf.strip_prefix(tag) else {
                continue;
            };
            let inner = physical_plan_from_bytes_with_extension_codec(inner, ctx, self)?;
            let inner = inner.replace_children(
                inputs.to_vec(),
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )?;
            let node = replaced(Arc::clone(&inner));
            if Arc::ptr_eq(&node, &inner) {
                return Err(DataFusionError::Internal(format!(
                    "{what} decoded from a {} that does not qualify",
                    inner.name()
                )));
            }
            return Ok(node);
        }
        if buf == COMPACT_VIEWS_TAG {
            let [input] = inputs else {
                return Err(DataFusionError::Internal(format!(
                    "CompactViewsExec with {} inputs",
                    inputs.len()
                )));
            };
            return Ok(Arc::new(CompactViewsExec::new(Arc::clone(input))));
        }
        self.ballista.try_decode(buf, inputs, ctx, converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if node.is::<CompactViewsExec>() {
            buf.extend_from_slice(COMPACT_VIEWS_TAG);
            return Ok(());
        }
        let replaced = match (
            node.downcast_ref::<RankingWindowExec>(),
            node.downcast_ref::<PrefixJoinExec>(),
        ) {
            (Some(ranking), _) => Some((RANKING_WINDOW_TAG, ranking.window())),
            (_, Some(prefix)) => Some((PREFIX_JOIN_TAG, Arc::clone(prefix.join()))),
            _ => None,
        };
        if let Some((tag, inner)) = replaced {
            let bytes = physical_plan_to_bytes_with_extension_codec(without_inputs(inner)?, self)?;
            buf.extend_from_slice(tag);
            buf.extend_from_slice(&bytes);
            return Ok(());
        }
        self.ballista.try_encode(node, buf, converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.functions.decode(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.functions.encode(node, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> FunctionResolver {
        FunctionResolver::new(
            Arc::new(object_store::memory::InMemory::new()),
            &ModelHandle::default(),
        )
    }

    #[test]
    fn model_free_functions_travel_by_name() {
        let resolver = resolver();
        for f in aduana_udfs::scalar_functions(&ModelHandle::default()) {
            let mut buf = Vec::new();
            resolver.encode(&f, &mut buf).unwrap();
            assert!(buf.is_empty(), "{}", f.name());
        }
    }

    #[test]
    fn compact_views_nodes_cross_the_wire_over_their_input() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
        use datafusion::physical_plan::empty::EmptyExec;
        use datafusion::prelude::SessionContext;
        use datafusion_proto::bytes::{
            physical_plan_from_bytes_with_extension_codec,
            physical_plan_to_bytes_with_extension_codec,
        };
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8View, true)]));
        let scan: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(schema).with_partitions(2));
        let plan: Arc<dyn ExecutionPlan> = Arc::new(CompactViewsExec::new(Arc::new(
            CoalescePartitionsExec::new(Arc::new(CompactViewsExec::new(scan))),
        )));
        let codec = PhysicalCodec::new(Arc::new(resolver()));
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &codec).unwrap();
        let ctx = SessionContext::new().task_ctx();
        let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx, &codec).unwrap();
        let shown = |plan: &Arc<dyn ExecutionPlan>| {
            datafusion::physical_plan::displayable(plan.as_ref())
                .indent(true)
                .to_string()
        };
        assert_eq!(shown(&decoded), shown(&plan));
        assert!(shown(&decoded).matches("CompactViewsExec").count() == 2);
        // A node that claims to be ours with the wrong number of inputs.
        let error = codec
            .try_decode(
                COMPACT_VIEWS_TAG,
                &[],
                &ctx,
                &datafusion_proto::physical_plan::DefaultPhysicalProtoConverter {},
            )
            .unwrap_err()
            .to_string();
        assert!(error.contains("CompactViewsExec with 0 inputs"), "{error}");
    }

    /// The engine's ranking window and prefix join cross the wire and run
    /// on the other side as they ran here.
    #[tokio::test]
    async fn faster_operators_cross_the_wire_as_the_operators_they_replace() {
        use datafusion::execution::session_state::SessionStateBuilder;
        use datafusion::physical_plan::{collect, displayable};
        use datafusion::prelude::{SessionConfig, SessionContext};
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(ranking::RankingOverSortedInput))
            .with_physical_optimizer_rule(Arc::new(prefix_join::PrefixLookups))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql(
            "CREATE TABLE tariff AS VALUES ('8471', 5.0), ('847130', 2.5), ('8517', 0.0), ('85', 10.0)",
        )
        .await
        .unwrap();
        ctx.sql(
            "CREATE TABLE items AS VALUES (1, '84713000'), (2, '84715000'), (3, '85171300'), \
             (4, '85011000'), (5, '9999'), (6, NULL)",
        )
        .await
        .unwrap();
        let sql = "SELECT id, code, rate FROM (
                       SELECT i.column1 AS id, t.column1 AS code, t.column2 AS rate,
                              row_number() OVER (PARTITION BY i.column1 ORDER BY length(t.column1) DESC) AS n
                       FROM tariff t RIGHT JOIN items i ON starts_with(i.column2, t.column1))
                   WHERE n = 1 ORDER BY id";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let shown =
            |plan: &Arc<dyn ExecutionPlan>| displayable(plan.as_ref()).indent(true).to_string();
        assert!(
            shown(&plan).contains("RankingWindowExec") && shown(&plan).contains("PrefixJoinExec"),
            "{}",
            shown(&plan)
        );
        let codec = PhysicalCodec::new(Arc::new(resolver()));
        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &codec).unwrap();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
        assert_eq!(shown(&decoded), shown(&plan));
        let rows = |batches: Vec<datafusion::arrow::array::RecordBatch>| {
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        };
        let expected = rows(collect(plan, ctx.task_ctx()).await.unwrap());
        assert_eq!(
            rows(collect(decoded, ctx.task_ctx()).await.unwrap()),
            expected
        );
        // Each item's longest prefix; none for the last two.
        for line in [
            "| 1  | 847130 | 2.5  |",
            "| 3  | 8517   | 0.0  |",
            "| 5  |        |      |",
        ] {
            assert!(expected.contains(line), "{expected}");
        }
    }

    #[test]
    fn unknown_functions_and_bad_references_are_named() {
        let resolver = resolver();
        let error = resolver.decode("client_only", &[]).unwrap_err().to_string();
        assert!(error.contains("'client_only' is not known"), "{error}");
        let error = resolver
            .decode("origin_risk", b"junk")
            .unwrap_err()
            .to_string();
        assert!(error.contains("'origin_risk'"), "{error}");
        // A version that is not in the warehouse: the error names it.
        let reference = format!("{MODEL_REF_TAG}\nwh\n20260101T000000.000Z");
        let error = resolver
            .decode("origin_risk", reference.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("20260101T000000.000Z"), "{error}");
    }
}
