//! One query from SQL text to Flight data: `?` placeholders numbered,
//! parameters bound from Arrow batches, a state per query (its own memory
//! pool and default schema), and the result stream that casts views for
//! clients, stops on cancel or timeout, holds a concurrency slot and logs
//! one line when it ends.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, ByteView, RecordBatch, StringArray, StringViewArray};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

use crate::status::{flight_status, to_flight_error};

/// Renames `?` placeholders (JDBC, ODBC and DB-API style) to `$1`, `$2`,
/// ... in the order they appear, which is how DataFusion numbers them.
/// Returns how many there were.
pub fn number_question_marks(statement: &mut Statement) -> usize {
    let Statement::Statement(inner) = statement else {
        return 0;
    };
    let mut count = 0;
    let _ = visit_expressions_mut(inner.as_mut(), |expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(name) = &mut value.value
            && name == "?"
        {
            count += 1;
            *name = format!("${count}");
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    count
}

/// A parameter of a prepared statement: `$1` or `$name`, and its type
/// when DataFusion could infer it from where it is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Without the `$`: `1`, `days`.
    pub name: String,
    pub data_type: Option<DataType>,
}

impl Parameter {
    fn position(&self) -> Option<usize> {
        self.name.parse::<usize>().ok().filter(|&p| p >= 1)
    }
}

/// The plan's parameters: numbered ones by number, named ones by name.
pub fn parameters(plan: &LogicalPlan) -> datafusion::error::Result<Vec<Parameter>> {
    let mut params: Vec<Parameter> = plan
        .get_parameter_types()?
        .into_iter()
        .map(|(id, data_type)| Parameter {
            name: id.trim_start_matches('$').to_string(),
            data_type,
        })
        .collect();
    params.sort_by(|a, b| match (a.position(), b.position()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.name.cmp(&b.name),
    });
    Ok(params)
}

/// The parameter schema clients are told (types DataFusion could not infer
/// are `Null`: any value is accepted and cast where it is used).
pub fn parameter_schema(params: &[Parameter]) -> Schema {
    Schema::new(
        params
            .iter()
            .map(|p| Field::new(&p.name, p.data_type.clone().unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    )
}

/// The values of row `row` of `batch` for `params`: numbered parameters
/// take the columns in order, named ones the column of the same name.
pub fn bind_row(
    params: &[Parameter],
    batch: &RecordBatch,
    row: usize,
) -> Result<ParamValues, Status> {
    let value = |column: usize, param: &Parameter| -> Result<ScalarValue, Status> {
        let scalar = ScalarValue::try_from_array(batch.column(column), row)
            .map_err(|e| Status::invalid_argument(format!("parameter ${}: {e}", param.name)))?;
        match &param.data_type {
            Some(t) if !scalar.is_null() && &scalar.data_type() != t => {
                scalar.cast_to(t).map_err(|e| {
                    Status::invalid_argument(format!(
                        "parameter ${} must be {t}, and {scalar} ({}) does not convert: {e}",
                        param.name,
                        scalar.data_type()
                    ))
                })
            }
            _ => Ok(scalar),
        }
    };
    if params.iter().all(|p| p.position().is_some()) {
        let needed = params
            .iter()
            .filter_map(|p| p.position())
            .max()
            .unwrap_or(0);
        if batch.num_columns() != needed {
            return Err(Status::invalid_argument(format!(
                "the statement has {needed} parameter(s) and {} value(s) were bound",
                batch.num_columns()
            )));
        }
        let mut values = Vec::with_capacity(needed);
        for (i, param) in params.iter().enumerate() {
            values.push(value(i, param)?.into());
        }
        Ok(ParamValues::List(values))
    } else {
        let schema = batch.schema();
        let mut values = HashMap::new();
        for param in params {
            let column = schema
                .fields()
                .iter()
                .position(|f| f.name() == &param.name || f.name() == &format!("${}", param.name))
                .ok_or_else(|| {
                    let given: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    Status::invalid_argument(format!(
                        "parameter ${} is not bound (the values given are named: {})",
                        param.name,
                        given.join(", ")
                    ))
                })?;
            values.insert(param.name.clone(), value(column, param)?.into());
        }
        Ok(ParamValues::Map(values))
    }
}

/// A state for one query: the session's catalog and functions, its own
/// memory pool (one query cannot starve the others), and the client's
/// default schema.
pub fn query_state(base: SessionState, memory_limit: usize, schema: Option<&str>) -> SessionState {
    let runtime = RuntimeEnv {
        memory_pool: Arc::new(FairSpillPool::new(memory_limit)),
        ..base.runtime_env().as_ref().clone()
    };
    let mut state = SessionStateBuilder::new_from_existing(base)
        .with_runtime_env(Arc::new(runtime))
        .build();
    if let Some(schema) = schema {
        state.config_mut().options_mut().catalog.default_schema = schema.to_string();
    }
    state
}

/// A planned query waiting for its DoGet: physical plans (one per row of
/// bound parameters), the state to run them in, and what clients are told.
pub struct PlannedQuery {
    pub id: String,
    pub user: String,
    pub sql: String,
    pub plans: Vec<Arc<dyn ExecutionPlan>>,
    pub state: SessionState,
    /// The schema sent to the client (views cast unless it takes them).
    pub schema: SchemaRef,
    pub planned_at: Instant,
}

/// The queries running now, by id: CancelFlightInfo and shutdown cancel
/// them through their tokens.
pub type Running = Arc<Mutex<HashMap<String, CancellationToken>>>;

/// The result stream of one query.
pub struct QueryStream {
    inner: BoxStream<'static, Result<FlightData, Status>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    /// Rows sent, counted as batches pass (for the log line).
    rows: Arc<AtomicU64>,
    bytes: u64,
    outcome: Option<String>,
    id: String,
    user: String,
    sql: String,
    started: Instant,
    running: Running,
    /// Aborted when the stream is dropped (client gone, cancel, timeout).
    task: tokio::task::JoinHandle<()>,
    _slot: OwnedSemaphorePermit,
}

impl QueryStream {
    pub fn start(
        query: PlannedQuery,
        slot: OwnedSemaphorePermit,
        timeout: Duration,
        running: Running,
        executor: &tokio::runtime::Handle,
    ) -> QueryStream {
        let cancel = CancellationToken::new();
        running
            .lock()
            .unwrap()
            .insert(query.id.clone(), cancel.clone());
        let rows = Arc::new(AtomicU64::new(0));
        let schema = query.schema.clone();
        let task_ctx = query.state.task_ctx();
        // The plans run on the query runtime, apart from the one serving
        // gRPC: a query that computes for minutes without yielding cannot
        // hold up other calls, cancels or health checks. Batches come back
        // through a channel of two, which is the back-pressure: the query
        // waits while the client is slow to read.
        let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
        let task = executor.spawn(async move {
            // Each plan starts when the one before it is drained:
            // executemany results follow each other.
            for plan in query.plans {
                let mut stream = match execute_stream(plan, task_ctx.clone()) {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(item) = stream.next().await {
                    let failed = item.is_err();
                    if sender.send(item).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        let batches = stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let cast_schema = schema.clone();
        let counted = rows.clone();
        let batches = batches.map(move |batch| {
            let batch = batch.map_err(to_flight_error)?;
            counted.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            to_client(batch, &cast_schema).map_err(|e| to_flight_error(e.into()))
        });
        let inner = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map(|r| r.map_err(flight_status))
            .boxed();
        QueryStream {
            inner,
            cancelled: Box::pin(cancel.cancelled_owned()),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            rows,
            bytes: 0,
            outcome: None,
            id: query.id,
            user: query.user,
            sql: query.sql,
            started: Instant::now(),
            running,
            task,
            _slot: slot,
        }
    }

    fn finish(&mut self, outcome: String) {
        self.outcome = Some(outcome);
    }
}

/// `batch` with the types of `schema` (views to plain strings, dictionaries
/// to values).
fn to_client(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match (column.data_type(), field.data_type()) {
                (from, to) if from == to => Ok(column.clone()),
                (DataType::Utf8View, DataType::Utf8) => view_to_utf8(column.as_string_view()),
                (_, to) => cast(column, to),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// `Utf8View` to `Utf8` in one pass: offsets from the views' lengths,
/// bytes copied from the view itself (12 bytes or fewer) or from its
/// buffer, nulls kept as they are. Streaming strings to clients was the
/// largest cost after the scan, and arrow's general cast appends value by
/// value through a builder.
fn view_to_utf8(array: &StringViewArray) -> Result<ArrayRef, arrow::error::ArrowError> {
    let views = array.views();
    let buffers = array.data_buffers();
    let nulls = array.nulls();
    let length = |i: usize, view: u128| match nulls {
        Some(n) if n.is_null(i) => 0,
        _ => view as u32 as usize,
    };
    let total: usize = views.iter().enumerate().map(|(i, &v)| length(i, v)).sum();
    if total > i32::MAX as usize {
        return cast(array, &DataType::Utf8);
    }
    let mut offsets = Vec::with_capacity(views.len() + 1);
    let mut values = Vec::with_capacity(total);
    offsets.push(0i32);
    for (i, &view) in views.iter().enumerate() {
        let len = length(i, view);
        if len <= 12 {
            values.extend_from_slice(&view.to_le_bytes()[4..4 + len]);
        } else {
            let view = ByteView::from(view);
            let buffer = &buffers[view.buffer_index as usize];
            values.extend_from_slice(&buffer[view.offset as usize..view.offset as usize + len]);
        }
        offsets.push(values.len() as i32);
    }
    // SAFETY: every value is a whole string of a valid StringViewArray (null
    // slots are empty), so the bytes are UTF-8 between monotonic offsets.
    let array = unsafe {
        StringArray::new_unchecked(
            OffsetBuffer::new_unchecked(offsets.into()),
            values.into(),
            nulls.cloned(),
        )
    };
    Ok(Arc::new(array))
}

impl Stream for QueryStream {
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.outcome.is_some() {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.finish("cancelled".into());
            return Poll::Ready(Some(Err(Status::cancelled("query cancelled"))));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let message = format!(
                "query stopped after the server's {} s time limit (--query-timeout)",
                self.timeout.as_secs()
            );
            self.finish("timeout".into());
            return Poll::Ready(Some(Err(Status::deadline_exceeded(message))));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.bytes += (data.data_header.len() + data.data_body.len()) as u64;
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(status))) => {
                self.finish(format!("error code={:?}", status.code()));
                Poll::Ready(Some(Err(status)))
            }
            Poll::Ready(None) => {
                self.finish("ok".into());
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.task.abort();
        self.running.lock().unwrap().remove(&self.id);
        // Dropped before its end: the client went away (or the server is
        // shutting down); dropping the DataFusion stream stops its tasks.
        let outcome = self.outcome.as_deref().unwrap_or("disconnected");
        crate::log::query(
            &self.id,
            &self.user,
            outcome,
            self.started.elapsed(),
            self.rows.load(Ordering::Relaxed),
            self.bytes,
            &self.sql,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use datafusion::sql::parser::DFParser;

    #[test]
    fn views_to_plain_strings_match_arrow_cast() {
        let long = "a string longer than twelve bytes, ünïcödé";
        let array = StringViewArray::from(vec![
            Some("short"),
            None,
            Some(long),
            Some(""),
            Some("exactly12byt"),
            Some("thirteen byte"),
            None,
            Some(long),
        ]);
        for sliced in [array.clone(), array.slice(1, 5), array.slice(2, 0)] {
            let ours = view_to_utf8(&sliced).unwrap();
            let arrows = cast(&sliced, &DataType::Utf8).unwrap();
            assert_eq!(ours.as_string::<i32>(), arrows.as_string::<i32>());
            ours.to_data().validate_full().unwrap();
        }
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        let mut statements =
            DFParser::parse_sql("SELECT a FROM t WHERE b = ? AND c IN (?, 'x?') LIMIT ?").unwrap();
        let statement = statements.front_mut().unwrap();
        assert_eq!(number_question_marks(statement), 3);
        assert_eq!(
            statement.to_string(),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, 'x?') LIMIT $3"
        );
    }

    #[test]
    fn binding_by_position_and_name() {
        let positional = vec![
            Parameter {
                name: "1".into(),
                data_type: Some(DataType::Int32),
            },
            Parameter {
                name: "2".into(),
                data_type: None,
            },
        ];
        let batch = RecordBatch::try_from_iter([
            ("0", Arc::new(Int64Array::from(vec![7, 8])) as _),
            ("1", Arc::new(StringArray::from(vec!["a", "b"])) as _),
        ])
        .unwrap();
        let ParamValues::List(values) = bind_row(&positional, &batch, 1).unwrap() else {
            panic!("positional parameters bind as a list");
        };
        assert_eq!(values[0].value, ScalarValue::Int32(Some(8)));
        assert_eq!(values[1].value, ScalarValue::Utf8(Some("b".into())));

        let named = vec![Parameter {
            name: "who".into(),
            data_type: None,
        }];
        let err = bind_row(&named, &batch, 0).unwrap_err();
        assert!(err.message().contains("$who is not bound"), "{err}");
        let batch =
            RecordBatch::try_from_iter([("who", Arc::new(StringArray::from(vec!["IMP1"])) as _)])
                .unwrap();
        let ParamValues::Map(values) = bind_row(&named, &batch, 0).unwrap() else {
            panic!("named parameters bind as a map");
        };
        assert_eq!(values["who"].value, ScalarValue::Utf8(Some("IMP1".into())));

        let too_few =
            RecordBatch::try_from_iter([("0", Arc::new(Int64Array::from(vec![1])) as _)]).unwrap();
        assert!(bind_row(&positional, &too_few, 0).is_err());
    }
}
