//! One live collector per id. On a local folder the lease is an exclusive lock on
//! `collectors/<id>.lock`, which the operating system releases when the process ends, even if
//! it is killed. On object storage it is an object `collectors/<id>.lease` holding the host,
//! the process and a heartbeat; a lease whose heartbeat is fresher than [`STALE`] belongs to a
//! live collector. The transaction versions of the commits are the second guard: a collector
//! that finds its id's version moved by someone else stops committing.

use std::fs::{File, TryLockError};
use std::time::Duration;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::location::Location;

/// How often a live collector renews its lease on object storage.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A lease not renewed for this long belongs to a collector that is gone.
pub const STALE: Duration = Duration::from_secs(60);

/// What the lease object says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// The host (collector id) that holds the lease.
    pub host: String,
    /// Its process id, to help a person find it.
    pub pid: u32,
    /// When it last renewed the lease, in microseconds since the epoch.
    pub heartbeat_us: i64,
    /// A random token that tells this holder from an earlier one of the same id.
    pub token: String,
}

/// A collector's lease.
pub enum Lease {
    /// An exclusive lock on a local file.
    Local(File),
    /// A lease object on object storage.
    Object {
        /// The store the lease belongs to.
        location: Location,
        /// The lease object's path in the object store (`<prefix>collectors/<id>.lease`).
        name: String,
        /// What this process wrote into it; its token tells whether the object is still ours.
        holder: Box<Holder>,
    },
}

impl Holder {
    /// The holder ran on this host and its process is gone (a crash or SIGKILL): its lease
    /// can be taken at once instead of after [`STALE`]. Checked through /proc, so only on
    /// systems that have it.
    fn is_dead_process_here(&self) -> bool {
        let proc = std::path::Path::new("/proc");
        self.host == crate::WriterOptions::default_collector_id()
            && proc.join("self").exists()
            && !proc.join(self.pid.to_string()).exists()
    }
}

fn lease_name(collector: &str) -> String {
    format!("collectors/{collector}.lease")
}

impl Lease {
    /// Takes the lease of `collector`, or says who holds it.
    pub async fn acquire(location: &Location, collector: &str) -> Result<Lease, StoreError> {
        if let Some(dir) = location.local_path() {
            let dir = dir.join("collectors");
            std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
                action: "creating",
                path: dir.clone(),
                source,
            })?;
            let path = dir.join(format!("{collector}.lock"));
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|source| StoreError::Io {
                    action: "opening",
                    path: path.clone(),
                    source,
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let who = std::fs::read_to_string(&path).unwrap_or_default();
                    return Err(StoreError::Locked {
                        collector: collector.to_string(),
                        holder: who.trim().to_string(),
                        location: location.to_string(),
                    });
                }
                Err(TryLockError::Error(source)) => {
                    return Err(StoreError::Io {
                        action: "locking",
                        path,
                        source,
                    });
                }
            }
            use std::io::Write;
            // Best effort: the pid helps a person find the holder; the lock is what counts.
            let _ = file
                .set_len(0)
                .and_then(|_| writeln!(file, "pid {}", std::process::id()));
            return Ok(Lease::Local(file));
        }
        let store = object_store_of(location)?;
        let name = location.object_path(&lease_name(collector));
        let path = deltalake::Path::from(name.as_str());
        if let Ok(got) = store.get(&path).await
            && let Ok(bytes) = got.bytes().await
            && let Ok(other) = serde_json::from_slice::<Holder>(&bytes)
        {
            let age_us = deploylens_model::now_us() - other.heartbeat_us;
            let fresh = age_us >= 0 && (age_us as u128) < STALE.as_micros();
            if fresh && !other.is_dead_process_here() {
                return Err(StoreError::Locked {
                    collector: collector.to_string(),
                    holder: format!("pid {} on {}", other.pid, other.host),
                    location: location.to_string(),
                });
            }
        }
        let holder = Holder {
            host: crate::WriterOptions::default_collector_id(),
            pid: std::process::id(),
            heartbeat_us: deploylens_model::now_us(),
            token: uuid::Uuid::new_v4().to_string(),
        };
        let lease = Lease::Object {
            location: location.clone(),
            name,
            holder: Box::new(holder),
        };
        lease.write().await?;
        Ok(lease)
    }

    async fn write(&self) -> Result<(), StoreError> {
        let Lease::Object {
            location,
            name,
            holder,
        } = self
        else {
            return Ok(());
        };
        let store = object_store_of(location)?;
        let bytes = serde_json::to_vec(holder.as_ref()).unwrap_or_default();
        store
            .put(&deltalake::Path::from(name.as_str()), bytes.into())
            .await
            .map_err(|e| StoreError::Object(format!("writing the lease {name}: {e}")))?;
        Ok(())
    }

    /// Renews the heartbeat (object storage only).
    pub async fn renew(&mut self) -> Result<(), StoreError> {
        if let Lease::Object { holder, .. } = self {
            holder.heartbeat_us = deploylens_model::now_us();
        }
        self.write().await
    }

    /// Gives the lease back, unless another process has taken it over meanwhile.
    pub async fn release(&self) -> Result<(), StoreError> {
        if let Lease::Object {
            location,
            name,
            holder,
        } = self
        {
            let store = object_store_of(location)?;
            let path = deltalake::Path::from(name.as_str());
            let current = match store.get(&path).await {
                Ok(got) => got.bytes().await.ok(),
                Err(_) => None,
            };
            let ours = current
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                .is_some_and(|h| h.token == holder.token);
            if ours {
                let _ = store.delete(&path).await;
            }
        }
        Ok(())
    }
}

/// The object store at the root of a location.
pub(crate) fn object_store_of(
    location: &Location,
) -> Result<std::sync::Arc<dyn deltalake::ObjectStore>, StoreError> {
    crate::delta::register_handlers();
    let log_store = deltalake::DeltaTableBuilder::from_url(location.root().clone())
        .map_err(crate::StoreError::delta("reaching"))?
        .with_storage_options(location.storage_options())
        .build_storage()
        .map_err(crate::StoreError::delta("reaching"))?;
    Ok(log_store.root_object_store(None))
}
