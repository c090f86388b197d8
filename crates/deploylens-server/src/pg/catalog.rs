//! What Postgres clients look for on connect, added to the client SQL engine: the
//! `pg_catalog` schema of `datafusion-pg-catalog` and the few functions its catalog queries
//! name that neither it nor DataFusion has.

use std::sync::Arc;

use datafusion_postgres::pgwire;

use super::startup;

/// Adds what Postgres clients look for on connect to an engine's session: the `pg_catalog`
/// schema (`pg_class`, `pg_attribute`... over the engine's own tables), the functions psql and
/// drivers call (`pg_table_is_visible`, `format_type`, `current_schema`...) and a `version()`
/// that names a Postgres version, which SQLAlchemy parses.
pub(crate) fn install_catalog(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<(), deploylens_query::QueryError> {
    use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
    let catalog = ctx.state().config().options().catalog.default_catalog.clone();
    datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog(ctx, &catalog, EmptyContextProvider)
        .map_err(|e| deploylens_query::QueryError::DataFusion(*e))?;
    ctx.register_udf(version_udf());
    ctx.register_udf(to_regtype_udf());
    Ok(())
}

fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    let text = format!(
        "PostgreSQL {} on deploylens {}, Apache DataFusion {}",
        startup::SERVER_VERSION,
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    );
    create_udf(
        "version",
        vec![],
        datafusion::arrow::datatypes::DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `to_regtype(name)`: the oid of a built-in type, or NULL (psycopg asks it of `hstore` and
/// other extension types on connect, and takes NULL for "not installed").
fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use std::collections::HashMap;
    use std::sync::LazyLock;

    use datafusion::arrow::array::{Array, AsArray, Int32Array};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use pgwire::api::Type;

    static OIDS: LazyLock<HashMap<String, i32>> = LazyLock::new(|| {
        let mut names: HashMap<String, i32> = (0..10_000u32)
            .filter_map(|oid| Type::from_oid(oid).map(|t| (t.name().to_string(), oid as i32)))
            .collect();
        for (alias, name) in [
            ("integer", "int4"),
            ("int", "int4"),
            ("bigint", "int8"),
            ("smallint", "int2"),
            ("real", "float4"),
            ("double precision", "float8"),
            ("boolean", "bool"),
            ("character varying", "varchar"),
            ("timestamp without time zone", "timestamp"),
            ("timestamp with time zone", "timestamptz"),
        ] {
            if let Some(oid) = names.get(name).copied() {
                names.insert(alias.to_string(), oid);
            }
        }
        names
    });
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrays[0].as_string::<i32>();
            let oids: Int32Array = (0..names.len())
                .map(|i| {
                    if names.is_null(i) {
                        return None;
                    }
                    let name = names
                        .value(i)
                        .trim()
                        .trim_start_matches("pg_catalog.")
                        .to_lowercase();
                    OIDS.get(&name).copied()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}
