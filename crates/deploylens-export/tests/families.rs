//! Every declared family renders from the bundled test ecosystem, with samples: a query whose
//! column was renamed fails here instead of silently dropping a series.

use deploylens_collector::{DiscoveryOptions, IngestOptions, Ingestor, discover};
use deploylens_export::{FAMILIES, Part, RenderOptions, render};
use deploylens_query::{Engine, EngineOptions};

#[tokio::test(flavor = "multi_thread")]
async fn every_family_renders_with_samples_from_the_test_ecosystem() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/ecosystem");
    let data = tempfile::tempdir().unwrap();
    let found = discover(&[root], &DiscoveryOptions::default());
    let mut ingestor = Ingestor::open(
        &deploylens_store::Location::local(data.path()).unwrap(),
        &deploylens_store::WriterOptions {
            collector_id: "test".into(),
        },
        IngestOptions::default(),
    )
    .unwrap();
    ingestor.ingest(&found.files, &mut |_| {}).unwrap();
    drop(ingestor);
    let engine = Engine::open(
        &deploylens_store::Location::local(data.path()).unwrap(),
        None,
        EngineOptions::default(),
    )
    .await
    .unwrap();
    // The windows end at the end of the test ecosystem's history.
    let end = deploylens_query::parse_timestamp("2025-11-21").unwrap();
    let opts = RenderOptions {
        windows: vec![("30d".into(), 30 * 86_400)],
        ..RenderOptions::default()
    };
    let mut names = Vec::new();
    for part in [Part::AfterCommit, Part::Windowed] {
        let rendered = render(&engine, end, part, &opts)
            .await
            .expect("every family renders");
        for f in rendered.families {
            assert!(!f.is_empty(), "{} has no samples", f.name());
            names.push(f.name().to_string());
        }
        assert!(rendered.dropped.values().all(|n| *n == 0));
    }
    names.sort();
    let mut declared: Vec<String> = FAMILIES.iter().map(|f| f.name.to_string()).collect();
    declared.sort();
    assert_eq!(names, declared, "every declared family is rendered, once");
}
