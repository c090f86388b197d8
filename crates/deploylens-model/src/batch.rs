//! Builders that turn decoded events and rejects into Arrow record batches.

use arrow::array::RecordBatch;
use arrow::error::ArrowError;

use crate::event::{Event, event_id_hex};
use crate::reject::{Reject, escape_raw};
use crate::schema::{EventColumns, RejectColumns, events_schema, rejects_schema};

/// Where a line was read from.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    /// Path of the file the line was read from (the `source_file` column).
    pub file: &'a str,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the start of the line.
    pub offset: u64,
}

/// How much of a rejected line is kept in the `raw` column.
pub const RAW_LIMIT_BYTES: usize = 4096;

/// Accumulates events into the columns of the `events` table.
pub struct EventBatchBuilder {
    c: EventColumns,
    rows: usize,
    bytes: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        EventBatchBuilder {
            c: EventColumns::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// An empty builder with room for as many rows and bytes as this one holds now, so that a
    /// next batch like this one fills it without growing (and copying) its buffers. Room that
    /// is never written costs no memory: large buffers are mapped lazily.
    pub fn sized_like(&self) -> Self {
        EventBatchBuilder {
            c: self.c.sized_like(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// A rough count of the bytes buffered, to bound memory.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one event as a row, with its id and where it was read from.
    pub fn append(&mut self, event: &Event<'_>, id: u128, at: Location<'_>) {
        let mut hex = [0u8; 32];
        self.c.event_id.append_value(event_id_hex(id, &mut hex));
        self.c.timestamp.append_value(event.timestamp_us);
        self.c.event_type.append_value(event.event_type.as_str());
        self.c.repository.append_value(&event.repository);
        self.c
            .repository_source
            .append_value(event.repository_source.as_str());
        self.c.environment.append_value(event.environment.as_str());
        self.c.version.append_value(&event.version);
        self.c.status.append_value(event.status.as_str());
        self.c.duration_seconds.append_option(event.duration_seconds);
        for e in &event.errors {
            self.c.errors.values().append_value(e);
        }
        self.c.errors.append(true);
        self.c.notes.append_option(event.notes.as_deref());
        self.c
            .deployed_by
            .append_option(event.deployed_by.map(|d| d.as_str()));
        self.c.trace_id.append_option(event.trace_id.as_deref());
        for s in &event.services {
            self.c.services.values().append_value(s);
        }
        self.c.services.append(true);
        self.c.metadata.append_option(event.metadata);
        self.c.extra.append_option(event.extra.as_deref());
        self.c
            .resolution_time_seconds
            .append_option(event.resolution_time_seconds);
        match event.primary_error() {
            Some(message) => {
                let analysis = deploylens_fingerprint::analyze(message);
                self.c.error_fingerprint.append_value(&analysis.fingerprint);
                self.c.error_template.append_value(&analysis.template);
            }
            None => {
                self.c.error_fingerprint.append_null();
                self.c.error_template.append_null();
            }
        }
        self.c.source_file.append_value(at.file);
        self.c.source_line.append_value(at.line as i64);
        self.c.source_offset.append_value(at.offset as i64);
        self.rows += 1;
        self.bytes += 160
            + event.repository.len()
            + event.version.len()
            + event.errors.iter().map(|e| e.len() * 2).sum::<usize>()
            + event.notes.as_ref().map_or(0, |n| n.len())
            + event.metadata.map_or(0, str::len)
            + event.extra.as_ref().map_or(0, String::len)
            + at.file.len();
    }

    /// Builds the batch and resets the builder. `ingested_at_us` stamps every row.
    pub fn finish(&mut self, ingested_at_us: i64) -> Result<RecordBatch, ArrowError> {
        let columns = self.c.finish(self.rows, ingested_at_us);
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(events_schema(), columns)
    }
}

/// Accumulates rejected lines into the columns of the `rejects` table.
#[derive(Default)]
pub struct RejectBatchBuilder {
    c: RejectColumns,
    rows: usize,
}

impl RejectBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Records a rejected line. `raw` may be only the start of a long line; `raw_len` is the
    /// length of the whole line in bytes.
    pub fn append(&mut self, reject: &Reject, repository: &str, raw: &[u8], raw_len: u64, at: Location<'_>) {
        let (text, escaped) = escape_raw(raw, RAW_LIMIT_BYTES);
        let c = &mut self.c;
        c.source_file.append_value(at.file);
        c.source_line.append_value(at.line as i64);
        c.source_offset.append_value(at.offset as i64);
        c.repository.append_value(repository);
        c.reason.append_value(reject.reason.code());
        c.message.append_value(&reject.message);
        c.raw.append_value(text);
        c.raw_escaped.append_value(escaped);
        c.raw_bytes.append_value(raw_len as i64);
        self.rows += 1;
    }

    /// Builds the batch and resets the builder. `ingested_at_us` stamps every row.
    pub fn finish(&mut self, ingested_at_us: i64) -> Result<RecordBatch, ArrowError> {
        let columns = self.c.finish(self.rows, ingested_at_us);
        self.rows = 0;
        RecordBatch::try_new(rejects_schema(), columns)
    }
}
