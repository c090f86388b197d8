//! The views of `queries/views/` as the engine serves them: computed once per snapshot, shared
//! by sibling engines, and the same rows whether kept in memory or computed per query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use deploylens_collector::{DiscoveryOptions, IngestOptions, Ingestor, discover};
use deploylens_query::arrow::util::pretty::pretty_format_batches;
use deploylens_query::{Engine, EngineOptions, MaterializedView};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ecosystem")
}

/// Ingests the bundled ecosystem into a fresh data directory.
fn ingested() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let found = discover(&[testdata()], &DiscoveryOptions::default());
    assert!(!found.files.is_empty(), "testdata has event files");
    let mut ingestor = Ingestor::open(
        &deploylens_store::Location::local(dir.path()).unwrap(),
        &deploylens_store::WriterOptions {
            collector_id: "test".into(),
        },
        IngestOptions::default(),
    )
    .expect("open store");
    let report = ingestor.ingest(&found.files, &mut |_| {}).expect("ingest");
    assert!(report.events > 0);
    dir
}

const VIEWS_SQL: &[&str] = &[
    "SELECT * FROM deployments ORDER BY deployment_id",
    "SELECT * FROM restores ORDER BY repository, environment, failed_at",
    "SELECT * FROM failure_occurrences ORDER BY event_id",
];

async fn render(engine: &Engine, sql: &str) -> String {
    let batches = engine.sql_collect(sql).await.expect(sql);
    pretty_format_batches(&batches).expect("format").to_string()
}

async fn provider(engine: &Engine, name: &str) -> Arc<dyn TableProvider> {
    engine.context().table_provider(name).await.expect(name)
}

fn kept(p: &Arc<dyn TableProvider>) -> bool {
    let any: &dyn std::any::Any = p.as_ref();
    any.downcast_ref::<MaterializedView>()
        .expect("a materialized view")
        .is_kept()
}

#[tokio::test]
async fn a_view_is_computed_once_and_shared_with_siblings() {
    let dir = ingested();
    let engine = Engine::open(
        &deploylens_store::Location::local(dir.path()).unwrap(),
        None,
        EngineOptions::default(),
    )
    .await
    .expect("engine");
    let deployments = provider(&engine, "deployments").await;
    assert!(!kept(&deployments), "nothing is computed before a query reads it");
    let first = render(&engine, VIEWS_SQL[0]).await;
    assert!(kept(&deployments), "the first read keeps the rows");
    assert_eq!(render(&engine, VIEWS_SQL[0]).await, first);

    let sibling = engine.sibling(EngineOptions::default()).expect("sibling");
    let shared = provider(&sibling, "deployments").await;
    assert!(Arc::ptr_eq(&deployments, &shared), "siblings share the view");
    assert!(kept(&shared));
    assert_eq!(render(&sibling, VIEWS_SQL[0]).await, first);
}

#[tokio::test]
async fn kept_rows_equal_rows_computed_per_query() {
    let dir = ingested();
    let kept_engine = Engine::open(
        &deploylens_store::Location::local(dir.path()).unwrap(),
        None,
        EngineOptions::default(),
    )
    .await
    .expect("engine");
    let over_budget = EngineOptions {
        view_cache_bytes: 1,
        ..EngineOptions::default()
    };
    let computed = Engine::open(
        &deploylens_store::Location::local(dir.path()).unwrap(),
        None,
        over_budget,
    )
    .await
    .expect("engine");
    for sql in VIEWS_SQL {
        let a = render(&kept_engine, sql).await;
        let b = render(&computed, sql).await;
        assert!(a.lines().count() > 4, "{sql} returns rows");
        assert_eq!(a, b, "{sql}");
    }
    assert!(kept(&provider(&kept_engine, "restores").await));
    assert!(
        !kept(&provider(&computed, "deployments").await),
        "over its budget a view is not kept"
    );
}
