//! The writing side of an ingest: the store, the ids of what is stored, the committed read
//! positions, and the one commit that may be in flight on its own thread.
//!
//! An event counts as stored, and a read position as committed, only once the commit that
//! holds them has landed. Until then the ids of the commit in flight are held apart (they
//! still count for duplicate detection) and its positions are not the committed ones: if it
//! fails, the same lines are read again.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use deploylens_model::batch::{EventBatchBuilder, RejectBatchBuilder};
use deploylens_model::{IdSet, Lookup, StoredIds};
use deploylens_store::{CommitBatch, Repair, SourceCheckpoint, SourceRange, Store, StoreError};

/// What has been read but not committed yet: the rows, and the positions they reach.
pub(crate) struct Pending {
    /// Two builders, filled side by side from the two halves of each batch of lines.
    pub(crate) events: [EventBatchBuilder; 2],
    pub(crate) rejects: RejectBatchBuilder,
    /// The new read state of each path read since the last commit.
    pub(crate) sources: BTreeMap<String, SourceCheckpoint>,
    /// The byte ranges the buffered rows came from.
    pub(crate) ranges: Vec<SourceRange>,
    /// Repairs these rows complete.
    pub(crate) repaired: Vec<Repair>,
    pub(crate) duplicates: u64,
    /// Ids of the buffered events.
    pub(crate) ids: IdSet,
}

impl Pending {
    pub(crate) fn new(commit_rows: usize) -> Self {
        Pending {
            events: Default::default(),
            rejects: RejectBatchBuilder::new(),
            sources: BTreeMap::new(),
            ranges: Vec::new(),
            repaired: Vec::new(),
            duplicates: 0,
            ids: id_set(commit_rows),
        }
    }

    fn is_empty(&self) -> bool {
        self.sources.is_empty()
            && self.repaired.is_empty()
            && self.events.iter().all(|b| b.is_empty())
            && self.rejects.is_empty()
    }

    pub(crate) fn rows(&self) -> usize {
        self.events.iter().map(|b| b.len()).sum::<usize>() + self.rejects.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.events.iter().map(|b| b.buffered_bytes()).sum()
    }

    /// Takes the rows for a commit, leaving builders sized like them for the next.
    fn take(&mut self, commit_rows: usize) -> Pending {
        let next = Pending {
            events: self.events.each_ref().map(EventBatchBuilder::sized_like),
            ..Pending::new(commit_rows)
        };
        std::mem::replace(self, next)
    }
}

/// A commit being written by its thread, and what becomes true once it lands.
struct InFlight {
    thread: std::thread::JoinHandle<(Store, Result<(), StoreError>)>,
    ids: IdSet,
    sources: BTreeMap<String, SourceCheckpoint>,
}

/// The store and what is known to be stored.
pub(crate) struct Committer {
    /// `None` only while a commit thread holds it.
    store: Option<Store>,
    ids: StoredIds,
    checkpoints: BTreeMap<String, SourceCheckpoint>,
    in_flight: Option<InFlight>,
    commit_rows: usize,
    /// Commits that landed while settling an unsure id, not yet counted by a caller.
    landed_early: u64,
}

impl Committer {
    pub(crate) fn new(store: Store, commit_rows: usize) -> Result<Self, StoreError> {
        let ids = store.event_ids()?;
        let checkpoints = store.checkpoints();
        Ok(Committer {
            store: Some(store),
            ids,
            checkpoints,
            in_flight: None,
            commit_rows,
            landed_early: 0,
        })
    }

    /// The store, when no commit is in flight (always, between ingests).
    pub(crate) fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    pub(crate) fn store_mut(&mut self) -> Option<&mut Store> {
        self.store.as_mut()
    }

    /// Every path with a committed read state.
    pub(crate) fn known_paths(&self) -> impl Iterator<Item = &str> {
        self.checkpoints.keys().map(String::as_str)
    }

    /// The committed read state of a path.
    pub(crate) fn checkpoint(&self, path: &str) -> Option<&SourceCheckpoint> {
        self.checkpoints.get(path)
    }

    /// The read state of a path as the newest commit, landed or in flight, has it.
    pub(crate) fn latest(&self, path: &str) -> Option<&SourceCheckpoint> {
        self.in_flight
            .as_ref()
            .and_then(|f| f.sources.get(path))
            .or_else(|| self.checkpoints.get(path))
    }

    /// Whether an event is stored or on its way to be. An unsure answer of the compact ids is
    /// settled once and for all: the commit in flight lands, and every stored id is loaded
    /// whole.
    pub(crate) fn knows(&mut self, id: &u128) -> Result<bool, StoreError> {
        if self.in_flight.as_ref().is_some_and(|f| f.ids.contains(id)) {
            return Ok(true);
        }
        match self.ids.lookup(id) {
            Lookup::Present => Ok(true),
            Lookup::Absent => Ok(false),
            Lookup::Unsure => {
                self.landed_early += self.land_flight()?;
                let Some(store) = self.store.as_ref() else {
                    return Err(StoreError::Io {
                        action: "reading the stored ids of",
                        path: self.root(),
                        source: std::io::Error::other("the store is held by a commit that never landed"),
                    });
                };
                tracing::info!("a stored event may repeat: loading every stored id whole to decide");
                let all = store.event_ids_exact()?;
                self.ids.make_exact(all);
                Ok(self.ids.lookup(id) == Lookup::Present)
            }
        }
    }

    fn root(&self) -> std::path::PathBuf {
        self.store
            .as_ref()
            .map(|s| s.root().to_string().into())
            .unwrap_or_default()
    }

    /// Hands what is pending to a commit thread, after the previous commit has landed.
    /// Returns how many commits landed meanwhile.
    pub(crate) fn commit(&mut self, pending: &mut Pending) -> Result<u64, StoreError> {
        let landed = self.land()?;
        if pending.is_empty() {
            return Ok(landed);
        }
        let Some(store) = self.store.take() else {
            return Err(StoreError::Io {
                action: "committing to",
                path: self.root(),
                source: std::io::Error::other("the store is held by a commit that never landed"),
            });
        };
        let rows = pending.take(self.commit_rows);
        let ids = rows.ids;
        let sources = rows.sources;
        let job = CommitJob {
            store,
            events: rows.events,
            rejects: rows.rejects,
            sources: sources.values().cloned().collect(),
            ranges: rows.ranges,
            repaired: rows.repaired,
            duplicates: rows.duplicates,
        };
        // A thread that cannot start gives the store back: nothing is lost.
        let (send, receive) = std::sync::mpsc::channel::<CommitJob>();
        let spawned = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || match receive.recv() {
                Ok(job) => job.run(),
                Err(_) => unreachable!("the job is sent right after the spawn"),
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(source) => {
                self.store = Some(job.store);
                return Err(StoreError::Io {
                    action: "starting the commit thread for",
                    path: self.root(),
                    source,
                });
            }
        };
        if let Err(std::sync::mpsc::SendError(job)) = send.send(job) {
            self.store = Some(job.store);
            return Err(StoreError::Io {
                action: "handing the commit to its thread for",
                path: self.root(),
                source: std::io::Error::other("the commit thread ended early"),
            });
        }
        self.in_flight = Some(InFlight { thread, ids, sources });
        Ok(landed)
    }

    /// Waits for the commit in flight, if any. Once it has landed, its events are stored and its
    /// read positions are the committed ones; if it failed, they will be read again. Returns
    /// how many commits landed (0 or 1).
    pub(crate) fn land(&mut self) -> Result<u64, StoreError> {
        let early = std::mem::take(&mut self.landed_early);
        Ok(early + self.land_flight()?)
    }

    fn land_flight(&mut self) -> Result<u64, StoreError> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(0);
        };
        let (store, result) = match flight.thread.join() {
            Ok(done) => done,
            Err(_) => unreachable!("the commit thread catches its panics"),
        };
        self.store = Some(store);
        result?;
        self.ids.extend(flight.ids);
        self.checkpoints.extend(flight.sources);
        Ok(1)
    }
}

/// What the commit thread writes.
struct CommitJob {
    store: Store,
    events: [EventBatchBuilder; 2],
    rejects: RejectBatchBuilder,
    sources: Vec<SourceCheckpoint>,
    ranges: Vec<SourceRange>,
    repaired: Vec<Repair>,
    duplicates: u64,
}

impl CommitJob {
    /// Finishes the batches and writes them with the read positions; gives the store back,
    /// whatever happened.
    fn run(mut self) -> (Store, Result<(), StoreError>) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write()));
        let result = result.unwrap_or_else(|_| {
            Err(StoreError::Io {
                action: "committing to (the commit thread panicked)",
                path: self.store.root().to_string().into(),
                source: std::io::Error::other("panic"),
            })
        });
        (self.store, result)
    }

    fn write(&mut self) -> Result<(), StoreError> {
        let now = deploylens_model::now_us();
        let mut events: Vec<RecordBatch> = Vec::new();
        for builder in &mut self.events {
            if !builder.is_empty() {
                events.push(builder.finish(now)?);
            }
        }
        let rejects: Vec<RecordBatch> = if self.rejects.is_empty() {
            vec![]
        } else {
            vec![self.rejects.finish(now)?]
        };
        let info = self.store.commit(CommitBatch {
            events,
            rejects,
            sources: std::mem::take(&mut self.sources),
            ranges: std::mem::take(&mut self.ranges),
            duplicates: self.duplicates,
            repaired: std::mem::take(&mut self.repaired),
        })?;
        tracing::debug!(
            txn = info.txn,
            events = info.events,
            rejects = info.rejects,
            "committed"
        );
        Ok(())
    }
}

/// An empty id set sized for one commit, so that it does not grow by rehashing.
fn id_set(rows: usize) -> IdSet {
    IdSet::with_capacity_and_hasher(rows.min(1 << 20), Default::default())
}
