//! The statements drivers send around their queries, answered here without the engine.
//!
//! psycopg opens a transaction before its first query, SQLAlchemy asks `SHOW transaction
//! isolation level`, JDBC sets `extra_float_digits`. The data is read-only and a query always
//! sees one snapshot, so transactions are accepted and change nothing. `SET` is accepted for the
//! client-side parameters drivers set and refused for everything else (DataFusion's settings,
//! `statement_timeout`), so that no session can lift a limit of the server.

use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};

use deploylens_query::QueryError;

use super::startup::SERVER_VERSION;

/// What a statement is, for this face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// A query for the guarded runner (or a statement it will refuse, with its own words).
    Query,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `ROLLBACK`, `END`, `ABORT`: ends the transaction, with this tag.
    End(&'static str),
    /// A statement acknowledged with this tag that changes nothing.
    Acknowledge(&'static str),
    /// `SHOW name`: one row, one column.
    Show {
        /// The column's name.
        name: String,
        /// Its value.
        value: String,
    },
}

/// Parameters a `SET` may name: they shape how a client formats values, none of them a limit.
const CLIENT_PARAMETERS: &[&str] = &[
    "application_name",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "standard_conforming_strings",
    "bytea_output",
    "lc_messages",
];

/// Sorts a parsed statement.
pub(super) fn classify(statement: &Statement) -> Result<Command, QueryError> {
    Ok(match statement {
        Statement::StartTransaction { .. } => Command::Begin,
        Statement::Commit { .. } => Command::End("COMMIT"),
        // To a savepoint, the transaction goes on.
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Command::Acknowledge("ROLLBACK"),
        Statement::Rollback { .. } => Command::End("ROLLBACK"),
        Statement::Savepoint { .. } => Command::Acknowledge("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Command::Acknowledge("RELEASE"),
        Statement::Discard { .. } => Command::Acknowledge("DISCARD ALL"),
        Statement::Deallocate { .. } => Command::Acknowledge("DEALLOCATE"),
        Statement::Set(set) => check_set(set)?,
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            show(&name)?
        }
        _ => Command::Query,
    })
}

fn check_set(set: &Set) -> Result<Command, QueryError> {
    match set {
        Set::SingleAssignment { variable, .. } => {
            let name = variable.to_string().to_lowercase();
            if CLIENT_PARAMETERS.contains(&name.as_str()) {
                Ok(Command::Acknowledge("SET"))
            } else {
                Err(QueryError::Refused(format!(
                    "SET {name} is not allowed: the session settings are fixed (a client may set {})",
                    CLIENT_PARAMETERS.join(", ")
                )))
            }
        }
        Set::SetTimeZone { value, .. } if is_utc(value) => Ok(Command::Acknowledge("SET")),
        Set::SetTimeZone { .. } => Err(QueryError::Refused(
            "SET TIME ZONE: timestamps are served in UTC only; convert with AT TIME ZONE".into(),
        )),
        Set::SetNames { .. } | Set::SetNamesDefault {} | Set::SetTransaction { .. } => {
            Ok(Command::Acknowledge("SET"))
        }
        other => Err(QueryError::Refused(format!(
            "{} is not allowed: the session settings are fixed",
            other
                .to_string()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

fn is_utc(value: &Expr) -> bool {
    let text = match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    };
    matches!(
        text.to_lowercase().as_str(),
        "utc" | "etc/utc" | "gmt" | "z" | "zulu" | "local" | "default" | "+00:00" | "0"
    )
}

/// The answer to `SHOW name`, from the fixed settings of every session.
fn show(name: &str) -> Result<Command, QueryError> {
    let value = match name {
        "server_version" => SERVER_VERSION,
        "server_version_num" => "160006",
        "server_encoding" | "client_encoding" => "UTF8",
        "transaction isolation level" | "transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "timezone" | "time zone" => "UTC",
        "datestyle" => "ISO, MDY",
        "intervalstyle" => "postgres",
        "search_path" => "public",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C",
        _ => {
            return Err(QueryError::Refused(format!(
                "unrecognized configuration parameter \"{name}\""
            )));
        }
    };
    let column = match name {
        "transaction isolation level" => "transaction_isolation",
        "time zone" => "timezone",
        other => other,
    };
    Ok(Command::Show {
        name: column.to_string(),
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn of(sql: &str) -> Result<Command, QueryError> {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        classify(&statements[0])
    }

    #[test]
    fn driver_statements_are_answered_and_limits_cannot_be_lifted() {
        assert_eq!(of("BEGIN").unwrap(), Command::Begin);
        assert_eq!(of("ROLLBACK").unwrap(), Command::End("ROLLBACK"));
        assert_eq!(of("SAVEPOINT a").unwrap(), Command::Acknowledge("SAVEPOINT"));
        assert_eq!(
            of("ROLLBACK TO SAVEPOINT a").unwrap(),
            Command::Acknowledge("ROLLBACK")
        );
        assert_eq!(
            of("SET extra_float_digits = 3").unwrap(),
            Command::Acknowledge("SET")
        );
        assert_eq!(of("SET TIME ZONE 'UTC'").unwrap(), Command::Acknowledge("SET"));
        assert!(matches!(
            of("SHOW transaction isolation level").unwrap(),
            Command::Show { value, .. } if value == "read committed"
        ));
        assert_eq!(of("SELECT 1").unwrap(), Command::Query);
        for refused in [
            "SET statement_timeout = 0",
            "SET datafusion.execution.batch_size = 1",
            "SET TIME ZONE 'Europe/Berlin'",
            "SHOW data_directory",
        ] {
            assert!(matches!(of(refused), Err(QueryError::Refused(_))), "{refused}");
        }
    }
}
