//! The Flight SQL service over one Aduana session.
//!
//! A query is planned once: GetFlightInfo parses, checks (read-only),
//! binds and builds the physical plan, and keeps it under a single-use
//! ticket; DoGet runs that plan. Prepared statements keep their logical
//! plan with placeholders and the parameter rows last bound by DoPut.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aduana_engine::{CATALOG, Session, WritePolicy};
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    GetDbSchemasBuilder, GetTablesBuilder, SqlInfoData, XdbcTypeInfoData,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::common::ParamValues;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use futures::{Stream, TryStreamExt, stream};
use prost::Message;
use rand::RngCore;
use tokio::sync::Semaphore;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::log;
use crate::metadata::{self, client_schema};
use crate::query::{
    Parameter, PlannedQuery, QueryStream, Running, bind_row, number_question_marks,
    parameter_schema, parameters, query_state,
};
use crate::session_options::{
    ClientOptions, CloseSessionResult, CloseSessionStatus, GetSessionOptionsResult, OptionValue,
    SESSION_COOKIE, SetSessionOptionsError, SetSessionOptionsErrorValue, SetSessionOptionsRequest,
    SetSessionOptionsResult, session_id,
};
use crate::status::{datafusion_status, engine_status};
use aduana_access::{Authenticator, User};

/// What one query may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of memory per query before operators spill (sorts,
    /// aggregations, joins) or the query fails with RESOURCE_EXHAUSTED.
    pub query_memory: usize,
    /// Queries running at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent: usize,
    pub query_timeout: Duration,
}

/// A ticket not redeemed by DoGet within this time is forgotten.
const TICKET_LIFETIME: Duration = Duration::from_secs(600);

/// A prepared statement not used for this long is forgotten.
const PREPARED_LIFETIME: Duration = Duration::from_secs(3600);

/// Planned queries waiting for their DoGet (each holds its plans and a
/// state of its own, a few hundred kilobytes), and open prepared
/// statements, per user and in all, as multiples of
/// `--max-concurrent-queries`: a client that plans without fetching (or
/// prepares without closing) is refused instead of growing the server.
const PENDING_PER_USER_PER_SLOT: usize = 4;
const PENDING_PER_SLOT: usize = 16;

/// Clients that can read `Utf8View` may say so per call with this header
/// (or for a session with the `aduana.string_view` option).
const STRING_VIEW_HEADER: &str = "x-aduana-string-view";

#[derive(Clone)]
struct Prepared {
    user: String,
    sql: String,
    plan: LogicalPlan,
    params: Vec<Parameter>,
    /// One set of values per row of the parameter batches last sent.
    bound: Vec<ParamValues>,
    options: ClientOptions,
    /// Last used: a statement idle for [`PREPARED_LIFETIME`] is forgotten
    /// (clients that never close them would otherwise hold their places).
    used: Instant,
}

pub struct AduanaFlightSql {
    session: Arc<Session>,
    limits: Limits,
    authenticator: Arc<Authenticator>,
    pending: Mutex<HashMap<String, PlannedQuery>>,
    prepared: Mutex<HashMap<String, Prepared>>,
    /// Session id → (owner, options).
    sessions: Mutex<HashMap<String, (String, ClientOptions)>>,
    running: Running,
    slots: Arc<Semaphore>,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
    executor: QueryRuntime,
}

/// The runtime queries execute on (one worker per core), apart from the
/// runtime that answers gRPC calls.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl QueryRuntime {
    fn new() -> QueryRuntime {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("aduana-query")
            .thread_stack_size(aduana_engine::bounds::EXECUTION_STACK)
            .enable_all()
            .build()
            .expect("the query runtime starts");
        QueryRuntime(Some(runtime))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime lives as long as the service")
            .handle()
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropped from async code at shutdown, where a blocking drop would
        // panic; running tasks are abandoned (they were cancelled).
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

type DoGetStream = <AduanaFlightSql as FlightService>::DoGetStream;
type DoActionStream = <AduanaFlightSql as FlightService>::DoActionStream;

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn user_of<T>(request: &Request<T>) -> Result<String, Status> {
    request
        .extensions()
        .get::<User>()
        .map(|u| u.0.clone())
        .ok_or_else(|| Status::unauthenticated("no credentials"))
}

fn ipc_schema(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// A metadata answer: one batch, or why it could not be built.
fn one_batch(
    batch: arrow_flight::error::Result<RecordBatch>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::once(async move { Ok(batch) }))
        .map_err(crate::status::flight_status);
    Ok(Response::new(Box::pin(stream)))
}

fn metadata_info(
    command: impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn action_result(message: impl Message) -> Response<DoActionStream> {
    let result = arrow_flight::Result {
        body: message.encode_to_vec().into(),
    };
    Response::new(Box::pin(stream::iter([Ok(result)])))
}

impl AduanaFlightSql {
    pub fn new(
        session: Arc<Session>,
        limits: Limits,
        authenticator: Arc<Authenticator>,
    ) -> AduanaFlightSql {
        let timeout_ms = limits.query_timeout.as_millis().min(i32::MAX as u128) as i32;
        AduanaFlightSql {
            session,
            slots: Arc::new(Semaphore::new(limits.max_concurrent)),
            limits,
            authenticator,
            pending: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            running: Arc::new(Mutex::new(HashMap::new())),
            sql_info: metadata::sql_info(timeout_ms, env!("CARGO_PKG_VERSION")),
            xdbc: metadata::xdbc_type_info(),
            executor: QueryRuntime::new(),
        }
    }

    /// Cancels every running query (the end of the shutdown grace period).
    pub fn cancel_all(&self) -> usize {
        let running = self.running.lock().unwrap();
        for token in running.values() {
            token.cancel();
        }
        running.len()
    }

    pub fn running_queries(&self) -> usize {
        self.running.lock().unwrap().len()
    }

    /// The id and options of the caller's session, named by its cookie (a
    /// session belongs to the user who made it).
    fn owned_session<T>(
        &self,
        request: &Request<T>,
        user: &str,
    ) -> Option<(String, ClientOptions)> {
        let id = session_id(request.metadata())?;
        let sessions = self.sessions.lock().unwrap();
        let (owner, options) = sessions.get(&id)?;
        (owner == user).then(|| (id, options.clone()))
    }

    /// The caller's session options, and the string-view header.
    fn client_options<T>(&self, request: &Request<T>, user: &str) -> ClientOptions {
        let mut options = self
            .owned_session(request, user)
            .map(|(_, options)| options)
            .unwrap_or_default();
        if let Some(v) = request.metadata().get(STRING_VIEW_HEADER) {
            options.string_view = v.to_str().is_ok_and(|v| v == "true" || v == "1");
        }
        options
    }

    /// A state of the query's own: its memory pool and the client's
    /// default schema.
    fn query_state(&self, options: &ClientOptions) -> SessionState {
        query_state(
            self.session.context().state(),
            self.limits.query_memory,
            options.schema.as_deref(),
        )
    }

    /// Parses (one statement), numbers `?` placeholders and plans under
    /// the read-only policy, in a state of the query's own.
    async fn plan_sql(
        &self,
        sql: &str,
        options: &ClientOptions,
    ) -> Result<(LogicalPlan, SessionState), Status> {
        // Parsing waits for its own thread (a 1 MiB statement takes a
        // while): the worker's other calls move to another thread meanwhile.
        let mut statements =
            tokio::task::block_in_place(|| Session::statements(sql)).map_err(engine_status)?;
        if statements.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "send one SQL statement per query ({} given)",
                statements.len()
            )));
        }
        let mut statement = statements.pop().expect("one statement");
        number_question_marks(&mut statement);
        let state = self.query_state(options);
        let plan = self
            .session
            .plan(&state, statement, WritePolicy::ReadOnly)
            .await
            .map_err(engine_status)?;
        Ok((plan, state))
    }

    /// Physical plans for `plan`, one per set of parameter values.
    async fn physical_plans(
        &self,
        state: &SessionState,
        plan: &LogicalPlan,
        params: &[Parameter],
        bound: &[ParamValues],
    ) -> Result<Vec<Arc<dyn ExecutionPlan>>, Status> {
        if bound.is_empty() {
            if !params.is_empty() {
                let names: Vec<String> = params.iter().map(|p| format!("${}", p.name)).collect();
                return Err(Status::invalid_argument(format!(
                    "the statement has parameters ({}) and no values were bound",
                    names.join(", ")
                )));
            }
            let physical = state
                .create_physical_plan(plan)
                .await
                .map_err(|e| datafusion_status(&e))?;
            return Ok(vec![physical]);
        }
        let mut plans = Vec::with_capacity(bound.len());
        for values in bound {
            let with_values = plan
                .clone()
                .with_param_values(values.clone())
                .map_err(|e| datafusion_status(&e))?;
            plans.push(
                state
                    .create_physical_plan(&with_values)
                    .await
                    .map_err(|e| datafusion_status(&e))?,
            );
        }
        Ok(plans)
    }

    /// The query ready for its DoGet: physical plans and the schema the
    /// client will receive.
    #[allow(clippy::too_many_arguments)]
    async fn planned(
        &self,
        user: &str,
        sql: &str,
        state: SessionState,
        plan: &LogicalPlan,
        params: &[Parameter],
        bound: &[ParamValues],
        string_view: bool,
    ) -> Result<PlannedQuery, Status> {
        let plans = self.physical_plans(&state, plan, params, bound).await?;
        Ok(PlannedQuery {
            id: random_id(),
            user: user.to_string(),
            sql: sql.to_string(),
            plans,
            state,
            schema: client_schema(plan.schema().as_arrow(), string_view),
            planned_at: Instant::now(),
        })
    }

    /// A place among the queries running at once, or RESOURCE_EXHAUSTED.
    fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the server is running its maximum of {} queries (--max-concurrent-queries); retry later",
                self.limits.max_concurrent
            ))
        })
    }

    /// Room for one more planned query of `user` among `pending` (expired
    /// tickets are forgotten first), or RESOURCE_EXHAUSTED.
    fn pending_room(
        &self,
        pending: &mut HashMap<String, PlannedQuery>,
        user: &str,
    ) -> Result<(), Status> {
        self.room(
            pending,
            user,
            "planned queries waiting for DoGet",
            |q| q.planned_at.elapsed() < TICKET_LIFETIME,
            |q| &q.user,
        )
    }

    /// Room for one more prepared statement of `user` among `prepared`
    /// (idle ones are forgotten first), or RESOURCE_EXHAUSTED.
    fn prepared_room(
        &self,
        prepared: &mut HashMap<String, Prepared>,
        user: &str,
    ) -> Result<(), Status> {
        self.room(
            prepared,
            user,
            "open prepared statements",
            |p| p.used.elapsed() < PREPARED_LIFETIME,
            |p| &p.user,
        )
    }

    /// Forgets what is no longer `alive` in `held`, then whether `user` may
    /// add one: at most [`PENDING_PER_USER_PER_SLOT`] per slot each,
    /// [`PENDING_PER_SLOT`] in all.
    fn room<T>(
        &self,
        held: &mut HashMap<String, T>,
        user: &str,
        what: &str,
        alive: impl Fn(&T) -> bool,
        owner: impl Fn(&T) -> &String,
    ) -> Result<(), Status> {
        held.retain(|_, entry| alive(entry));
        let slots = self.limits.max_concurrent.max(1);
        let (per_user, total) = (PENDING_PER_USER_PER_SLOT * slots, PENDING_PER_SLOT * slots);
        let all = held.len();
        let mine = held.values().filter(|entry| owner(entry) == user).count();
        if mine >= per_user {
            return Err(Status::resource_exhausted(format!(
                "{user} has {mine} {what}, the most one user may hold \
                 ({PENDING_PER_USER_PER_SLOT} per --max-concurrent-queries slot): fetch or close them first"
            )));
        }
        if all >= total {
            return Err(Status::resource_exhausted(format!(
                "the server holds {all} {what}, its maximum ({PENDING_PER_SLOT} per \
                 --max-concurrent-queries slot); retry later"
            )));
        }
        Ok(())
    }

    /// Keeps a planned query under a new ticket and describes it.
    fn store(
        &self,
        planned: PlannedQuery,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = TicketStatementQuery {
            statement_handle: planned.id.clone().into(),
        };
        let info = FlightInfo::new()
            .try_with_schema(&planned.schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor)
            .with_ordered(true);
        // Checked again now, under the lock it inserts with: other calls
        // may have planned meanwhile.
        let mut pending = self.pending.lock().unwrap();
        self.pending_room(&mut pending, &planned.user)?;
        pending.insert(planned.id.clone(), planned);
        Ok(Response::new(info))
    }

    fn refuse<T>(user: &str, sql: &str, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(status) = &result {
            log::refused(user, status.code(), status.message(), sql);
        }
        result
    }

    /// Cancels the query a FlightInfo describes, pending or running.
    fn cancel(&self, info: &FlightInfo, user: &str) -> Result<(), Status> {
        let mut found = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Some(id) = Any::decode(ticket.ticket.clone())
                .ok()
                .and_then(|any| any.unpack::<TicketStatementQuery>().ok().flatten())
                .and_then(|t| String::from_utf8(t.statement_handle.to_vec()).ok())
            else {
                continue;
            };
            let mut pending = self.pending.lock().unwrap();
            if pending.get(&id).is_some_and(|q| q.user == user) {
                pending.remove(&id);
                found = true;
            } else if let Some(token) = self.running.lock().unwrap().get(&id) {
                token.cancel();
                found = true;
            }
        }
        if found {
            Ok(())
        } else {
            Err(Status::not_found(
                "no such query: it finished, was cancelled, or was never planned here",
            ))
        }
    }

    /// A copy of the caller's prepared statement.
    fn prepared(&self, handle: &[u8], user: &str) -> Result<Prepared, Status> {
        let key = String::from_utf8_lossy(handle).to_string();
        match self.prepared.lock().unwrap().get_mut(&key) {
            Some(p) if p.user == user => {
                p.used = Instant::now();
                Ok(p.clone())
            }
            _ => Err(Status::not_found(
                "unknown prepared statement (closed, or not yours)",
            )),
        }
    }

    /// Reads the parameter batches of a DoPut and binds them, one set of
    /// values per row, to the prepared statement.
    async fn receive_parameters(
        &self,
        handle: &[u8],
        user: &str,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<(), Status> {
        let params = self.prepared(handle, user)?.params;
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(
            request
                .into_inner()
                .map_err(|status| FlightError::Tonic(Box::new(status))),
        )
        .try_collect()
        .await
        .map_err(crate::status::flight_status)?;
        let mut bound = Vec::new();
        for batch in &batches {
            if params.is_empty() {
                if batch.num_columns() > 0 && batch.num_rows() > 0 {
                    return Err(Status::invalid_argument(
                        "the statement has no parameters, and values were bound",
                    ));
                }
                continue;
            }
            for row in 0..batch.num_rows() {
                bound.push(bind_row(&params, batch, row)?);
            }
        }
        let key = String::from_utf8_lossy(handle).to_string();
        if let Some(p) = self.prepared.lock().unwrap().get_mut(&key) {
            p.bound = bound;
        }
        Ok(())
    }

    fn set_session_options(
        &self,
        request: &Request<Action>,
        user: &str,
    ) -> Result<Response<DoActionStream>, Status> {
        let message = SetSessionOptionsRequest::decode(request.get_ref().body.clone())
            .map_err(|e| Status::invalid_argument(format!("bad SetSessionOptionsRequest: {e}")))?;
        let existing = self.owned_session(request, user);
        let new_session = existing.is_none();
        let (id, mut options) = existing.unwrap_or_else(|| (random_id(), ClientOptions::default()));
        let catalog = self.session.context().catalog(CATALOG);
        let mut errors = HashMap::new();
        for (name, value) in message.session_options {
            let error = match (name.as_str(), value.option_value) {
                ("catalog", Some(OptionValue::StringValue(v)))
                    if v.eq_ignore_ascii_case(CATALOG) =>
                {
                    None
                }
                ("schema", Some(OptionValue::StringValue(v)))
                    if catalog.as_ref().is_some_and(|c| c.schema(&v).is_some()) =>
                {
                    options.schema = Some(v);
                    None
                }
                ("aduana.string_view", Some(OptionValue::BoolValue(v))) => {
                    options.string_view = v;
                    None
                }
                ("catalog" | "schema" | "aduana.string_view", _) => {
                    Some(SetSessionOptionsErrorValue::InvalidValue)
                }
                _ => Some(SetSessionOptionsErrorValue::InvalidName),
            };
            if let Some(e) = error {
                errors.insert(name, SetSessionOptionsError { value: e as i32 });
            }
        }
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), (user.to_string(), options));
        let mut response = action_result(SetSessionOptionsResult { errors });
        if new_session {
            let cookie = format!("{SESSION_COOKIE}={id}");
            response.metadata_mut().insert(
                "set-cookie",
                MetadataValue::try_from(cookie).map_err(|e| Status::internal(e.to_string()))?,
            );
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl FlightSqlService for AduanaFlightSql {
    type FlightService = AduanaFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let peer = request.remote_addr().map(|addr| addr.ip());
        let (user, token) = self
            .authenticator
            .handshake_from(&request.metadata().clone().into_headers(), peer)
            .map_err(crate::auth::status)?;
        log::event(&format!("handshake user={}", user.0));
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(stream::iter([Ok(reply)])));
        response.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|e| Status::internal(e.to_string()))?,
        );
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = user_of(&request)?;
        let options = self.client_options(&request, &user);
        let sql = query.query;
        let result = async {
            self.pending_room(&mut self.pending.lock().unwrap(), &user)?;
            let (plan, state) = self.plan_sql(&sql, &options).await?;
            let params = parameters(&plan).map_err(|e| datafusion_status(&e))?;
            let planned = self
                .planned(&user, &sql, state, &plan, &params, &[], options.string_view)
                .await?;
            self.store(planned, request.into_inner())
        }
        .await;
        Self::refuse(&user, &sql, result)
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let user = user_of(&request)?;
        let id = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("malformed ticket"))?;
        let query = {
            let mut pending = self.pending.lock().unwrap();
            match pending.get(&id) {
                Some(q) if q.user == user => pending.remove(&id),
                _ => None,
            }
        }
        .ok_or_else(|| {
            Status::not_found("unknown ticket: it was already used, has expired, or is not yours")
        })?;
        let slot = self.slot().inspect_err(|status| {
            log::refused(&user, status.code(), status.message(), &query.sql);
        })?;
        let stream = QueryStream::start(
            query,
            slot,
            self.limits.query_timeout,
            self.running.clone(),
            self.executor.handle(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let user = user_of(&request)?;
        let options = self.client_options(&request, &user);
        let sql = query.query;
        let result = async {
            self.prepared_room(&mut self.prepared.lock().unwrap(), &user)?;
            let (plan, _state) = self.plan_sql(&sql, &options).await?;
            let params = parameters(&plan).map_err(|e| datafusion_status(&e))?;
            let dataset = client_schema(plan.schema().as_arrow(), options.string_view);
            let parameter_schema = if params.is_empty() {
                Default::default()
            } else {
                ipc_schema(&parameter_schema(&params))?
            };
            let handle = random_id();
            let result = ActionCreatePreparedStatementResult {
                prepared_statement_handle: handle.clone().into(),
                dataset_schema: ipc_schema(&dataset)?,
                parameter_schema,
            };
            let mut prepared = self.prepared.lock().unwrap();
            self.prepared_room(&mut prepared, &user)?;
            prepared.insert(
                handle,
                Prepared {
                    user: user.clone(),
                    sql: sql.clone(),
                    plan,
                    params,
                    bound: Vec::new(),
                    options,
                    used: Instant::now(),
                },
            );
            Ok(result)
        }
        .await;
        Self::refuse(&user, &sql, result)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = user_of(&request)?;
        let handle = query.prepared_statement_handle;
        self.receive_parameters(&handle, &user, request).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = user_of(&request)?;
        let Prepared {
            sql,
            plan,
            params,
            bound,
            options,
            ..
        } = self.prepared(&query.prepared_statement_handle, &user)?;
        let result = async {
            self.pending_room(&mut self.pending.lock().unwrap(), &user)?;
            let state = self.query_state(&options);
            let planned = self
                .planned(
                    &user,
                    &sql,
                    state,
                    &plan,
                    &params,
                    &bound,
                    options.string_view,
                )
                .await?;
            self.store(planned, request.into_inner())
        }
        .await;
        Self::refuse(&user, &sql, result)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let user = user_of(&request)?;
        let key = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        let mut prepared = self.prepared.lock().unwrap();
        if prepared.get(&key).is_some_and(|p| p.user == user) {
            prepared.remove(&key);
        }
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = user_of(&request)?;
        let status = Status::permission_denied(
            "refused: this endpoint is read-only (updates are not accepted)",
        );
        log::refused(&user, status.code(), status.message(), &command.query);
        Err(status)
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = user_of(&request)?;
        let status = Status::permission_denied(format!(
            "refused: this endpoint is read-only (no ingestion into {})",
            command.table
        ));
        log::refused(&user, status.code(), status.message(), "");
        Err(status)
    }

    /// `executemany` on a query: ADBC and DB-API drivers send it as an
    /// update. Nothing is written: the query runs once per parameter row
    /// and the answer is the number of rows it returned in all.
    async fn do_put_prepared_statement_update(
        &self,
        command: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = user_of(&request)?;
        let handle = command.prepared_statement_handle;
        self.receive_parameters(&handle, &user, request).await?;
        let prepared = self.prepared(&handle, &user)?;
        let _slot = self.slot()?;
        let started = Instant::now();
        let state = self.query_state(&prepared.options);
        let plans = self
            .physical_plans(&state, &prepared.plan, &prepared.params, &prepared.bound)
            .await?;
        let task_ctx = state.task_ctx();
        let task = self.executor.handle().spawn(async move {
            let mut rows = 0u64;
            for plan in plans {
                let mut stream = datafusion::physical_plan::execute_stream(plan, task_ctx.clone())
                    .map_err(|e| datafusion_status(&e))?;
                while let Some(batch) =
                    stream.try_next().await.map_err(|e| datafusion_status(&e))?
                {
                    rows += batch.num_rows() as u64;
                }
            }
            Ok::<u64, Status>(rows)
        });
        let abort = task.abort_handle();
        let run = async move {
            task.await
                .unwrap_or_else(|e| Err(Status::internal(format!("query task failed: {e}"))))
        };
        let result = match tokio::time::timeout(self.limits.query_timeout, run).await {
            Ok(result) => result,
            Err(_) => Err({
                abort.abort();
                Status::deadline_exceeded(format!(
                    "query stopped after the server's {} s time limit (--query-timeout)",
                    self.limits.query_timeout.as_secs()
                ))
            }),
        };
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("error code={:?}", status.code()),
        };
        log::query(
            "executemany",
            &user,
            &outcome,
            started.elapsed(),
            *result.as_ref().unwrap_or(&0),
            0,
            &prepared.sql,
        );
        Ok(result? as i64)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = user_of(&request)?;
        let info = FlightInfo::decode(query.info)
            .map_err(|e| Status::invalid_argument(format!("bad FlightInfo: {e}")))?;
        self.cancel(&info, &user)?;
        Ok(ActionCancelQueryResult {
            // CANCEL_RESULT_CANCELLED
            result: 1,
        })
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
            action("CancelFlightInfo", "Cancel a query, pending or running"),
            action(
                "SetSessionOptions",
                "Set catalog, schema or aduana.string_view",
            ),
            action("GetSessionOptions", "The session's options"),
            action("CloseSession", "Forget the session's options"),
        ])
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<DoActionStream>, Status> {
        let user = user_of(&request)?;
        match request.get_ref().r#type.as_str() {
            "CancelFlightInfo" => {
                let message = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
                    .map_err(|e| {
                        Status::invalid_argument(format!("bad CancelFlightInfoRequest: {e}"))
                    })?;
                let info = message.info.ok_or_else(|| {
                    Status::invalid_argument("CancelFlightInfoRequest has no info")
                })?;
                self.cancel(&info, &user)?;
                Ok(action_result(CancelFlightInfoResult {
                    status: CancelStatus::Cancelled as i32,
                }))
            }
            "SetSessionOptions" => self.set_session_options(&request, &user),
            "GetSessionOptions" => {
                let options = self.client_options(&request, &user);
                Ok(action_result(GetSessionOptionsResult {
                    session_options: options.as_values(CATALOG),
                }))
            }
            "CloseSession" => {
                if let Some((id, _)) = self.owned_session(&request, &user) {
                    self.sessions.lock().unwrap().remove(&id);
                }
                Ok(action_result(CloseSessionResult {
                    status: CloseSessionStatus::Closed as i32,
                }))
            }
            other => Err(Status::invalid_argument(format!(
                "unknown action {other:?} (ListActions lists them)"
            ))),
        }
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        one_batch(metadata::catalogs(self.session.context()).build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder: GetDbSchemasBuilder = query.into_builder();
        one_batch(metadata::db_schemas(self.session.context(), builder).build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let user = user_of(&request)?;
        let keep_views = self.client_options(&request, &user).string_view;
        let builder: GetTablesBuilder = query.into_builder();
        let builder = metadata::tables(self.session.context(), builder, keep_views)
            .await
            .map_err(|e| datafusion_status(&e))?;
        one_batch(builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut builder = query.into_builder();
        for kind in ["LOCAL TEMPORARY", "TABLE", "VIEW"] {
            builder.append(kind);
        }
        one_batch(builder.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        one_batch(query.into_builder(&self.sql_info).build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.xdbc).schema();
        metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        one_batch(query.into_builder(&self.xdbc).build())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        metadata_info(query, &primary_keys_schema(), request.into_inner())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        // Warehouse tables declare no keys; an empty answer (not an error)
        // is what Tableau needs.
        one_batch(Ok(RecordBatch::new_empty(primary_keys_schema())))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The result schema of GetPrimaryKeys, as Flight SQL defines it.
fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}
