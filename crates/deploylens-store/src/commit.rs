//! Writing, listing and compacting commits.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnPath;

use deploylens_model::schema::{events_schema, rejects_schema};

use crate::manifest::{Manifest, SourceCheckpoint, merge_checkpoints};

/// Errors a person can act on: each names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another deploylens process is writing to {0}; stop it, or use another --data-dir")]
    Locked(PathBuf),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing Parquet file {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("commit manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + use<'p> {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One committed folder of the store.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl CommitInfo {
    pub fn events_file(&self) -> PathBuf {
        self.dir.join("events.parquet")
    }
    pub fn rejects_file(&self) -> PathBuf {
        self.dir.join("rejects.parquet")
    }
}

/// What a reader sees: the live commits at one moment. Queries plan over a snapshot, so a
/// commit or compaction that lands meanwhile does not change their answer.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    pub commits: Vec<CommitInfo>,
    /// Commits still on disk that a compaction replaced (directly or through a chain of
    /// compactions): never read, removed by the writer.
    pub replaced: Vec<u64>,
}

impl StoreSnapshot {
    /// Lists the committed folders of a data directory without taking the writer lock.
    pub fn read(root: &Path) -> Result<Self, StoreError> {
        let store_dir = root.join("store");
        if !store_dir.exists() {
            return Ok(StoreSnapshot::default());
        }
        let mut commits = Vec::new();
        let entries = fs::read_dir(&store_dir).map_err(io("listing", &store_dir))?;
        for entry in entries {
            let entry = entry.map_err(io("listing", &store_dir))?;
            let name = entry.file_name();
            let Some(seq) = name.to_str().and_then(parse_commit_name) else {
                continue;
            };
            let dir = entry.path();
            match read_manifest(&dir.join("events.parquet")) {
                Ok(manifest) if manifest.seq == seq => commits.push(CommitInfo { dir, manifest }),
                Ok(_) | Err(_) => {
                    // A commit folder only appears by rename after its files were synced, so
                    // an unreadable one means outside damage: leave it for a person to inspect.
                    tracing::warn!(dir = %dir.display(), "ignoring a commit whose manifest cannot be read");
                }
            }
        }
        commits.sort_by_key(|c| c.manifest.seq);
        let replaced: HashSet<u64> = commits
            .iter()
            .flat_map(|c| c.manifest.replaces.iter().copied())
            .collect();
        let on_disk: Vec<u64> = commits
            .iter()
            .map(|c| c.manifest.seq)
            .filter(|s| replaced.contains(s))
            .collect();
        commits.retain(|c| !replaced.contains(&c.manifest.seq));
        Ok(StoreSnapshot {
            commits,
            replaced: on_disk,
        })
    }

    /// Whether two snapshots list the same commits (and so answer the same).
    pub fn same_commits(&self, other: &StoreSnapshot) -> bool {
        self.commits.len() == other.commits.len()
            && self
                .commits
                .iter()
                .zip(&other.commits)
                .all(|(a, b)| a.manifest.seq == b.manifest.seq)
    }

    pub fn event_files(&self) -> Vec<PathBuf> {
        self.commits.iter().map(CommitInfo::events_file).collect()
    }

    pub fn reject_files(&self) -> Vec<PathBuf> {
        self.commits.iter().map(CommitInfo::rejects_file).collect()
    }

    /// The current read position of every source file.
    pub fn checkpoints(&self) -> BTreeMap<String, SourceCheckpoint> {
        merge_checkpoints(self.commits.iter().map(|c| &c.manifest))
    }

    pub fn event_count(&self) -> u64 {
        self.commits.iter().map(|c| c.manifest.events).sum()
    }

    pub fn reject_count(&self) -> u64 {
        self.commits.iter().map(|c| c.manifest.rejects).sum()
    }

    /// Bytes of Parquet on disk.
    pub fn size_bytes(&self) -> u64 {
        self.commits
            .iter()
            .flat_map(|c| [c.events_file(), c.rejects_file()])
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

fn parse_commit_name(name: &str) -> Option<u64> {
    name.strip_prefix("commit-")?.parse().ok()
}

fn commit_name(seq: u64) -> String {
    format!("commit-{seq:012}")
}

/// Reads the manifest from a commit's `events.parquet` footer.
pub fn read_manifest(path: &Path) -> Result<Manifest, StoreError> {
    let bad = |reason: String| StoreError::Manifest {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(io("opening", path))?;
    let reader = SerializedFileReader::new(file).map_err(|e| bad(e.to_string()))?;
    let kv = reader.metadata().file_metadata().key_value_metadata();
    let text = kv
        .and_then(|kv| kv.iter().find(|e| e.key == Manifest::KEY))
        .and_then(|e| e.value.clone())
        .ok_or_else(|| bad("no deploylens manifest in the footer".into()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("bad manifest: {e}")))
}

/// The writer's handle on a data directory.
pub struct Store {
    root: PathBuf,
    store_dir: PathBuf,
    _lock: File,
    snapshot: StoreSnapshot,
    next_seq: u64,
    /// Commits replaced by a compaction, kept until readers that planned on them are done.
    retired: Vec<(Instant, u64)>,
}

impl Store {
    /// Opens (creating if needed) a data directory for writing: takes the lock, discards
    /// temporary folders left by a crash and removes commits a finished compaction replaced.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store_dir = root.join("store");
        fs::create_dir_all(&store_dir).map_err(io("creating", &store_dir))?;
        let lock_path = root.join("LOCK");
        let mut lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked(root.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io("locking", &lock_path)(e)),
        }
        // Best effort: the pid helps a person find the holder; the lock itself is what counts.
        let _ = lock
            .set_len(0)
            .and_then(|_| writeln!(lock, "{}", std::process::id()));

        remove_temporaries(&store_dir)?;
        let mut snapshot = StoreSnapshot::read(root)?;
        remove_replaced(&store_dir, &snapshot)?;
        snapshot.replaced.clear();
        let next_seq = max_seq_on_disk(&store_dir)?.map_or(1, |s| s + 1);
        Ok(Store {
            root: root.to_path_buf(),
            store_dir,
            _lock: lock,
            snapshot,
            next_seq,
            retired: Vec::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn snapshot(&self) -> &StoreSnapshot {
        &self.snapshot
    }

    /// The ids of every stored event, to drop repeats before they are written.
    pub fn event_ids(&self) -> Result<deploylens_model::StoredIds, StoreError> {
        let mut ids = deploylens_model::StoredIds::with_capacity(self.snapshot.event_count() as usize);
        for path in self.snapshot.event_files() {
            read_event_ids(&path, &mut ids)?;
        }
        Ok(ids)
    }

    /// Writes one commit atomically and returns it. The batches must have the `events` and
    /// `rejects` schemas.
    pub fn commit(
        &mut self,
        events: &[RecordBatch],
        rejects: &[RecordBatch],
        sources: Vec<SourceCheckpoint>,
        duplicates: u64,
        replaces: Vec<u64>,
    ) -> Result<CommitInfo, StoreError> {
        let seq = self.next_seq;
        let manifest = Manifest {
            format: Manifest::FORMAT,
            seq,
            created_at_us: deploylens_model::now_us(),
            sources,
            replaces,
            events: events.iter().map(|b| b.num_rows() as u64).sum(),
            rejects: rejects.iter().map(|b| b.num_rows() as u64).sum(),
            duplicates,
        };
        let tmp = self
            .store_dir
            .join(format!(".tmp-{}-{}", commit_name(seq), std::process::id()));
        let result = self.write_commit_files(&tmp, events, rejects, &manifest);
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let dir = self.store_dir.join(commit_name(seq));
        fs::rename(&tmp, &dir).map_err(io("publishing commit", &dir))?;
        sync_dir(&self.store_dir)?;
        self.next_seq += 1;
        let info = CommitInfo { dir, manifest };
        let replaced: HashSet<u64> = info.manifest.replaces.iter().copied().collect();
        self.snapshot
            .commits
            .retain(|c| !replaced.contains(&c.manifest.seq));
        self.snapshot.commits.push(info.clone());
        let now = Instant::now();
        self.retired.extend(replaced.into_iter().map(|seq| (now, seq)));
        Ok(info)
    }

    /// Deletes the folders of commits replaced more than `grace` ago. Until then a query that
    /// listed them before the compaction can still read them; nobody new will.
    pub fn collect_garbage(&mut self, grace: Duration) -> Result<usize, StoreError> {
        let (old, young): (Vec<_>, Vec<_>) =
            self.retired.drain(..).partition(|(at, _)| at.elapsed() >= grace);
        self.retired = young;
        let seqs: HashSet<u64> = old.iter().map(|(_, seq)| *seq).collect();
        remove_replaced_seqs(&self.store_dir, &seqs)?;
        Ok(seqs.len())
    }

    fn write_commit_files(
        &self,
        tmp: &Path,
        events: &[RecordBatch],
        rejects: &[RecordBatch],
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        fs::create_dir_all(tmp).map_err(io("creating", tmp))?;
        let text = serde_json::to_string(manifest).unwrap_or_default();
        write_parquet(&tmp.join("events.parquet"), events_schema(), events, Some(text))?;
        write_parquet(&tmp.join("rejects.parquet"), rejects_schema(), rejects, None)?;
        sync_dir(tmp)
    }

    /// Merges small commits so that a trickle of live appends does not become thousands of
    /// tiny files. Commits with fewer than `small_rows` events are merged once there are more
    /// than `max_small` of them. Returns the new commit, if one was written.
    pub fn compact(&mut self, small_rows: u64, max_small: usize) -> Result<Option<CommitInfo>, StoreError> {
        let small: Vec<CommitInfo> = self
            .snapshot
            .commits
            .iter()
            .filter(|c| c.manifest.events < small_rows)
            .cloned()
            .collect();
        if small.len() <= max_small {
            return Ok(None);
        }
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        for c in &small {
            read_all(&c.events_file(), &mut events)?;
            read_all(&c.rejects_file(), &mut rejects)?;
        }
        // The new commit is the newest, so it carries the current position of every source: a
        // newer commit outside the merge must not be overruled by the older positions inside it.
        let sources = self.snapshot.checkpoints().into_values().collect();
        let duplicates = small.iter().map(|c| c.manifest.duplicates).sum();
        let replaces = small.iter().map(|c| c.manifest.seq).collect();
        self.commit(&events, &rejects, sources, duplicates, replaces)
            .map(Some)
    }
}

fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
    manifest: Option<String>,
) -> Result<(), StoreError> {
    let file = File::create(path).map_err(io("creating", path))?;
    // Statistics per column chunk are enough to prune files by time; which columns get no
    // dictionary is a property of each column (deploylens_model::schema).
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("deploylens {}", env!("CARGO_PKG_VERSION")));
    for column in deploylens_model::schema::plain_encoded_columns() {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    if let Some(text) = manifest {
        props = props.set_key_value_metadata(Some(vec![KeyValue::new(Manifest::KEY.to_string(), text)]));
    }
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema, Some(props.build())).map_err(parquet_err)?;
    for batch in batches {
        writer.write(batch).map_err(parquet_err)?;
    }
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(io("syncing", path))
}

/// Every record batch of one Parquet file of the store.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    let mut out = Vec::new();
    read_all(path, &mut out)?;
    Ok(out)
}

fn read_all(path: &Path, out: &mut Vec<RecordBatch>) -> Result<(), StoreError> {
    let file = File::open(path).map_err(io("opening", path))?;
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err)?
        .build()
        .map_err(parquet_err)?;
    for batch in reader {
        out.push(batch?);
    }
    Ok(())
}

fn read_event_ids(path: &Path, ids: &mut deploylens_model::StoredIds) -> Result<(), StoreError> {
    let file = File::open(path).map_err(io("opening", path))?;
    let parquet_err = |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [0]);
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    for batch in reader {
        let batch = batch?;
        let column = batch.column(0).as_string::<i32>();
        for i in 0..column.len() {
            if let Ok(id) = u128::from_str_radix(column.value(i), 16) {
                ids.insert(id);
            }
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", dir))
}

fn remove_temporaries(store_dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(store_dir)
        .map_err(io("listing", store_dir))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io("removing unfinished commit", &path))?;
        }
    }
    Ok(())
}

/// Removes every replaced commit found on disk, including those replaced by a compaction that
/// was itself compacted later: keeping one of them would bring its rows back once the commit
/// that named it is gone.
fn remove_replaced(store_dir: &Path, snapshot: &StoreSnapshot) -> Result<(), StoreError> {
    let replaced: HashSet<u64> = snapshot.replaced.iter().copied().collect();
    remove_replaced_seqs(store_dir, &replaced)
}

fn remove_replaced_seqs(store_dir: &Path, replaced: &HashSet<u64>) -> Result<(), StoreError> {
    for seq in replaced {
        let dir = store_dir.join(commit_name(*seq));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io("removing compacted commit", &dir))?;
        }
    }
    Ok(())
}

fn max_seq_on_disk(store_dir: &Path) -> Result<Option<u64>, StoreError> {
    let mut max = None;
    for entry in fs::read_dir(store_dir)
        .map_err(io("listing", store_dir))?
        .flatten()
    {
        if let Some(seq) = entry.file_name().to_str().and_then(parse_commit_name) {
            max = max.max(Some(seq));
        }
    }
    Ok(max)
}
