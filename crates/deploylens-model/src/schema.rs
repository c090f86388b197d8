//! The Arrow schemas of the two stored tables, `events` and `rejects`. Column names here are the
//! public interface of deploylens: SQL, metrics, dashboards and other engines reading the Parquet
//! files depend on them.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Timestamps are stored as microseconds since the epoch, in UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false)))
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("timestamp", timestamp_type(), false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("repository", DataType::Utf8, false),
        Field::new("repository_source", DataType::Utf8, false),
        Field::new("environment", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("duration_seconds", DataType::Float64, true),
        Field::new("errors", string_list(), false),
        Field::new("notes", DataType::Utf8, true),
        Field::new("deployed_by", DataType::Utf8, true),
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("services", string_list(), false),
        Field::new("metadata", DataType::Utf8, true),
        Field::new("extra", DataType::Utf8, true),
        Field::new("resolution_time_seconds", DataType::Float64, true),
        Field::new("error_fingerprint", DataType::Utf8, true),
        Field::new("error_template", DataType::Utf8, true),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("ingested_at", timestamp_type(), false),
    ]))
});

static REJECTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("repository", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
        Field::new("raw_escaped", DataType::Boolean, false),
        Field::new("raw_bytes", DataType::Int64, false),
        Field::new("ingested_at", timestamp_type(), false),
    ]))
});

/// The `events` table: one row per distinct valid event.
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

/// The `rejects` table: one row per line that could not be stored as an event.
pub fn rejects_schema() -> SchemaRef {
    REJECTS.clone()
}
