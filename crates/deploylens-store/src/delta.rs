//! The Delta Lake side of the store: opening and creating the two tables, encoding data files,
//! committing them, reading them back.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, Add, StructType};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStore, Path};
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use deploylens_model::schema::{events_schema, plain_encoded_columns, rejects_schema};

use crate::StoreError;
use crate::location::{Location, Table};
use crate::tags::FileTags;

/// Makes the object stores of the `cloud` features (S3 and the like) known to deltalake.
pub fn register_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        deltalake::aws::register_handlers(None);
    });
}

pub(crate) fn schema_of(table: Table) -> SchemaRef {
    match table {
        Table::Events => events_schema(),
        Table::Rejects => rejects_schema(),
    }
}

fn builder(location: &Location, table: Table) -> Result<DeltaTableBuilder, StoreError> {
    register_handlers();
    let url = location.table_url(table);
    Ok(DeltaTableBuilder::from_url(url)
        .map_err(StoreError::delta("opening"))?
        .with_storage_options(location.storage_options()))
}

/// The table, or `None` when it does not exist yet.
pub(crate) async fn open(
    location: &Location,
    table: Table,
    version: Option<u64>,
) -> Result<Option<DeltaTable>, StoreError> {
    if let Some(dir) = location.local_path()
        && !dir.join(table.dir()).join("_delta_log").is_dir()
    {
        return Ok(None);
    }
    let mut b = builder(location, table)?;
    if let Some(v) = version {
        b = b.with_version(v);
    }
    match b.load().await {
        Ok(t) => Ok(Some(t)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(StoreError::delta("opening")(e)),
    }
}

/// When version `version` of a table was committed: the `timestamp` of the `commitInfo` in
/// its log entry.
pub(crate) async fn commit_time(table: Option<&DeltaTable>, version: Option<u64>) -> Option<String> {
    let (table, version) = (table?, version?);
    let entry = table.log_store().read_commit_entry(version).await.ok()??;
    let millis = std::str::from_utf8(&entry).ok()?.lines().find_map(|line| {
        let action: serde_json::Value = serde_json::from_str(line).ok()?;
        action.get("commitInfo")?.get("timestamp")?.as_i64()
    })?;
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis).map(|t| t.to_rfc3339())
}

/// Opens the table, creating it (empty, with the deploylens schema) if it does not exist. Two
/// collectors creating it at once is fine: the second finds the first one's.
pub(crate) async fn open_or_create(location: &Location, table: Table) -> Result<DeltaTable, StoreError> {
    if let Some(t) = open(location, table, None).await? {
        return Ok(t);
    }
    let schema: StructType = schema_of(table)
        .as_ref()
        .try_into_kernel()
        .map_err(|e| StoreError::delta("describing the schema of")(DeltaTableError::from(e)))?;
    let t = builder(location, table)?
        .build()
        .map_err(StoreError::delta("creating"))?;
    let created = t
        .create()
        .with_table_name(format!("deploylens_{}", table.dir()))
        .with_comment(match table {
            Table::Events => "deploylens: one row per distinct valid deployment event",
            Table::Rejects => "deploylens: one row per line that could not be stored as an event",
        })
        .with_columns(schema.fields().cloned())
        .with_save_mode(deltalake::protocol::SaveMode::Ignore)
        // No retry: when another collector created the table first, its version 0 stands
        // (a retry would commit a second CREATE as version 1, with a new table id).
        .with_commit_properties(
            deltalake::kernel::transaction::CommitProperties::default().with_max_retries(0),
        )
        .await;
    match created {
        Ok(t) => Ok(t),
        Err(_) => open(location, table, None).await?.ok_or_else(|| {
            StoreError::Location(format!("cannot create the {} table in {location}", table.dir()))
        }),
    }
}

/// A data file encoded and ready to be put: its bytes, rows and hash.
pub(crate) struct Encoded {
    pub bytes: Bytes,
    pub rows: u64,
    pub xxh3: u64,
}

/// Encodes batches as one Parquet file (zstd level 1, chunk statistics, dictionaries only for
/// the columns that repeat).
pub(crate) fn encode(table: Table, batches: &[RecordBatch]) -> Result<Encoded, StoreError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("deploylens {}", env!("CARGO_PKG_VERSION")));
    for column in plain_encoded_columns() {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    let parquet_err = |e: parquet::errors::ParquetError| StoreError::Encode(e.to_string());
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, schema_of(table), Some(props.build())).map_err(parquet_err)?;
    let mut rows = 0u64;
    for b in batches {
        rows += b.num_rows() as u64;
        writer.write(b).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    let xxh3 = xxhash_rust::xxh3::xxh3_64(&out);
    Ok(Encoded {
        bytes: Bytes::from(out),
        rows,
        xxh3,
    })
}

/// Writes a data file, durably: on a local folder it is fsynced (with its folder) before the
/// commit that names it.
pub(crate) async fn put(
    location: &Location,
    table: Table,
    t: &DeltaTable,
    name: &str,
    bytes: Bytes,
) -> Result<(), StoreError> {
    if let Some(dir) = location.local_path() {
        let dir = dir.join(table.dir());
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        return write().map_err(|source| StoreError::Io {
            action: "writing data file",
            path,
            source,
        });
    }
    t.log_store()
        .object_store(None)
        .put(&Path::from(name), bytes.into())
        .await
        .map_err(|e| StoreError::Object(format!("writing {name}: {e}")))?;
    Ok(())
}

/// After a commit on a local folder, its log entry is fsynced, so that it survives a power
/// loss as the data files it names do.
pub(crate) fn sync_log(location: &Location, table: Table, version: u64) {
    if let Some(dir) = location.local_path() {
        let log = dir.join(table.dir()).join("_delta_log");
        let entry = log.join(format!("{version:020}.json"));
        let _ = std::fs::File::open(&entry).and_then(|f| f.sync_all());
        let _ = std::fs::File::open(&log).and_then(|f| f.sync_all());
    }
}

/// An `add` action for a new data file.
pub(crate) fn add_action(name: &str, encoded: &Encoded, tags: &FileTags, data_change: bool) -> Action {
    Action::Add(Add {
        path: name.to_string(),
        partition_values: HashMap::new(),
        size: encoded.bytes.len() as i64,
        modification_time: deploylens_model::now_us() / 1000,
        data_change,
        stats: Some(format!("{{\"numRecords\":{}}}", encoded.rows)),
        tags: Some(tags.to_map()),
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

/// The bytes of a data file.
pub(crate) async fn get(t: &DeltaTable, path: &str) -> Result<Bytes, StoreError> {
    let store: Arc<dyn ObjectStore> = t.log_store().object_store(None);
    let got = store
        .get(&Path::from(path))
        .await
        .map_err(|e| StoreError::Object(format!("reading {path}: {e}")))?;
    got.bytes()
        .await
        .map_err(|e| StoreError::Object(format!("reading {path}: {e}")))
}

/// A data file's bytes, or `None` when the file does not exist (other errors, such as a
/// network failure, are errors: they say nothing about the file).
pub(crate) async fn get_if_present(t: &DeltaTable, path: &str) -> Result<Option<Bytes>, StoreError> {
    match get(t, path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(_) => {
            let store: Arc<dyn ObjectStore> = t.log_store().object_store(None);
            match store.head(&Path::from(path)).await {
                Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(None),
                Ok(_) => get(t, path).await.map(Some),
                Err(e) => Err(StoreError::Object(format!("reading {path}: {e}"))),
            }
        }
    }
}

/// Decodes a data file, naming it in the error.
pub(crate) fn decode(
    path: &str,
    bytes: Bytes,
    columns: Option<&[usize]>,
) -> Result<Vec<RecordBatch>, StoreError> {
    let bad = |e: String| StoreError::Damaged {
        file: path.to_string(),
        reason: e,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(e.to_string()))?;
    let builder = match columns {
        Some(c) => {
            let mask = parquet::arrow::ProjectionMask::leaves(builder.parquet_schema(), c.iter().copied());
            builder.with_projection(mask)
        }
        None => builder,
    };
    let reader = builder.build().map_err(|e| bad(e.to_string()))?;
    reader.map(|b| b.map_err(|e| bad(e.to_string()))).collect()
}

/// The newest `limit` versions of the events table, a line each: version, time, operation,
/// and what deploylens recorded of the commit.
pub async fn history(location: &Location, limit: usize) -> Result<Vec<String>, StoreError> {
    use futures::StreamExt;
    let Some(table) = open(location, Table::Events, None).await? else {
        return Ok(vec![]);
    };
    let latest = table.version().unwrap_or(0);
    let commits: Vec<_> = table.history(Some(limit)).collect().await;
    let mut out = Vec::new();
    for (i, c) in commits.into_iter().flatten().enumerate() {
        let version = c.read_version.map_or(latest.saturating_sub(i as u64), |v| v + 1);
        let when = c
            .timestamp
            .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let op = c.operation.clone().unwrap_or_default();
        let who = c
            .info
            .get("deploylens")
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push(format!("{version:>8}  {when}  {op:<10} {who}"));
    }
    Ok(out)
}
