//! The canned queries: `queries/*.sql`, embedded at build time. Each file opens with a header:
//!
//! ```sql
//! -- name: success_rate
//! -- description: Deployments and success ratio per repository and environment.
//! -- params: start, end
//! ```
//!
//! Parameters are DataFusion placeholders: `$start` and `$end` bound the window (`[start, end)`,
//! UTC), `$window_days` is its length in days. Files under `queries/views/` define views.

include!(concat!(env!("OUT_DIR"), "/queries.rs"));

/// A query file and its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedQuery {
    /// The `name:` of the header (else the file name without `.sql`).
    pub name: String,
    /// The `description:` of the header, continuation lines joined.
    pub description: String,
    /// The placeholders listed by `params:` (such as `start`, `end`); empty for `none`.
    pub params: Vec<String>,
    /// The whole file, header included.
    pub sql: &'static str,
    /// `views/<name>.sql` files define views rather than reports.
    pub is_view: bool,
}

fn parse(path: &str, sql: &'static str) -> CannedQuery {
    let mut name = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".sql")
        .to_string();
    let mut description = String::new();
    let mut params = Vec::new();
    for raw in sql.lines().take_while(|l| l.starts_with("--")) {
        let line = raw.trim_start_matches('-').trim();
        // Indented comment lines continue the description.
        if raw.starts_with("--   ") && !description.is_empty() {
            description.push(' ');
            description.push_str(line);
        } else if let Some(v) = line.strip_prefix("name:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("description:") {
            description = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("params:") {
            params = v
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty() && p != "none")
                .collect();
        }
    }
    CannedQuery {
        name,
        description,
        params,
        sql,
        is_view: path.starts_with("views/"),
    }
}

/// Every query file, views first (in file order), then the reports by name.
pub fn canned_queries() -> Vec<CannedQuery> {
    QUERY_FILES.iter().map(|(path, sql)| parse(path, sql)).collect()
}

/// A report query by name.
pub fn canned_query(name: &str) -> Option<CannedQuery> {
    canned_queries()
        .into_iter()
        .find(|q| !q.is_view && q.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_has_a_header_naming_it_after_its_file() {
        let queries = canned_queries();
        assert!(queries.iter().any(|q| q.is_view && q.name == "deployments"));
        for q in &queries {
            assert!(!q.description.is_empty(), "{} has no description", q.name);
            assert!(
                q.sql.contains(&format!("-- name: {}", q.name)),
                "{}: the name must match the file",
                q.name
            );
        }
    }
}
