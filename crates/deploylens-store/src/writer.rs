//! A collector's handle on the shared store: it commits its rows with its read positions and
//! its transaction version, exactly once, beside any number of other collectors.
//!
//! A commit is two Delta commits, events first:
//!
//! 1. the events table: one data file (empty when the commit stored only rejects, duplicates
//!    or blank lines), whose `add` action carries the collector's id, its transaction version
//!    `V+1`, the new read state of the paths read and the byte ranges they came from (see
//!    [`crate::tags`]), and the Delta `txn` action `(collector, V+1)`, in one log entry;
//! 2. if there are rejects, the rejects table: their data file and the `txn` `(collector, V+1)`.
//!
//! The `txn` action makes a retried commit harmless: if the outcome of a commit is unknown
//! (a lost answer from object storage), the table's version for the collector says whether it
//! landed. A process killed between the two commits leaves rejects missing for `V+1`; the next
//! open finds that (the rejects table's version is behind) and lists the commit's ranges in
//! [`Store::repairs`] so that their rejects are read again. A data file whose bytes no longer
//! hash to what was committed is damaged: it is copied to `quarantine/`, and its ranges are
//! listed in the repairs too; the commit that stores them again removes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, Path};
use object_store::ObjectStoreExt;

use crate::delta::{self, Encoded};
use crate::lease::Lease;
use crate::location::{Location, Table};
use crate::manifest::SourceCheckpoint;
use crate::snapshot::{DataFile, StoreSnapshot};
use crate::tags::{FileTags, SourceRange};
use crate::{Blocking, StoreError};

/// How a collector writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// The collector's id: its read positions and transaction versions are its own.
    pub collector_id: String,
}

impl WriterOptions {
    /// The host name, the default collector id: one collector per host.
    pub fn default_collector_id() -> String {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length, and gethostname NUL-terminates what fits.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let name = ok
            .then(|| {
                let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            })
            .filter(|n| !n.is_empty());
        name.unwrap_or_else(|| "deploylens".to_string())
    }
}

/// Lines to read again: the ranges of a commit whose rejects never landed, or of a damaged
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Which rows to store again from the ranges.
    pub want: Want,
    /// The source byte ranges that hold the lines.
    pub ranges: Vec<SourceRange>,
    /// Damaged files the repairing commit removes.
    pub replaces: Vec<(Table, String)>,
    /// Why, for the logs.
    pub why: String,
}

/// Which rows a repair stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Only events (a damaged events file).
    Events,
    /// Only rejects (a damaged rejects file, or a commit whose rejects never landed).
    Rejects,
    /// Both kinds, as an ordinary read stores them.
    Both,
}

/// What one commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The collector's transaction version of the commit.
    pub txn: i64,
    /// The events table's version after the commit.
    pub events_version: u64,
    /// Events stored.
    pub events: u64,
    /// Rejects stored.
    pub rejects: u64,
}

/// The writer's handle on a store.
pub struct Store {
    blocking: Blocking,
    location: Location,
    collector: String,
    events: DeltaTable,
    rejects: DeltaTable,
    snapshot: StoreSnapshot,
    /// The collector's newest transaction version in the events table.
    txn: i64,
    lease: Lease,
    repairs: Vec<Repair>,
    quarantined: u64,
    last_heartbeat: Instant,
    /// Replaced files already deleted (their tombstones stay in the log for days).
    collected: std::collections::HashSet<String>,
}

impl Store {
    /// Opens (creating if needed) the store for writing as one collector: takes the
    /// collector's lease (a second live collector with the same id is refused), checks the
    /// collector's own files, and finds what must be read again.
    pub fn open(location: &Location, opts: &WriterOptions) -> Result<Store, StoreError> {
        let blocking = Blocking::new()?;
        let collector = opts.collector_id.clone();
        if collector.is_empty() || collector.chars().any(|c| c.is_control() || c == '/') {
            return Err(StoreError::Location(format!(
                "collector id {collector:?}: use letters, digits, dots and dashes"
            )));
        }
        let lease = blocking.run(Lease::acquire(location, &collector))?;
        let (events, rejects) = blocking.run(async {
            crate::legacy::migrate_if_needed(location, &collector).await?;
            let events = delta::open_or_create(location, Table::Events).await?;
            let rejects = delta::open_or_create(location, Table::Rejects).await?;
            Ok::<_, StoreError>((events, rejects))
        })?;
        let snapshot = StoreSnapshot::of_tables(location, Some(&events), Some(&rejects))?;
        let mut store = Store {
            blocking,
            location: location.clone(),
            collector,
            events,
            rejects,
            snapshot,
            txn: 0,
            lease,
            repairs: Vec::new(),
            quarantined: 0,
            last_heartbeat: Instant::now(),
            collected: Default::default(),
        };
        store.txn = store.own_txn(Table::Events)?;
        store.find_repairs()?;
        Ok(store)
    }

    /// Where the store is.
    pub fn root(&self) -> &Location {
        &self.location
    }

    /// The collector id.
    pub fn collector(&self) -> &str {
        &self.collector
    }

    /// The snapshot as of this collector's last commit (other collectors' commits included up
    /// to then).
    pub fn snapshot(&self) -> &StoreSnapshot {
        &self.snapshot
    }

    /// This collector's read state of every source path it read.
    pub fn checkpoints(&self) -> BTreeMap<String, SourceCheckpoint> {
        self.snapshot.checkpoints_of(&self.collector)
    }

    /// Lines to read again before anything else (see the module documentation).
    pub fn repairs(&self) -> &[Repair] {
        &self.repairs
    }

    /// Files moved aside as damaged since the store was opened.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    fn own_files(&self, table: Table) -> impl Iterator<Item = &DataFile> {
        let files = match table {
            Table::Events => &self.snapshot.events.files,
            Table::Rejects => &self.snapshot.rejects.files,
        };
        files
            .iter()
            .filter(|f| f.tags.collector.as_deref() == Some(self.collector.as_str()))
    }

    /// The collector's newest transaction version in a table: the `txn` action, or the tags
    /// of its files (a table whose old `txn` entries expired).
    fn own_txn(&self, table: Table) -> Result<i64, StoreError> {
        let t = match table {
            Table::Events => &self.events,
            Table::Rejects => &self.rejects,
        };
        let from_log = self.blocking.run(async {
            match t.snapshot() {
                Ok(state) => state
                    .transaction_version(t.log_store().as_ref(), &self.collector)
                    .await
                    .map_err(StoreError::delta("reading the transaction version of")),
                Err(_) => Ok(None),
            }
        })?;
        let from_tags = self.own_files(table).filter_map(|f| f.tags.txn).max();
        Ok(from_log.into_iter().chain(from_tags).max().unwrap_or(0))
    }

    /// Checks every own file against its hash, and the two tables against each other.
    fn find_repairs(&mut self) -> Result<(), StoreError> {
        let mut repairs = Vec::new();
        for table in [Table::Events, Table::Rejects] {
            let own: Vec<DataFile> = self.own_files(table).cloned().collect();
            for f in own {
                let Some(expected) = f.tags.xxh3 else { continue };
                let t = self.table(table);
                // A read that fails for another reason than a missing file (a network error)
                // fails the open: it says nothing about the file, and a repair would drop it.
                let got = self.blocking.run(delta::get_if_present(t, &f.path))?;
                let reason = match got {
                    Some(bytes) if xxhash_rust::xxh3::xxh3_64(&bytes) == expected => continue,
                    Some(bytes) => {
                        self.quarantine(table, &f.path, bytes);
                        "its bytes no longer match their hash".to_string()
                    }
                    None => "the file is missing".to_string(),
                };
                tracing::warn!(
                    "data file {} of the {} table is damaged ({reason}); it is moved aside and its {} lines are read again",
                    f.url,
                    table.dir(),
                    f.tags.ranges.len()
                );
                repairs.push(Repair {
                    want: match table {
                        Table::Events => Want::Events,
                        Table::Rejects => Want::Rejects,
                    },
                    ranges: f.tags.ranges.clone(),
                    replaces: vec![(table, f.path.clone())],
                    why: format!("damaged file {}", f.url),
                });
            }
        }
        // Commits whose rejects never landed: one repair for all of them, since a torn repair
        // commit lists the ranges of the commit it repaired again, and rejects are not
        // deduplicated by id. Its rejects land in one commit, which covers every torn one.
        let rejects_txn = self.own_txn(Table::Rejects)?;
        let mut torn_txns = vec![];
        let mut torn_ranges = vec![];
        for f in self.own_files(Table::Events) {
            let torn = f.tags.txn.is_some_and(|t| t > rejects_txn) && f.tags.rejects.unwrap_or(0) > 0;
            if torn
                && !repairs
                    .iter()
                    .any(|r| r.replaces.iter().any(|(_, p)| *p == f.path))
            {
                torn_txns.push(f.tags.txn.unwrap_or(0));
                torn_ranges.extend(f.tags.ranges.iter().cloned());
            }
        }
        if !torn_txns.is_empty() {
            torn_txns.sort_unstable();
            repairs.push(Repair {
                want: Want::Rejects,
                ranges: SourceRange::coalesce(torn_ranges),
                replaces: vec![],
                why: format!("the rejects of commits {torn_txns:?} never landed"),
            });
        }
        self.repairs = repairs;
        Ok(())
    }

    fn table(&self, table: Table) -> &DeltaTable {
        match table {
            Table::Events => &self.events,
            Table::Rejects => &self.rejects,
        }
    }

    /// Copies a damaged file to `quarantine/<table>/` for a person to look at.
    fn quarantine(&mut self, table: Table, path: &str, bytes: bytes::Bytes) {
        self.quarantined += 1;
        let name = format!("quarantine/{}/{}", table.dir(), path.replace('/', "_"));
        if let Some(dir) = self.location.local_path() {
            let target = dir.join(&name);
            let _ = target.parent().map(std::fs::create_dir_all);
            let _ = std::fs::write(target, &bytes);
            return;
        }
        let Ok(store) = crate::lease::object_store_of(&self.location) else {
            return;
        };
        let target = Path::from(self.location.object_path(&name));
        let _ = self
            .blocking
            .run(async move { store.put(&target, bytes.into()).await });
    }

    /// The ids of this collector's stored events, to drop repeats before they are written, in
    /// their compact form (about 4 bytes each, see [`deploylens_model::StoredIds`]). Other
    /// collectors' events are not loaded: this memory does not grow with their history.
    pub fn event_ids(&self) -> Result<deploylens_model::StoredIds, StoreError> {
        let mut ids = deploylens_model::StoredIds::with_capacity(self.own_event_rows() as usize);
        self.for_each_own_id(|id| ids.insert(id))?;
        Ok(ids)
    }

    /// The same ids whole (16 bytes each and a hash table's slack): what an unsure answer of
    /// [`event_ids`](Self::event_ids) is settled with.
    pub fn event_ids_exact(&self) -> Result<deploylens_model::IdSet, StoreError> {
        let mut ids = deploylens_model::IdSet::with_capacity_and_hasher(
            self.own_event_rows() as usize,
            Default::default(),
        );
        self.for_each_own_id(|id| {
            ids.insert(id);
        })?;
        Ok(ids)
    }

    fn own_event_rows(&self) -> u64 {
        self.own_files(Table::Events).map(|f| f.rows).sum()
    }

    /// Every id of this collector's stored events (a damaged file's are left out: its lines
    /// are read again), one file at a time.
    fn for_each_own_id(&self, mut f: impl FnMut(u128)) -> Result<(), StoreError> {
        let damaged: Vec<&str> = self
            .repairs
            .iter()
            .flat_map(|r| r.replaces.iter().map(|(_, p)| p.as_str()))
            .collect();
        for file in self.own_files(Table::Events) {
            if damaged.contains(&file.path.as_str()) || file.rows == 0 {
                continue;
            }
            let bytes = self.blocking.run(delta::get(&self.events, &file.path))?;
            for batch in delta::decode(&file.path, bytes, Some(&[0]))? {
                let column = batch.column(0).as_string::<i32>();
                for i in 0..column.len() {
                    if let Ok(id) = u128::from_str_radix(column.value(i), 16) {
                        f(id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits rows and the read state they reach, exactly once (see the module
    /// documentation). `repaired` lists the repairs this commit completes: their damaged
    /// files are removed in the same log entry.
    pub fn commit(&mut self, batch: CommitBatch) -> Result<CommitInfo, StoreError> {
        self.heartbeat();
        let version = self.txn + 1;
        let events = delta::encode(Table::Events, &batch.events)?;
        let rejects = (!batch.rejects.is_empty())
            .then(|| delta::encode(Table::Rejects, &batch.rejects))
            .transpose()?;
        let tags = FileTags {
            collector: Some(self.collector.clone()),
            txn: Some(version),
            state: batch.sources,
            ranges: SourceRange::coalesce(batch.ranges),
            xxh3: Some(events.xxh3),
            rows: Some(events.rows),
            rejects: Some(rejects.as_ref().map_or(0, |r| r.rows)),
            duplicates: Some(batch.duplicates),
        };
        let replaces: Vec<(Table, String)> = batch.repaired.iter().flat_map(|r| r.replaces.clone()).collect();
        let events_version = self.commit_file(Table::Events, &events, &tags, version, &replaces)?;
        if let Some(rejects) = &rejects {
            let reject_tags = FileTags {
                state: vec![],
                rejects: None,
                duplicates: None,
                xxh3: Some(rejects.xxh3),
                rows: Some(rejects.rows),
                ..tags.clone()
            };
            self.commit_file(Table::Rejects, rejects, &reject_tags, version, &replaces)?;
        } else if replaces.iter().any(|(t, _)| *t == Table::Rejects) {
            self.remove_only(Table::Rejects, &replaces)?;
        }
        self.txn = version;
        self.repairs.retain(|r| !batch.repaired.contains(r));
        self.refresh_snapshot()?;
        Ok(CommitInfo {
            txn: version,
            events_version,
            events: events.rows,
            rejects: rejects.map_or(0, |r| r.rows),
        })
    }

    /// One data file and the collector's `txn` in one log entry; retried on conflicts with
    /// other writers, and checked after an unknown outcome.
    fn commit_file(
        &mut self,
        table: Table,
        encoded: &Encoded,
        tags: &FileTags,
        version: i64,
        replaces: &[(Table, String)],
    ) -> Result<u64, StoreError> {
        let name = format!("part-{}.parquet", uuid::Uuid::new_v4());
        let location = self.location.clone();
        let mut actions = vec![delta::add_action(&name, encoded, tags, true)];
        actions.extend(removes(table, replaces));
        let collector = self.collector.clone();
        let t = self.table(table);
        self.blocking
            .run(delta::put(&location, table, t, &name, encoded.bytes.clone()))?;
        let done = self.blocking.run(commit(
            t,
            actions,
            Some(Transaction::new(&collector, version)),
            write_op(),
        ));
        let new_version = match done {
            Ok(v) => v,
            Err(e) => {
                // Did it land after all?
                let _ = self.reload(table);
                let found = self.own_txn(table)?;
                if found > version {
                    return Err(StoreError::Fenced {
                        collector: self.collector.clone(),
                        expected: version,
                        found,
                    });
                }
                if found < version {
                    return Err(e);
                }
                self.table(table).version().unwrap_or(0)
            }
        };
        delta::sync_log(&location, table, new_version);
        self.reload(table)?;
        Ok(new_version)
    }

    fn remove_only(&mut self, table: Table, replaces: &[(Table, String)]) -> Result<(), StoreError> {
        let actions: Vec<Action> = removes(table, replaces).collect();
        if actions.is_empty() {
            return Ok(());
        }
        let t = self.table(table);
        let v = self.blocking.run(commit(t, actions, None, write_op()))?;
        delta::sync_log(&self.location, table, v);
        self.reload(table)
    }

    /// Reloads one table to its newest version.
    fn reload(&mut self, table: Table) -> Result<(), StoreError> {
        let Store {
            blocking,
            events,
            rejects,
            ..
        } = self;
        let t = match table {
            Table::Events => events,
            Table::Rejects => rejects,
        };
        self_update(blocking, t)
    }

    /// Reloads both tables (other collectors' commits) into the snapshot, and checks that no
    /// other process committed with this collector's id meanwhile ([`StoreError::Fenced`]):
    /// a collector whose lease was taken over must stop writing.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        self.reload(Table::Events)?;
        self.reload(Table::Rejects)?;
        let found = self.own_txn(Table::Events)?;
        if found > self.txn {
            return Err(StoreError::Fenced {
                collector: self.collector.clone(),
                expected: self.txn,
                found,
            });
        }
        self.refresh_snapshot()
    }

    fn refresh_snapshot(&mut self) -> Result<(), StoreError> {
        self.snapshot = StoreSnapshot::of_tables(&self.location, Some(&self.events), Some(&self.rejects))?;
        Ok(())
    }

    /// Keeps the collector's lease fresh (at most every few seconds).
    pub fn heartbeat(&mut self) {
        if self.last_heartbeat.elapsed() >= crate::lease::HEARTBEAT {
            self.last_heartbeat = Instant::now();
            if let Err(e) = self.blocking.run(self.lease.renew()) {
                tracing::warn!("cannot renew the collector lease: {e}");
            }
        }
    }

    /// Merges this collector's small files of each table into one, so that a trickle of live
    /// appends does not become thousands of tiny files. Files with fewer than `small_rows` rows
    /// are merged once there are more than `max_small` of them. Readers see each row exactly
    /// once at every moment: the merged file replaces the small ones in one log entry.
    pub fn compact(&mut self, small_rows: u64, max_small: usize) -> Result<bool, StoreError> {
        let mut any = false;
        for table in [Table::Events, Table::Rejects] {
            let damaged: Vec<String> = self
                .repairs
                .iter()
                .flat_map(|r| {
                    r.replaces
                        .iter()
                        .filter(|(t, _)| *t == table)
                        .map(|(_, p)| p.clone())
                })
                .collect();
            // A commit whose rejects have not landed stays as it is, for the repair to find.
            let rejects_txn = self.own_txn(Table::Rejects)?;
            let torn = |f: &DataFile| {
                table == Table::Events
                    && f.tags.txn.is_some_and(|t| t > rejects_txn)
                    && f.tags.rejects.unwrap_or(0) > 0
            };
            let mut small: Vec<DataFile> = self
                .own_files(table)
                .filter(|f| f.rows < small_rows && !damaged.contains(&f.path) && !torn(f))
                .cloned()
                .collect();
            if small.len() <= max_small {
                continue;
            }
            small.sort_by_key(|f| f.tags.txn.unwrap_or(0));
            let mut batches = Vec::new();
            let mut state: BTreeMap<String, SourceCheckpoint> = BTreeMap::new();
            let mut ranges = Vec::new();
            let mut duplicates = 0;
            for f in &small {
                let bytes = self.blocking.run(delta::get(self.table(table), &f.path))?;
                if f.tags
                    .xxh3
                    .is_some_and(|h| h != xxhash_rust::xxh3::xxh3_64(&bytes))
                {
                    // Found damaged: leave it for the repair on the next open.
                    return Err(StoreError::Damaged {
                        file: f.url.to_string(),
                        reason: "its bytes no longer match their hash".into(),
                    });
                }
                batches.extend(delta::decode(&f.path, bytes, None)?);
                for s in &f.tags.state {
                    state.insert(s.path.clone(), s.clone());
                }
                ranges.extend(f.tags.ranges.iter().cloned());
                duplicates += f.tags.duplicates.unwrap_or(0);
            }
            let encoded = delta::encode(table, &batches)?;
            let tags = FileTags {
                collector: Some(self.collector.clone()),
                txn: small.iter().filter_map(|f| f.tags.txn).max(),
                state: if table == Table::Events {
                    state.into_values().collect()
                } else {
                    vec![]
                },
                ranges: SourceRange::coalesce(ranges),
                xxh3: Some(encoded.xxh3),
                rows: Some(encoded.rows),
                // The merged commits' rejects have all landed: none is pending. (Their sum
                // here would mark the merged file torn whenever its newest commit had none.)
                rejects: (table == Table::Events).then_some(0),
                duplicates: (table == Table::Events).then_some(duplicates),
            };
            let name = format!("part-{}.parquet", uuid::Uuid::new_v4());
            let mut actions = vec![delta::add_action(&name, &encoded, &tags, false)];
            for f in &small {
                actions.push(Action::Remove(Remove {
                    path: f.path.clone(),
                    data_change: false,
                    deletion_timestamp: Some(deploylens_model::now_us() / 1000),
                    extended_file_metadata: Some(true),
                    size: Some(f.size as i64),
                    partition_values: Some(Default::default()),
                    deletion_vector: None,
                    tags: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                }));
            }
            let location = self.location.clone();
            let t = self.table(table);
            self.blocking
                .run(delta::put(&location, table, t, &name, encoded.bytes.clone()))?;
            let op = DeltaOperation::Optimize {
                predicate: None,
                target_size: (small_rows as i64).max(1),
            };
            let v = self.blocking.run(commit(t, actions, None, op))?;
            delta::sync_log(&location, table, v);
            self.reload(table)?;
            any = true;
        }
        if any {
            self.refresh_snapshot()?;
        }
        Ok(any)
    }

    /// Deletes the files that compactions replaced more than `grace` ago (a query that listed
    /// them before can still read them until then). Returns how many were deleted.
    pub fn collect_garbage(&mut self, grace: Duration) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for table in [Table::Events, Table::Rejects] {
            let t = self.table(table).clone();
            let retention = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::minutes(2));
            // A dry run lists the expired tombstones' files; deleting them here writes no log
            // entries (a vacuum writes two per run, and every collector runs it often).
            let planned = self.blocking.run(async move {
                t.vacuum()
                    .with_retention_period(retention)
                    .with_enforce_retention_duration(false)
                    .with_mode(deltalake::operations::vacuum::VacuumMode::Lite)
                    .with_dry_run(true)
                    .await
            });
            let files = match planned {
                Ok((_, metrics)) => metrics.files_deleted,
                Err(e) => return Err(StoreError::delta("cleaning up")(e)),
            };
            let store = self.table(table).log_store().object_store(None);
            for file in files {
                // Tombstones outlive their files: each is deleted once, by whoever comes first.
                if !self.collected.insert(file.clone()) {
                    continue;
                }
                let path = Path::from(file.as_str());
                match self.blocking.run(store.delete(&path)) {
                    Ok(()) => deleted += 1,
                    Err(deltalake::ObjectStoreError::NotFound { .. }) => {}
                    Err(e) => {
                        self.collected.remove(&file);
                        return Err(StoreError::Object(format!("deleting {file}: {e}")));
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// Gives the lease back (a clean stop; dropping the store does the same).
    pub fn close(self) {}
}

impl Drop for Store {
    fn drop(&mut self) {
        // A restart elsewhere (a new container, another host) need not wait for the lease
        // to go stale. A local lock goes with the file handle.
        let _ = self.blocking.run(self.lease.release());
    }
}

/// Rows and the read state for one commit.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// Event rows, in the events table's schema (may be empty).
    pub events: Vec<RecordBatch>,
    /// Reject rows, in the rejects table's schema (may be empty).
    pub rejects: Vec<RecordBatch>,
    /// The new read state of every path read.
    pub sources: Vec<SourceCheckpoint>,
    /// The byte ranges the rows came from.
    pub ranges: Vec<SourceRange>,
    /// Lines that repeated an event already stored.
    pub duplicates: u64,
    /// Repairs this commit completes.
    pub repaired: Vec<Repair>,
}

fn write_op() -> DeltaOperation {
    DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    }
}

fn removes<'a>(table: Table, replaces: &'a [(Table, String)]) -> impl Iterator<Item = Action> + 'a {
    replaces
        .iter()
        .filter(move |(t, _)| *t == table)
        .map(|(_, path)| {
            Action::Remove(Remove {
                path: path.clone(),
                data_change: true,
                deletion_timestamp: Some(deploylens_model::now_us() / 1000),
                extended_file_metadata: Some(false),
                size: None,
                partition_values: Some(Default::default()),
                deletion_vector: None,
                tags: None,
                base_row_id: None,
                default_row_commit_version: None,
            })
        })
}

fn self_update(blocking: &Blocking, t: &mut DeltaTable) -> Result<(), StoreError> {
    blocking
        .run(async { t.update_state().await })
        .map_err(StoreError::delta("reloading"))
}

/// One Delta commit of `actions` on `table`'s current state, with an application transaction.
async fn commit(
    table: &DeltaTable,
    actions: Vec<Action>,
    txn: Option<Transaction>,
    operation: DeltaOperation,
) -> Result<u64, StoreError> {
    let state = table
        .snapshot()
        .map_err(StoreError::delta("reading the state of"))?;
    let rows: i64 = actions
        .iter()
        .filter_map(|a| match a {
            Action::Add(add) => add.tags.as_ref().map(FileTags::from_map).and_then(|t| t.rows),
            _ => None,
        })
        .map(|r| r as i64)
        .sum();
    let mut props = CommitProperties::default()
        .with_max_retries(100)
        .with_create_checkpoint(true);
    if let Some(t) = &txn {
        props = props.with_application_transaction(t.clone()).with_metadata([(
            "deploylens".to_string(),
            serde_json::json!({"collector": t.app_id, "txn": t.version, "rows": rows}),
        )]);
    }
    let finalized = CommitBuilder::from(props)
        .with_actions(actions)
        .build(Some(state), table.log_store(), operation)
        .await
        .map_err(|e| match e {
            DeltaTableErrorKind::Transaction { source } => StoreError::Conflict(source.to_string()),
            other => StoreError::delta("committing to")(other),
        })?;
    Ok(finalized.version())
}

type DeltaTableErrorKind = deltalake::DeltaTableError;
