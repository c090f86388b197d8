//! What a reader sees: the data files of both tables at one table version each. A snapshot
//! never changes; queries plan over it, so a commit or a compaction that lands meanwhile does
//! not change their answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::ObjectStore;
use url::Url;

use crate::StoreError;
use crate::location::{Location, Table};
use crate::manifest::SourceCheckpoint;
use crate::tags::FileTags;

/// One data file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Its path relative to the table's root, as the log names it.
    pub path: String,
    /// Its absolute URL.
    pub url: Url,
    /// Its size in bytes.
    pub size: u64,
    /// Rows, from the log's statistics (or deploylens' tag).
    pub rows: u64,
    /// What deploylens recorded about it in the log; empty for a file written by another tool.
    pub tags: FileTags,
}

/// The data files of one table at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFiles {
    /// The table version; `None` when the table does not exist yet.
    pub version: Option<u64>,
    /// Its live data files, sorted by path.
    pub files: Vec<DataFile>,
}

impl TableFiles {
    /// The files of `table` as its loaded state lists them.
    pub(crate) fn of(table: &DeltaTable) -> Result<TableFiles, StoreError> {
        let Some(version) = table.version() else {
            return Ok(TableFiles::default());
        };
        let state = table
            .snapshot()
            .map_err(StoreError::delta("reading the state of"))?;
        let root = table.table_url().clone();
        let mut files = Vec::new();
        for view in state.log_data().iter() {
            #[allow(deprecated)]
            let add = view.add_action();
            let tags = add.tags.as_ref().map(FileTags::from_map).unwrap_or_default();
            let rows = view.num_records().map(|n| n as u64).or(tags.rows).unwrap_or(0);
            let path = view.path().to_string();
            let url = root
                .join(&path)
                .map_err(|e| StoreError::Location(format!("{path}: {e}")))?;
            files.push(DataFile {
                url,
                size: view.size().max(0) as u64,
                rows,
                tags,
                path,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(TableFiles {
            version: Some(version),
            files,
        })
    }

    fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Both tables at one moment.
#[derive(Clone)]
pub struct StoreSnapshot {
    /// The store it was read from.
    pub location: Location,
    /// The events table's files.
    pub events: TableFiles,
    /// The rejects table's files.
    pub rejects: TableFiles,
    /// The object store the files are read through (for engines that need to register it),
    /// `None` for a local folder.
    pub object_store: Option<(Url, Arc<dyn ObjectStore>)>,
}

impl std::fmt::Debug for StoreSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSnapshot")
            .field("location", &self.location.to_string())
            .field("events", &self.events.version)
            .field("rejects", &self.rejects.version)
            .finish()
    }
}

impl StoreSnapshot {
    /// An empty snapshot of a store that has no tables yet.
    pub fn empty(location: Location) -> Self {
        StoreSnapshot {
            location,
            events: TableFiles::default(),
            rejects: TableFiles::default(),
            object_store: None,
        }
    }

    /// The newest snapshot of a store (no lock: readers never block writers). With
    /// `events_version`, the events table as of that version (time travel); the rejects table
    /// is then as of the same moment or earlier.
    pub async fn load(location: &Location, events_version: Option<u64>) -> Result<StoreSnapshot, StoreError> {
        crate::delta::register_handlers();
        let events = crate::delta::open(location, Table::Events, events_version).await?;
        let rejects = crate::delta::open(location, Table::Rejects, None).await?;
        let mut rejects = rejects;
        if let (Some(v), Some(t)) = (events_version, rejects.as_mut()) {
            // The rejects table has its own versions. A commit's rejects land just after its
            // events: take the rejects as they were just before the next events commit (or
            // the newest, when `v` is the newest events version).
            if let Some(at) = crate::delta::commit_time(events.as_ref(), Some(v + 1)).await
                && let Ok(at) = chrono::DateTime::parse_from_rfc3339(&at)
            {
                let before = at.with_timezone(&chrono::Utc) - chrono::Duration::milliseconds(1);
                if t.load_with_datetime(before).await.is_err() {
                    // Older than the rejects table: there were none yet.
                    rejects = None;
                }
            }
        }
        StoreSnapshot::of_tables(location, events.as_ref(), rejects.as_ref())
    }

    /// [`StoreSnapshot::load`] from synchronous code.
    pub fn read(location: &Location) -> Result<StoreSnapshot, StoreError> {
        crate::Blocking::new()?.run(StoreSnapshot::load(location, None))
    }

    /// Every row of one table of this snapshot (for tools and tests; queries go through
    /// DataFusion).
    pub fn read_rows(&self, table: Table) -> Result<Vec<arrow::array::RecordBatch>, StoreError> {
        let files = match table {
            Table::Events => &self.events.files,
            Table::Rejects => &self.rejects.files,
        };
        let blocking = crate::Blocking::new()?;
        let mut out = Vec::new();
        for f in files {
            let bytes = match self.location.local_path() {
                Some(_) => {
                    let path = f
                        .url
                        .to_file_path()
                        .map_err(|_| StoreError::Location(f.url.to_string()))?;
                    std::fs::read(&path)
                        .map(bytes::Bytes::from)
                        .map_err(|source| StoreError::Io {
                            action: "reading",
                            path,
                            source,
                        })?
                }
                None => {
                    let Some((_, store)) = &self.object_store else {
                        return Err(StoreError::Location(f.url.to_string()));
                    };
                    let path = deltalake::Path::from(f.url.path().trim_start_matches('/'));
                    blocking.run(async {
                        use object_store::ObjectStoreExt;
                        let got = store
                            .get(&path)
                            .await
                            .map_err(|e| StoreError::Object(e.to_string()))?;
                        got.bytes().await.map_err(|e| StoreError::Object(e.to_string()))
                    })?
                }
            };
            out.extend(crate::delta::decode(&f.path, bytes, None)?);
        }
        Ok(out)
    }

    pub(crate) fn of_tables(
        location: &Location,
        events: Option<&DeltaTable>,
        rejects: Option<&DeltaTable>,
    ) -> Result<StoreSnapshot, StoreError> {
        let object_store = match (location.local_path(), events) {
            (None, Some(t)) => {
                let url = t.table_url().clone();
                let mut base = url.clone();
                base.set_path("/");
                Some((base, t.log_store().root_object_store(None)))
            }
            _ => None,
        };
        Ok(StoreSnapshot {
            location: location.clone(),
            events: events.map(TableFiles::of).transpose()?.unwrap_or_default(),
            rejects: rejects.map(TableFiles::of).transpose()?.unwrap_or_default(),
            object_store,
        })
    }

    /// URLs of the event files.
    pub fn event_files(&self) -> Vec<Url> {
        self.events.files.iter().map(|f| f.url.clone()).collect()
    }

    /// URLs of the reject files.
    pub fn reject_files(&self) -> Vec<Url> {
        self.rejects.files.iter().map(|f| f.url.clone()).collect()
    }

    /// Rows in the events table.
    pub fn event_count(&self) -> u64 {
        self.events.rows()
    }

    /// Rows in the rejects table.
    pub fn reject_count(&self) -> u64 {
        self.rejects.rows()
    }

    /// Data files in both tables.
    pub fn file_count(&self) -> usize {
        self.events.files.len() + self.rejects.files.len()
    }

    /// Bytes of Parquet in both tables.
    pub fn size_bytes(&self) -> u64 {
        self.events
            .files
            .iter()
            .chain(&self.rejects.files)
            .map(|f| f.size)
            .sum()
    }

    /// Whether two snapshots are of the same table versions (and so answer the same).
    pub fn same_commits(&self, other: &StoreSnapshot) -> bool {
        self.events.version == other.events.version && self.rejects.version == other.rejects.version
    }

    /// The read state of every source path that `collector` read, newest commit first wins.
    pub fn checkpoints_of(&self, collector: &str) -> BTreeMap<String, SourceCheckpoint> {
        let mut own: Vec<&DataFile> = self
            .events
            .files
            .iter()
            .filter(|f| f.tags.collector.as_deref() == Some(collector))
            .collect();
        own.sort_by_key(|f| f.tags.txn.unwrap_or(0));
        let mut out = BTreeMap::new();
        for f in own {
            for s in &f.tags.state {
                out.insert(s.path.clone(), s.clone());
            }
        }
        out
    }

    /// Collectors that have written to the store.
    pub fn collectors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .events
            .files
            .iter()
            .filter_map(|f| f.tags.collector.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
