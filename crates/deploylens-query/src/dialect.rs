//! DuckDB and Postgres forms that DataFusion does not plan (or plans with another meaning),
//! rewritten before planning into forms it does, so that a query written the usual way runs and
//! means what its author meant:
//!
//! | written | planned as |
//! |---|---|
//! | `ORDER BY ALL` | `ORDER BY 1, 2, ...` over the select list |
//! | `substring(x FROM 'pattern')` | `regexp_extract(x, 'pattern', g)`: the first parenthesized group, or the whole match (Postgres' rule) |
//! | `to_char(ts, 'IYYY-IW')` with Postgres codes | `to_char(ts, '%G-%V')`; a code with no equivalent is an error, not text |
//! | `extract(epoch FROM x)`, `date_part('epoch', x)` | `epoch(x)`, which keeps the fraction of a second |
//! | `x AT TIME ZONE z` | `timezone(z, x)`, a name of its own in a GROUP BY |
//! | `FROM t CROSS JOIN unnest(t.list) AS s(item)`, `FROM t, unnest(...)`, `JOIN LATERAL unnest(...) ON true` | `FROM (SELECT t.*, unnest(t.list) AS item FROM t) AS t` |
//! | `FROM r PIVOT (agg FOR col IN (v1, v2))` | `SELECT * EXCLUDE (col, ...), agg FILTER (WHERE col = v1) AS v1, ... FROM r GROUP BY ALL` |
//!
//! ```
//! use datafusion::sql::parser::DFParser;
//! let mut statement = DFParser::parse_sql("SELECT extract(epoch FROM max(timestamp) - min(timestamp)) FROM events")
//!     .unwrap()
//!     .pop_front()
//!     .unwrap();
//! deploylens_query::dialect::rewrite(&mut statement).unwrap();
//! assert_eq!(statement.to_string(), "SELECT epoch(max(timestamp) - min(timestamp)) FROM events");
//! ```

use std::ops::ControlFlow;

use datafusion::common::DataFusionError;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    DateTimeField, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Join,
    JoinConstraint, JoinOperator, ObjectName, OrderByExpr, OrderByKind, PivotValueSource, Query, SelectItem,
    SetExpr, Statement as SqlStatement, TableAlias, TableFactor, TableWithJoins, Value, VisitMut, VisitorMut,
    visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::QueryError;

/// Rewrites every form of the table above, in every query of the statement (subqueries and CTEs
/// included). A form that cannot be rewritten faithfully is an error saying how to write it.
pub fn rewrite(statement: &mut DfStatement) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(s) => rewrite_statement(s),
        DfStatement::Explain(e) => rewrite(&mut e.statement),
        _ => Ok(()),
    }
}

fn rewrite_statement(statement: &mut SqlStatement) -> Result<(), QueryError> {
    match statement.visit(&mut Rewriter) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = QueryError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<QueryError> {
        expand_order_by_all(query);
        into_flow(lateral_unnest(query))
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<QueryError> {
        into_flow(pivot(factor))
    }

    fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<QueryError> {
        into_flow(rewrite_expr(expr))
    }
}

fn into_flow(r: Result<(), QueryError>) -> ControlFlow<QueryError> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

fn plan_error(message: String) -> QueryError {
    QueryError::DataFusion(DataFusionError::Plan(message))
}

/// Parses SQL this module wrote from pieces of the caller's own statement.
fn parse_expr(sql: &str) -> Result<SqlExpr, QueryError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| plan_error(format!("internal rewrite of {sql:?} failed: {e}")))
}

fn parse_query(sql: &str) -> Result<Query, QueryError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map(|q| *q)
        .map_err(|e| plan_error(format!("internal rewrite of {sql:?} failed: {e}")))
}

// ---------------------------------------------------------------- ORDER BY ALL

/// `ORDER BY ALL` (DuckDB's) as `ORDER BY 1, 2, ...` over the columns of the select list, which
/// DataFusion plans; a select list with a wildcard keeps it (and DataFusion says why).
fn expand_order_by_all(query: &mut Query) {
    let Some(order_by) = query.order_by.as_mut() else {
        return;
    };
    // DataFusion's dialect reads `ALL` there as a column named all.
    let options = match &order_by.kind {
        OrderByKind::All(options) => *options,
        OrderByKind::Expressions(list) => match list.as_slice() {
            [only] if matches!(&only.expr, SqlExpr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("all")) => {
                only.options
            }
            _ => return,
        },
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    if select
        .projection
        .iter()
        .any(|p| matches!(p, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)))
    {
        return;
    }
    let positions = (1..=select.projection.len())
        .map(|i| OrderByExpr {
            expr: SqlExpr::value(Value::Number(i.to_string(), false)),
            options,
            with_fill: None,
        })
        .collect();
    order_by.kind = OrderByKind::Expressions(positions);
}

// ---------------------------------------------------------------- expressions

fn rewrite_expr(expr: &mut SqlExpr) -> Result<(), QueryError> {
    let replacement = match expr {
        SqlExpr::Substring {
            expr: text,
            substring_from: Some(from),
            substring_for: None,
            ..
        } => match text_literal(from) {
            Some(pattern) => Some(substring_pattern(text, pattern)?),
            None => None,
        },
        SqlExpr::Extract {
            field: DateTimeField::Epoch,
            expr: inner,
            ..
        } => Some(parse_expr(&format!("epoch({inner})"))?),
        SqlExpr::AtTimeZone { timestamp, time_zone } => {
            Some(parse_expr(&format!("timezone({time_zone}, {timestamp})"))?)
        }
        SqlExpr::Function(f) => rewrite_call(&f.name, &f.args)?,
        _ => None,
    };
    if let Some(new) = replacement {
        *expr = new;
    }
    Ok(())
}

fn text_literal(e: &SqlExpr) -> Option<&str> {
    match e {
        SqlExpr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn quoted(text: &str) -> String {
    Value::SingleQuotedString(text.to_string()).to_string()
}

/// Postgres' `substring(text FROM pattern)`: the part matching the first parenthesized group
/// when the pattern has one, else the whole match; NULL without a match.
fn substring_pattern(text: &SqlExpr, pattern: &str) -> Result<SqlExpr, QueryError> {
    let re = regex::Regex::new(pattern)
        .map_err(|e| plan_error(format!("substring(... FROM {}): {e}", quoted(pattern))))?;
    let group = usize::from(re.captures_len() > 1);
    parse_expr(&format!("regexp_extract({text}, {}, {group})", quoted(pattern)))
}

/// Unnamed arguments of a call, or None when any is named or the call has none.
fn plain_args(args: &FunctionArguments) -> Option<Vec<&SqlExpr>> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

fn rewrite_call(name: &ObjectName, args: &FunctionArguments) -> Result<Option<SqlExpr>, QueryError> {
    let name = name.to_string().to_ascii_lowercase();
    let Some(args) = plain_args(args) else {
        return Ok(None);
    };
    match (name.as_str(), args.as_slice()) {
        ("date_part" | "datepart", [part, inner])
            if text_literal(part).is_some_and(|p| p.eq_ignore_ascii_case("epoch")) =>
        {
            Ok(Some(parse_expr(&format!("epoch({inner})"))?))
        }
        ("to_char", [value, format]) => match text_literal(format) {
            Some(f) if !f.contains('%') => {
                let chrono = postgres_format(f)?;
                Ok(Some(parse_expr(&format!(
                    "to_char({value}, {})",
                    quoted(&chrono)
                ))?))
            }
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// Postgres' template patterns with a strftime equivalent, longest first; `FM` (no padding) is
/// read before them. Numeric codes are taken in either case, as Postgres does.
const POSTGRES_CODES: &[(&str, &str, &str)] = &[
    // (code, strftime, strftime with FM)
    ("HH24", "%H", "%-H"),
    ("HH12", "%I", "%-I"),
    ("IYYY", "%G", "%G"),
    ("YYYY", "%Y", "%Y"),
    ("IDDD", "", ""),
    ("DDD", "%j", "%-j"),
    ("IYY", "", ""),
    ("YYY", "", ""),
    ("HH", "%I", "%-I"),
    ("MI", "%M", "%-M"),
    ("SS", "%S", "%-S"),
    ("MS", "%3f", "%3f"),
    ("US", "%6f", "%6f"),
    ("IY", "%g", "%g"),
    ("YY", "%y", "%-y"),
    ("IW", "%V", "%-V"),
    ("MM", "%m", "%-m"),
    ("DD", "%d", "%-d"),
    ("ID", "%u", "%u"),
    ("OF", "%:z", "%:z"),
    ("TZ", "%Z", "%Z"),
    ("WW", "", ""),
    ("CC", "", ""),
    ("Y", "", ""),
    ("Q", "", ""),
    ("D", "", ""),
    ("W", "", ""),
    ("J", "", ""),
];

/// Names, which Postgres distinguishes by case (`Month`, `MONTH`, `month`).
const POSTGRES_NAMES: &[(&str, &str)] = &[
    ("Month", "%B"),
    ("Mon", "%b"),
    ("Day", "%A"),
    ("Dy", "%a"),
    ("AM", "%p"),
    ("PM", "%p"),
    ("am", "%P"),
    ("pm", "%P"),
    ("MONTH", ""),
    ("month", ""),
    ("MON", ""),
    ("mon", ""),
    ("DAY", ""),
    ("day", ""),
    ("DY", ""),
    ("dy", ""),
];

/// A Postgres `to_char` template as a strftime format. Text in double quotes is kept, other
/// characters are copied, and a code with no strftime equivalent is an error naming it, so that
/// no answer is silently the template itself.
fn postgres_format(template: &str) -> Result<String, QueryError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let body = &rest[1..];
            let end = body.find('"').unwrap_or(body.len());
            out.push_str(&body[..end].replace('%', "%%"));
            rest = body.get(end + 1..).unwrap_or("");
            continue;
        }
        let (fill, after_fm) = match rest.get(..2) {
            Some(fm) if fm.eq_ignore_ascii_case("fm") => (true, &rest[2..]),
            _ => (false, rest),
        };
        if let Some((code, len)) = match_code(after_fm, fill)? {
            out.push_str(code);
            rest = &after_fm[len..];
            continue;
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// The strftime code and the length of the Postgres code at the start of `text`, if one is.
fn match_code(text: &str, fill: bool) -> Result<Option<(&'static str, usize)>, QueryError> {
    let unsupported = |code: &str| {
        plan_error(format!(
            "to_char: the Postgres code {code:?} has no equivalent here; strftime codes are \
             accepted too (to_char(ts, '%G-W%V'), '%Y-%m-%d %H:%M'), see docs/sql-cookbook.md"
        ))
    };
    for &(name, strftime) in POSTGRES_NAMES {
        if text.starts_with(name) {
            return match strftime {
                "" => Err(unsupported(name)),
                s => Ok(Some((s, name.len()))),
            };
        }
    }
    for &(code, plain, filled) in POSTGRES_CODES {
        let Some(head) = text.get(..code.len()) else {
            continue;
        };
        // A single letter is a code only in capitals: `to_char(ts, 'Week of YYYY')` keeps "eek of".
        let matches = if code.len() == 1 {
            head == code
        } else {
            head.eq_ignore_ascii_case(code)
        };
        if matches {
            return match if fill { filled } else { plain } {
                "" => Err(unsupported(head)),
                s => Ok(Some((s, code.len()))),
            };
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------- lateral unnest

/// `FROM t CROSS JOIN unnest(t.list) AS s(item)` (and the comma and `JOIN LATERAL ... ON true`
/// forms) as a derived table keeping `t`'s name with the item as one more column; references
/// `s.item` become `t.item`. DataFusion refuses the lateral reference to `t`. An empty or NULL
/// list gives no row, as the cross join does.
fn lateral_unnest(query: &mut Query) -> Result<(), QueryError> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(());
    };
    if !select.from.iter().any(|t| {
        unnest_parts(&t.relation).is_some() || t.joins.iter().any(|j| unnest_parts(&j.relation).is_some())
    }) {
        return Ok(());
    }
    let mut merged: Vec<TableWithJoins> = Vec::new();
    for t in std::mem::take(&mut select.from) {
        match merged.last_mut() {
            Some(previous) if t.joins.is_empty() && unnest_parts(&t.relation).is_some() => {
                previous.joins.push(Join {
                    relation: t.relation,
                    global: false,
                    join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
                })
            }
            _ => merged.push(t),
        }
    }
    let mut renames: Vec<(Ident, Ident, Ident)> = Vec::new();
    for t in &mut merged {
        while let Some(first) = t.joins.first() {
            if !is_cross(&first.join_operator) {
                break;
            }
            let Some((list, alias, column)) = unnest_parts(&first.relation) else {
                break;
            };
            let Some(base) = relation_name(&t.relation) else {
                break;
            };
            let sql = format!("SELECT {base}.*, unnest({list}) AS {column} FROM {}", t.relation);
            let subquery = parse_query(&sql)?;
            if let Some(alias) = alias {
                renames.push((alias, column.clone(), base.clone()));
            }
            t.relation = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(subquery),
                alias: Some(TableAlias {
                    explicit: true,
                    name: base,
                    columns: vec![],
                    at: None,
                }),
                sample: None,
            };
            t.joins.remove(0);
        }
    }
    select.from = merged;
    if !renames.is_empty() {
        let _ = visit_expressions_mut(query, |e| {
            if let SqlExpr::CompoundIdentifier(parts) = e
                && let [table, column] = parts.as_slice()
                && let Some((_, _, base)) = renames
                    .iter()
                    .find(|(alias, col, _)| same_ident(alias, table) && same_ident(col, column))
            {
                *e = SqlExpr::CompoundIdentifier(vec![base.clone(), column.clone()]);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    Ok(())
}

fn same_ident(a: &Ident, b: &Ident) -> bool {
    match (a.quote_style, b.quote_style) {
        (None, None) => a.value.eq_ignore_ascii_case(&b.value),
        _ => a.value == b.value,
    }
}

fn is_cross(op: &JoinOperator) -> bool {
    let on_true = |c: &JoinConstraint| match c {
        JoinConstraint::None => true,
        JoinConstraint::On(SqlExpr::Value(v)) => matches!(v.value, Value::Boolean(true)),
        _ => false,
    };
    match op {
        JoinOperator::CrossJoin(c) => on_true(c),
        JoinOperator::Join(c) | JoinOperator::Inner(c) => !matches!(c, JoinConstraint::None) && on_true(c),
        _ => false,
    }
}

/// The list, the table alias and the item's column name of a one-list `unnest` in FROM.
fn unnest_parts(factor: &TableFactor) -> Option<(SqlExpr, Option<Ident>, Ident)> {
    let (list, alias) = match factor {
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } => match array_exprs.as_slice() {
            [only] => (only.clone(), alias.as_ref()),
            _ => return None,
        },
        TableFactor::Function {
            lateral: true,
            name,
            args,
            with_ordinality: false,
            alias,
        } if name.to_string().eq_ignore_ascii_case("unnest") => match args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(only))] => (only.clone(), alias.as_ref()),
            _ => return None,
        },
        _ => return None,
    };
    let column = match alias {
        Some(a) => match a.columns.as_slice() {
            [] => a.name.clone(),
            [only] => only.name.clone(),
            _ => return None,
        },
        None => Ident::with_quote('"', "unnest"),
    };
    Some((list, alias.map(|a| a.name.clone()), column))
}

/// The name a relation is referred to by: its alias, else a table's own name.
fn relation_name(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.columns.is_empty().then(|| a.name.clone())
        }
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

// ---------------------------------------------------------------- PIVOT

/// The most columns one PIVOT makes: values times aggregates grows as the square of the text's
/// length, and each is an aggregate to compute.
pub const MAX_PIVOT_COLUMNS: usize = 1000;

/// `r PIVOT (agg FOR col IN (v1 [AS a1], ...))` as a grouping of `r` by every column that is
/// neither `col` nor an argument of an aggregate, one `agg FILTER (WHERE col = v)` per value.
fn pivot(factor: &mut TableFactor) -> Result<(), QueryError> {
    let TableFactor::Pivot {
        table,
        aggregate_functions,
        value_column,
        value_source,
        default_on_null,
        alias,
    } = factor
    else {
        return Ok(());
    };
    let [column] = value_column.as_slice() else {
        return Err(plan_error("PIVOT: one column after FOR is supported".into()));
    };
    let PivotValueSource::List(values) = value_source else {
        return Err(plan_error(
            "PIVOT: list the values after IN, e.g. IN ('success', 'failure')".into(),
        ));
    };
    let mut excluded: Vec<String> = vec![
        last_name(column).ok_or_else(|| plan_error(format!("PIVOT: FOR takes a column, got {column}")))?,
    ];
    for aggregate in aggregate_functions.iter() {
        let _ = visit_expressions(&aggregate.expr, |e| {
            if let Some(name) = last_name(e)
                && !excluded.contains(&name)
            {
                excluded.push(name);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let cells = values.len().saturating_mul(aggregate_functions.len());
    if cells > MAX_PIVOT_COLUMNS {
        return Err(plan_error(format!(
            "PIVOT would make {cells} columns ({} values times {} aggregates); the limit is {MAX_PIVOT_COLUMNS}",
            values.len(),
            aggregate_functions.len()
        )));
    }
    let many = aggregate_functions.len() > 1;
    let mut items = Vec::new();
    for value in values.iter() {
        let value_name = value.alias.as_ref().map(|a| a.value.clone()).unwrap_or_else(|| {
            text_literal(&value.expr)
                .map(str::to_string)
                .unwrap_or_else(|| value.expr.to_string())
        });
        for aggregate in aggregate_functions.iter() {
            let SqlExpr::Function(call) = &aggregate.expr else {
                return Err(plan_error(format!(
                    "PIVOT: {} is not an aggregate call such as count(*) or sum(duration_seconds)",
                    aggregate.expr
                )));
            };
            let mut call = call.clone();
            let condition = format!("{column} = {}", value.expr);
            let filter = match &call.filter {
                Some(old) => format!("({old}) AND {condition}"),
                None => condition,
            };
            call.filter = Some(Box::new(parse_expr(&filter)?));
            let mut cell = call.to_string();
            if let Some(default) = default_on_null {
                cell = format!("coalesce({cell}, {default})");
            }
            let name = match (many, &aggregate.alias) {
                (false, _) => value_name.clone(),
                (true, Some(a)) => format!("{value_name}_{}", a.value),
                (true, None) => format!("{value_name}_{}", aggregate.expr),
            };
            items.push(format!("{cell} AS {}", Ident::with_quote('"', name)));
        }
    }
    let excluded: Vec<String> = excluded.iter().map(|n| Ident::new(n).to_string()).collect();
    let sql = format!(
        "SELECT * EXCLUDE ({}), {} FROM {table} GROUP BY ALL",
        excluded.join(", "),
        items.join(", ")
    );
    let subquery = parse_query(&sql)?;
    let alias = alias.clone().unwrap_or(TableAlias {
        explicit: true,
        name: Ident::new("pivot"),
        columns: vec![],
        at: None,
    });
    *factor = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(subquery),
        alias: Some(alias),
        sample: None,
    };
    Ok(())
}

/// A column reference's own name (`status`, `e.status`).
fn last_name(e: &SqlExpr) -> Option<String> {
    match e {
        SqlExpr::Identifier(i) => Some(i.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn rewritten(sql: &str) -> Result<String, QueryError> {
        let mut statement = DFParser::parse_sql(sql)
            .expect("test SQL parses")
            .pop_front()
            .expect("one statement");
        rewrite(&mut statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn postgres_to_char_codes_become_strftime() {
        let cases = [
            ("IYYY-IW", "%G-%V"),
            ("YYYY-MM-DD HH24:MI:SS", "%Y-%m-%d %H:%M:%S"),
            ("yyyy-mm-dd", "%Y-%m-%d"),
            ("FMDD Month YYYY", "%-d %B %Y"),
            ("Dy, HH12 AM", "%a, %I %p"),
            ("\"week\" IW, 100%", "week %V, 100%%"),
            ("HH24:MI:SS.MS OF", "%H:%M:%S.%3f %:z"),
        ];
        for (pg, strftime) in cases {
            assert_eq!(postgres_format(pg).expect(pg), strftime, "{pg}");
        }
        for unsupported in ["Q", "YYYY-WW", "MONTH", "J", "CC"] {
            let e = postgres_format(unsupported).expect_err(unsupported).to_string();
            assert!(e.contains("has no equivalent"), "{unsupported}: {e}");
        }
    }

    #[test]
    fn a_strftime_to_char_is_left_alone() {
        let sql = "SELECT to_char(timestamp, '%Y-%m') FROM events";
        assert_eq!(rewritten(sql).unwrap(), sql);
    }

    #[test]
    fn substring_from_a_pattern_takes_the_first_group_or_the_match() {
        assert_eq!(
            rewritten("SELECT substring(e FROM 'after ([0-9]+)s') FROM t").unwrap(),
            "SELECT regexp_extract(e, 'after ([0-9]+)s', 1) FROM t"
        );
        assert_eq!(
            rewritten("SELECT substring(e FROM '[0-9]+') FROM t").unwrap(),
            "SELECT regexp_extract(e, '[0-9]+', 0) FROM t"
        );
        // A position stays a position.
        assert_eq!(
            rewritten("SELECT substring(e FROM 2 FOR 3) FROM t").unwrap(),
            "SELECT SUBSTRING(e FROM 2 FOR 3) FROM t"
        );
        assert!(rewritten("SELECT substring(e FROM '(') FROM t").is_err());
    }

    #[test]
    fn lateral_unnest_becomes_a_derived_table_keeping_the_outer_name() {
        let expected = "SELECT e.repository, e.service FROM (SELECT e.*, unnest(e.services) AS service FROM events AS e) AS e";
        for sql in [
            "SELECT e.repository, s.service FROM events AS e CROSS JOIN unnest(e.services) AS s(service)",
            "SELECT e.repository, s.service FROM events AS e, unnest(e.services) AS s(service)",
            "SELECT e.repository, s.service FROM events AS e JOIN LATERAL unnest(e.services) AS s(service) ON true",
        ] {
            assert_eq!(rewritten(sql).unwrap(), expected, "{sql}");
        }
        assert_eq!(
            rewritten("SELECT service FROM events, unnest(services) AS service").unwrap(),
            "SELECT service FROM (SELECT events.*, unnest(services) AS service FROM events) AS events"
        );
    }

    #[test]
    fn pivot_becomes_filtered_aggregates_grouped_by_the_other_columns() {
        assert_eq!(
            rewritten(
                "SELECT * FROM (SELECT repository, status FROM events) AS d \
                 PIVOT (count(*) FOR status IN ('success', 'failure' AS failed))"
            )
            .unwrap(),
            "SELECT * FROM (SELECT * EXCLUDE (status), count(*) FILTER (WHERE status = 'success') AS \"success\", \
             count(*) FILTER (WHERE status = 'failure') AS \"failed\" FROM (SELECT repository, status FROM events) AS d \
             GROUP BY ALL) AS pivot"
        );
    }

    #[test]
    fn a_pivot_too_wide_is_refused_before_planning() {
        let values: Vec<String> = (0..40).map(|i| format!("'v{i}'")).collect();
        let aggregates: Vec<String> = (0..30).map(|i| format!("max(c{i}) AS m{i}")).collect();
        let sql = format!(
            "SELECT * FROM t PIVOT ({} FOR k IN ({}))",
            aggregates.join(", "),
            values.join(", ")
        );
        let e = rewritten(&sql).expect_err("1200 columns").to_string();
        assert!(e.contains("1200 columns"), "{e}");
    }

    #[test]
    fn epoch_and_time_zones_get_names_of_their_own() {
        assert_eq!(
            rewritten(
                "SELECT date_part('epoch', d), extract(hour FROM ts AT TIME ZONE 'Europe/Berlin') FROM t"
            )
            .unwrap(),
            "SELECT epoch(d), EXTRACT(HOUR FROM timezone('Europe/Berlin', ts)) FROM t"
        );
    }

    #[test]
    fn rewrites_reach_subqueries_and_ctes() {
        assert_eq!(
            rewritten("WITH w AS (SELECT a, b FROM t ORDER BY ALL) SELECT * FROM (SELECT extract(epoch FROM x) FROM w) AS q").unwrap(),
            "WITH w AS (SELECT a, b FROM t ORDER BY 1, 2) SELECT * FROM (SELECT epoch(x) FROM w) AS q"
        );
    }
}
