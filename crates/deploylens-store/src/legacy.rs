//! The data directories of deploylens before the store was a Delta table: folders
//! `store/commit-<seq>/{events,rejects}.parquet`, each `events.parquet` carrying its commit's
//! manifest in its footer. [`migrate_if_needed`] converts one on first open: the Parquet files
//! (their schema is the tables' schema) are copied into the two tables in one commit, with the
//! merged read positions as the collector's state, and the old folder is renamed to
//! `store.migrated/` (kept, for a person to delete).

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::StoreError;
use crate::location::{Location, Table};
use crate::manifest::{Manifest, merge_checkpoints};
use crate::tags::FileTags;

/// One old commit folder.
#[derive(Debug, Clone)]
struct OldCommit {
    dir: PathBuf,
    manifest: Manifest,
}

/// Reads the manifest from an old commit's `events.parquet` footer.
pub fn read_manifest(path: &Path) -> Result<Manifest, StoreError> {
    let bad = |reason: String| StoreError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|source| StoreError::Io {
        action: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(e.to_string()))?;
    let kv = reader.metadata().file_metadata().key_value_metadata();
    let text = kv
        .and_then(|kv| kv.iter().find(|e| e.key == Manifest::KEY))
        .and_then(|e| e.value.clone())
        .ok_or_else(|| bad("no deploylens manifest in the footer".into()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("bad manifest: {e}")))
}

/// The live commits of an old store (those no compaction replaced), oldest first.
fn live_commits(store_dir: &Path) -> Result<Vec<OldCommit>, StoreError> {
    let io = |source| StoreError::Io {
        action: "listing",
        path: store_dir.to_path_buf(),
        source,
    };
    let mut commits = Vec::new();
    for entry in fs::read_dir(store_dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix("commit-"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        match read_manifest(&entry.path().join("events.parquet")) {
            Ok(manifest) if manifest.seq == seq => commits.push(OldCommit {
                dir: entry.path(),
                manifest,
            }),
            _ => {
                tracing::warn!(dir = %entry.path().display(), "skipping an old commit whose manifest cannot be read")
            }
        }
    }
    commits.sort_by_key(|c| c.manifest.seq);
    let replaced: HashSet<u64> = commits
        .iter()
        .flat_map(|c| c.manifest.replaces.iter().copied())
        .collect();
    commits.retain(|c| !replaced.contains(&c.manifest.seq));
    Ok(commits)
}

/// Whether a local data directory still holds a store in the old layout.
pub fn needs_migration(location: &Location) -> bool {
    location
        .local_path()
        .is_some_and(|root| root.join("store").is_dir())
}

/// Converts an old data directory (see the module documentation); does nothing otherwise.
pub async fn migrate_if_needed(location: &Location, collector: &str) -> Result<bool, StoreError> {
    if !needs_migration(location) {
        return Ok(false);
    }
    let Some(root) = location.local_path() else {
        return Ok(false);
    };
    let store_dir = root.join("store");
    let commits = live_commits(&store_dir)?;
    tracing::warn!(
        "converting the data directory {} ({} commits) to Delta tables; the old folder is kept as store.migrated/",
        root.display(),
        commits.len()
    );
    let state = merge_checkpoints(commits.iter().map(|c| &c.manifest));
    // Rejects first, events (with the positions) last; a table that already holds the
    // conversion (an earlier run stopped half-way) is left as it is.
    for table in [Table::Rejects, Table::Events] {
        let t = crate::delta::open_or_create(location, table).await?;
        let done = match t.snapshot() {
            Ok(state) => state
                .transaction_version(t.log_store().as_ref(), collector)
                .await
                .ok()
                .flatten()
                .is_some(),
            Err(_) => false,
        };
        if done {
            continue;
        }
        let mut actions = Vec::new();
        for (i, c) in commits.iter().enumerate() {
            let file = c.dir.join(format!("{}.parquet", table.dir()));
            let bytes = fs::read(&file).map_err(|source| StoreError::Io {
                action: "reading",
                path: file.clone(),
                source,
            })?;
            let rows = match table {
                Table::Events => c.manifest.events,
                Table::Rejects => c.manifest.rejects,
            };
            if rows == 0 && table == Table::Rejects {
                continue;
            }
            let name = format!("part-migrated-{:012}.parquet", c.manifest.seq);
            let encoded = crate::delta::Encoded {
                xxh3: xxhash_rust::xxh3::xxh3_64(&bytes),
                rows,
                bytes: bytes.into(),
            };
            let tags = FileTags {
                collector: Some(collector.to_string()),
                txn: Some(1),
                // The merged positions ride on the newest file.
                state: if table == Table::Events && i + 1 == commits.len() {
                    state.values().cloned().collect()
                } else {
                    vec![]
                },
                ranges: vec![],
                xxh3: Some(encoded.xxh3),
                rows: Some(rows),
                rejects: (table == Table::Events).then_some(0),
                duplicates: (table == Table::Events).then_some(c.manifest.duplicates),
            };
            crate::delta::put(location, table, &t, &name, encoded.bytes.clone()).await?;
            actions.push(crate::delta::add_action(&name, &encoded, &tags, true));
        }
        if actions.is_empty() {
            continue;
        }
        let state_ref = t.snapshot().map_err(StoreError::delta("reading the state of"))?;
        let props = deltalake::kernel::transaction::CommitProperties::default()
            .with_application_transaction(deltalake::kernel::Transaction::new(collector, 1));
        let done = deltalake::kernel::transaction::CommitBuilder::from(props)
            .with_actions(actions)
            .build(
                Some(state_ref),
                t.log_store(),
                deltalake::protocol::DeltaOperation::Write {
                    mode: deltalake::protocol::SaveMode::Append,
                    partition_by: None,
                    predicate: None,
                },
            )
            .await
            .map_err(StoreError::delta("converting into"))?;
        crate::delta::sync_log(location, table, done.version());
    }
    let kept = root.join("store.migrated");
    fs::rename(&store_dir, &kept).map_err(|source| StoreError::Io {
        action: "renaming the converted folder",
        path: store_dir,
        source,
    })?;
    Ok(true)
}
