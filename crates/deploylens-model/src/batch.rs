//! Builders that turn decoded events and rejects into Arrow record batches.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;

use crate::event::{Event, event_id_hex};
use crate::reject::{Reject, escape_raw};
use crate::schema::{events_schema, rejects_schema};

/// Where a line was read from.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub file: &'a str,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the start of the line.
    pub offset: u64,
}

/// How much of a rejected line is kept in the `raw` column.
pub const RAW_LIMIT_BYTES: usize = 4096;

fn string_list_builder() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)))
}

fn constant_timestamp(value_us: i64, rows: usize) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(vec![value_us; rows]).with_timezone("UTC"))
}

/// Accumulates events into the columns of the `events` table.
pub struct EventBatchBuilder {
    event_id: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    event_type: StringBuilder,
    repository: StringBuilder,
    repository_source: StringBuilder,
    environment: StringBuilder,
    version: StringBuilder,
    status: StringBuilder,
    duration_seconds: Float64Builder,
    errors: ListBuilder<StringBuilder>,
    notes: StringBuilder,
    deployed_by: StringBuilder,
    trace_id: StringBuilder,
    services: ListBuilder<StringBuilder>,
    metadata: StringBuilder,
    extra: StringBuilder,
    resolution_time_seconds: Float64Builder,
    error_fingerprint: StringBuilder,
    error_template: StringBuilder,
    source_file: StringBuilder,
    source_line: Int64Builder,
    source_offset: Int64Builder,
    rows: usize,
    bytes: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    pub fn new() -> Self {
        EventBatchBuilder {
            event_id: StringBuilder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            event_type: StringBuilder::new(),
            repository: StringBuilder::new(),
            repository_source: StringBuilder::new(),
            environment: StringBuilder::new(),
            version: StringBuilder::new(),
            status: StringBuilder::new(),
            duration_seconds: Float64Builder::new(),
            errors: string_list_builder(),
            notes: StringBuilder::new(),
            deployed_by: StringBuilder::new(),
            trace_id: StringBuilder::new(),
            services: string_list_builder(),
            metadata: StringBuilder::new(),
            extra: StringBuilder::new(),
            resolution_time_seconds: Float64Builder::new(),
            error_fingerprint: StringBuilder::new(),
            error_template: StringBuilder::new(),
            source_file: StringBuilder::new(),
            source_line: Int64Builder::new(),
            source_offset: Int64Builder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    /// An empty builder with room for as many rows and bytes as this one holds now, so that a
    /// next batch like this one fills it without growing (and copying) its buffers. Room that
    /// is never written costs no memory: large buffers are mapped lazily.
    pub fn sized_like(&self) -> Self {
        let more = |n: usize| n + n / 16;
        let s = |b: &StringBuilder| StringBuilder::with_capacity(more(b.len()), more(b.values_slice().len()));
        let list = |b: &ListBuilder<StringBuilder>| {
            ListBuilder::with_capacity(s(b.values_ref()), more(b.len()))
                .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)))
        };
        let rows = more(self.rows);
        EventBatchBuilder {
            event_id: s(&self.event_id),
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            event_type: s(&self.event_type),
            repository: s(&self.repository),
            repository_source: s(&self.repository_source),
            environment: s(&self.environment),
            version: s(&self.version),
            status: s(&self.status),
            duration_seconds: Float64Builder::with_capacity(rows),
            errors: list(&self.errors),
            notes: s(&self.notes),
            deployed_by: s(&self.deployed_by),
            trace_id: s(&self.trace_id),
            services: list(&self.services),
            metadata: s(&self.metadata),
            extra: s(&self.extra),
            resolution_time_seconds: Float64Builder::with_capacity(rows),
            error_fingerprint: s(&self.error_fingerprint),
            error_template: s(&self.error_template),
            source_file: s(&self.source_file),
            source_line: Int64Builder::with_capacity(rows),
            source_offset: Int64Builder::with_capacity(rows),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// A rough count of the bytes buffered, to bound memory.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    pub fn append(&mut self, event: &Event<'_>, id: u128, at: Location<'_>) {
        let mut hex = [0u8; 32];
        self.event_id.append_value(event_id_hex(id, &mut hex));
        self.timestamp.append_value(event.timestamp_us);
        self.event_type.append_value(event.event_type.as_str());
        self.repository.append_value(&event.repository);
        self.repository_source
            .append_value(event.repository_source.as_str());
        self.environment.append_value(event.environment.as_str());
        self.version.append_value(&event.version);
        self.status.append_value(event.status.as_str());
        self.duration_seconds.append_option(event.duration_seconds);
        for e in &event.errors {
            self.errors.values().append_value(e);
        }
        self.errors.append(true);
        self.notes.append_option(event.notes.as_deref());
        self.deployed_by
            .append_option(event.deployed_by.map(|d| d.as_str()));
        self.trace_id.append_option(event.trace_id.as_deref());
        for s in &event.services {
            self.services.values().append_value(s);
        }
        self.services.append(true);
        self.metadata.append_option(event.metadata);
        self.extra.append_option(event.extra.as_deref());
        self.resolution_time_seconds
            .append_option(event.resolution_time_seconds);
        match event.primary_error() {
            Some(message) => {
                let analysis = deploylens_fingerprint::analyze(message);
                self.error_fingerprint.append_value(&analysis.fingerprint);
                self.error_template.append_value(&analysis.template);
            }
            None => {
                self.error_fingerprint.append_null();
                self.error_template.append_null();
            }
        }
        self.source_file.append_value(at.file);
        self.source_line.append_value(at.line as i64);
        self.source_offset.append_value(at.offset as i64);
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
        let rows = self.rows;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.repository.finish()),
            Arc::new(self.repository_source.finish()),
            Arc::new(self.environment.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.duration_seconds.finish()),
            Arc::new(self.errors.finish()),
            Arc::new(self.notes.finish()),
            Arc::new(self.deployed_by.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.services.finish()),
            Arc::new(self.metadata.finish()),
            Arc::new(self.extra.finish()),
            Arc::new(self.resolution_time_seconds.finish()),
            Arc::new(self.error_fingerprint.finish()),
            Arc::new(self.error_template.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_line.finish()),
            Arc::new(self.source_offset.finish()),
            constant_timestamp(ingested_at_us, rows),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(events_schema(), columns)
    }
}

/// Accumulates rejected lines into the columns of the `rejects` table.
pub struct RejectBatchBuilder {
    source_file: StringBuilder,
    source_line: Int64Builder,
    source_offset: Int64Builder,
    repository: StringBuilder,
    reason: StringBuilder,
    message: StringBuilder,
    raw: StringBuilder,
    raw_escaped: BooleanBuilder,
    raw_bytes: Int64Builder,
    rows: usize,
}

impl Default for RejectBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RejectBatchBuilder {
    pub fn new() -> Self {
        RejectBatchBuilder {
            source_file: StringBuilder::new(),
            source_line: Int64Builder::new(),
            source_offset: Int64Builder::new(),
            repository: StringBuilder::new(),
            reason: StringBuilder::new(),
            message: StringBuilder::new(),
            raw: StringBuilder::new(),
            raw_escaped: BooleanBuilder::new(),
            raw_bytes: Int64Builder::new(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Records a rejected line. `raw` may be only the start of a long line; `raw_len` is the
    /// length of the whole line in bytes.
    pub fn append(&mut self, reject: &Reject, repository: &str, raw: &[u8], raw_len: u64, at: Location<'_>) {
        let (text, escaped) = escape_raw(raw, RAW_LIMIT_BYTES);
        self.source_file.append_value(at.file);
        self.source_line.append_value(at.line as i64);
        self.source_offset.append_value(at.offset as i64);
        self.repository.append_value(repository);
        self.reason.append_value(reject.reason.code());
        self.message.append_value(&reject.message);
        self.raw.append_value(text);
        self.raw_escaped.append_value(escaped);
        self.raw_bytes.append_value(raw_len as i64);
        self.rows += 1;
    }

    pub fn finish(&mut self, ingested_at_us: i64) -> Result<RecordBatch, ArrowError> {
        let rows = self.rows;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source_file.finish()),
            Arc::new(self.source_line.finish()),
            Arc::new(self.source_offset.finish()),
            Arc::new(self.repository.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(self.raw_escaped.finish()),
            Arc::new(self.raw_bytes.finish()),
            constant_timestamp(ingested_at_us, rows),
        ];
        self.rows = 0;
        RecordBatch::try_new(rejects_schema(), columns)
    }
}
