//! Queries over the Postgres protocol: the simple flow (`Query`) and the extended one (`Parse`,
//! `Bind`, `Describe`, `Execute`), both through the guarded runner of `/api/sql`.
//!
//! Text from a client is parsed on the SQL runtime, whose threads have stacks for deep
//! expressions, by `datafusion-pg-catalog`'s parser, which rewrites the catalog idioms of
//! psql and drivers (`'events'::regclass`, `OPERATOR(pg_catalog.~)`...) into SQL DataFusion
//! plans. A prepared statement keeps the rewritten text and the shape of its answer, never a
//! plan: each execution is planned against the newest snapshot, so a statement prepared an hour
//! ago still sees the events that arrived since.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{DataFusionError, ParamValues};
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire;
use futures::{Sink, SinkExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;
use pgwire::types::format::FormatOptions;

use deploylens_query::{Described, QueryError};

use super::session::{Command, classify};
use crate::state::AppState;

/// Built once: it parses its own rewrite tables when made.
static PARSER: LazyLock<PostgresCompatibilityParser> = LazyLock::new(PostgresCompatibilityParser::new);

/// One statement as the client sent it, rewritten, with what it is.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    sql: String,
    command: Command,
    /// For queries: the shape of the answer, known at `Parse`.
    described: Option<Described>,
}

pub(super) struct Queries {
    state: AppState,
    parser: Arc<Parser>,
}

impl Queries {
    pub(super) fn new(state: AppState) -> Self {
        Queries {
            parser: Arc::new(Parser { state: state.clone() }),
            state,
        }
    }
}

/// Splits client text into statements, each rewritten and sorted, on the SQL runtime.
async fn split(state: &AppState, text: &str) -> Result<Vec<(String, Command)>, QueryError> {
    let limit = state.sql.limits().max_sql_bytes;
    if text.len() > limit {
        return Err(QueryError::TooLong {
            bytes: text.len(),
            limit,
        });
    }
    let text = text.to_string();
    state
        .sql
        .run_task(async move {
            let statements = PARSER
                .parse(&text)
                .map_err(|e| QueryError::DataFusion(DataFusionError::SQL(Box::new(e), None)))?;
            statements
                .iter()
                .map(|s| Ok((s.to_string(), classify(s)?)))
                .collect()
        })
        .await
}

/// Runs one statement: a query through the runner, the rest answered by [`super::session`].
async fn execute<C>(
    state: &AppState,
    client: &mut C,
    sql: &str,
    command: &Command,
    params: ParamValues,
    format: &Format,
) -> PgWireResult<Response>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    match command {
        Command::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
        Command::End(tag) => Ok(Response::TransactionEnd(Tag::new(tag))),
        Command::Acknowledge(tag) => Ok(Response::Execution(Tag::new(tag))),
        Command::Show { name, value } => {
            let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(vec![value.as_str()]))],
            )
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
            rows(&schema, vec![batch], format, options).map(Response::Query)
        }
        Command::Query => {
            let engine = state.engines().await.sql.clone();
            let result = state
                .sql
                .run_with(engine, sql.to_string(), params)
                .await
                .map_err(pg_error)?;
            for w in &result.warnings {
                let notice = ErrorInfo::new("WARNING".into(), "01000".into(), w.clone());
                client
                    .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(notice)))
                    .await?;
            }
            if result.truncated {
                let max = state.sql.limits().max_rows.unwrap_or(usize::MAX);
                let notice = ErrorInfo::new(
                    "WARNING".into(),
                    "01000".into(),
                    format!("the result was cut at {max} rows (--sql-max-rows); add LIMIT or WHERE"),
                );
                client
                    .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(notice)))
                    .await?;
            }
            rows(&result.schema, result.batches, format, options).map(Response::Query)
        }
    }
}

/// Arrow batches as Postgres rows, typed by `arrow-pg` (timestamps with a zone as
/// `timestamptz`, lists as arrays, `Int64` as `bigint`).
fn rows(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(arrow_schema_to_pg_fields(schema, format, Some(options))?);
    let encoded = fields.clone();
    let rows = batches
        .into_iter()
        .flat_map(move |batch| encode_recordbatch(encoded.clone(), batch));
    Ok(QueryResponse::new(fields, futures::stream::iter(rows)))
}

/// A query's error as Postgres reports errors, with the SQLSTATE clients branch on.
fn pg_error(e: QueryError) -> PgWireError {
    let code = match &e {
        QueryError::Refused(_) => "42501",
        QueryError::Busy(_) => "53300",
        QueryError::Timeout(_) => "57014",
        QueryError::ResourcesExhausted(_) => "53200",
        QueryError::TooDeep { .. } | QueryError::TooLong { .. } => "54001",
        QueryError::DataFusion(DataFusionError::SQL(..)) => "42601",
        QueryError::UnknownTable { .. } => "42P01",
        QueryError::DataFusion(_) | QueryError::UnknownQuery(_) => "42000",
        QueryError::Store(_) | QueryError::View { .. } | QueryError::Internal(_) => "XX000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        e.to_string(),
    )))
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = split(&self.state, query).await.map_err(pg_error)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for (sql, command) in &statements {
            let empty = ParamValues::List(Vec::new());
            match execute(&self.state, client, sql, command, empty, &Format::UnifiedText).await {
                Ok(response) => responses.push(response),
                // As Postgres does: the statements before the failing one keep their answers,
                // the ones after it are not run.
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let params = match &prepared.described {
            Some(described) => {
                let types: Vec<Option<&DataType>> = described.parameters.iter().map(Option::as_ref).collect();
                deserialize_parameters(portal, &types)?
            }
            None => ParamValues::List(Vec::new()),
        };
        execute(
            &self.state,
            client,
            &prepared.sql,
            &prepared.command,
            params,
            &portal.result_column_format,
        )
        .await
    }
}

pub(super) struct Parser {
    state: AppState,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = split(&self.state, sql).await.map_err(pg_error)?;
        if statements.len() > 1 {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "42601".into(),
                "cannot insert multiple commands into a prepared statement".into(),
            ))));
        }
        let Some((sql, command)) = statements.pop() else {
            return Ok(None);
        };
        let described = match command {
            Command::Query => {
                let engine = self.state.engines().await.sql.clone();
                Some(
                    self.state
                        .sql
                        .describe(engine, sql.clone())
                        .await
                        .map_err(pg_error)?,
                )
            }
            _ => None,
        };
        Ok(Some(Prepared {
            sql,
            command,
            described,
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let Some(described) = &stmt.described else {
            return Ok(Vec::new());
        };
        described
            .parameters
            .iter()
            .map(|t| match t {
                Some(t) => into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(&self, stmt: &Prepared, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match (&stmt.command, &stmt.described) {
            (Command::Query, Some(described)) => arrow_schema_to_pg_fields(&described.schema, format, None),
            (Command::Show { name, .. }, _) => arrow_schema_to_pg_fields(
                &Schema::new(vec![Field::new(name, DataType::Utf8, false)]),
                format,
                None,
            ),
            _ => Ok(Vec::new()),
        }
    }
}
