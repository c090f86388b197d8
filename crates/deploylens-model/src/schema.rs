//! The columns of the two stored tables, `events` and `rejects`, each declared once: its name,
//! Arrow type, nullability, whether Parquet dictionary-encodes it, and the builder that fills
//! it. The Arrow schemas, the batch builders of [`crate::batch`] (their fields, their
//! `finish` in schema order, their sizing) and the store's Parquet settings are all generated
//! from these two tables, so a column cannot be added in one place and forgotten in another,
//! and two columns of one type cannot be swapped.
//!
//! Column names here are the public interface of deploylens: SQL, metrics, dashboards and
//! other engines reading the Parquet files depend on them.
//!
//! ```
//! let schema = deploylens_model::schema::events_schema();
//! assert_eq!(schema.field(0).name(), "event_id");
//! assert!(deploylens_model::schema::plain_encoded_columns().contains(&"event_id"));
//! ```

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Timestamps are stored as microseconds since the epoch, in UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false)))
}

/// A column's builder: how it is finished into an array, and how an empty one is made with
/// room for what another one holds (so that the next batch fills it without growing).
pub trait ColumnBuilder {
    /// An empty builder.
    fn new_empty() -> Self;
    /// The column of `rows` rows built so far, resetting the builder; `stamp_us` is the value
    /// of a batch-wide column.
    fn finish_column(&mut self, rows: usize, stamp_us: i64) -> ArrayRef;
    /// An empty builder with room for `more(n)`, where `n` is what this one holds now (rows,
    /// and bytes for strings).
    fn sized_like(&self, more: fn(usize) -> usize) -> Self;
}

impl ColumnBuilder for StringBuilder {
    fn new_empty() -> Self {
        StringBuilder::new()
    }
    fn finish_column(&mut self, _: usize, _: i64) -> ArrayRef {
        Arc::new(self.finish())
    }
    fn sized_like(&self, more: fn(usize) -> usize) -> Self {
        StringBuilder::with_capacity(more(self.len()), more(self.values_slice().len()))
    }
}

impl ColumnBuilder for ListBuilder<StringBuilder> {
    fn new_empty() -> Self {
        ListBuilder::new(StringBuilder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)))
    }
    fn finish_column(&mut self, _: usize, _: i64) -> ArrayRef {
        Arc::new(self.finish())
    }
    fn sized_like(&self, more: fn(usize) -> usize) -> Self {
        ListBuilder::with_capacity(self.values_ref().sized_like(more), more(self.len()))
            .with_field(Arc::new(Field::new_list_field(DataType::Utf8, false)))
    }
}

macro_rules! primitive_column {
    ($builder:ty) => {
        impl ColumnBuilder for $builder {
            fn new_empty() -> Self {
                <$builder>::new()
            }
            fn finish_column(&mut self, _: usize, _: i64) -> ArrayRef {
                Arc::new(self.finish())
            }
            fn sized_like(&self, more: fn(usize) -> usize) -> Self {
                <$builder>::with_capacity(more(self.len()))
            }
        }
    };
}

primitive_column!(Float64Builder);
primitive_column!(Int64Builder);
primitive_column!(BooleanBuilder);

impl ColumnBuilder for TimestampMicrosecondBuilder {
    fn new_empty() -> Self {
        TimestampMicrosecondBuilder::new().with_timezone("UTC")
    }
    fn finish_column(&mut self, _: usize, _: i64) -> ArrayRef {
        Arc::new(self.finish())
    }
    fn sized_like(&self, more: fn(usize) -> usize) -> Self {
        TimestampMicrosecondBuilder::with_capacity(more(self.len())).with_timezone("UTC")
    }
}

/// A column with one value for the whole batch, given when it is finished: `ingested_at`.
#[derive(Default)]
pub struct BatchStamp;

impl ColumnBuilder for BatchStamp {
    fn new_empty() -> Self {
        BatchStamp
    }
    fn finish_column(&mut self, rows: usize, stamp_us: i64) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![stamp_us; rows]).with_timezone("UTC"))
    }
    fn sized_like(&self, _: fn(usize) -> usize) -> Self {
        BatchStamp
    }
}

/// Declares a table: its columns in order, as `name: Builder = type, nullable, dictionary`.
macro_rules! table {
    ($(#[$doc:meta])* $builders:ident, $schema:ident, $plain:ident;
     $($name:ident : $builder:ty = $dtype:expr, $nullable:expr, $dictionary:expr;)*) => {
        $(#[$doc])*
        pub struct $builders {
            $(#[doc = concat!("The builder of the `", stringify!($name), "` column.")]
            pub $name: $builder,)*
        }

        impl $builders {
            /// Empty builders, one per column.
            pub fn new() -> Self {
                $builders { $($name: <$builder as ColumnBuilder>::new_empty(),)* }
            }

            /// Empty builders with room for a little more than these hold now.
            pub fn sized_like(&self) -> Self {
                let more: fn(usize) -> usize = |n| n + n / 16;
                $builders { $($name: self.$name.sized_like(more),)* }
            }

            /// The columns in schema order; `stamp_us` fills the batch-wide columns.
            pub fn finish(&mut self, rows: usize, stamp_us: i64) -> Vec<ArrayRef> {
                vec![$(self.$name.finish_column(rows, stamp_us),)*]
            }

            fn schema() -> Schema {
                Schema::new(vec![$(Field::new(stringify!($name), $dtype, $nullable),)*])
            }

            fn plain() -> Vec<&'static str> {
                let mut out = Vec::new();
                $(if !$dictionary { out.push(stringify!($name)); })*
                out
            }
        }

        impl Default for $builders {
            fn default() -> Self {
                Self::new()
            }
        }

        static $schema: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new($builders::schema()));
        static $plain: LazyLock<Vec<&'static str>> = LazyLock::new($builders::plain);
    };
}

// Dictionaries pay off for the repeated labels, not for ids, positions or free text.
table! {
    /// The builders of the `events` table: one row per distinct valid event.
    EventColumns, EVENTS, EVENTS_PLAIN;
    event_id: StringBuilder = DataType::Utf8, false, false;
    timestamp: TimestampMicrosecondBuilder = timestamp_type(), false, true;
    event_type: StringBuilder = DataType::Utf8, false, true;
    repository: StringBuilder = DataType::Utf8, false, true;
    repository_source: StringBuilder = DataType::Utf8, false, true;
    environment: StringBuilder = DataType::Utf8, false, true;
    version: StringBuilder = DataType::Utf8, false, true;
    status: StringBuilder = DataType::Utf8, false, true;
    duration_seconds: Float64Builder = DataType::Float64, true, true;
    errors: ListBuilder<StringBuilder> = string_list(), false, true;
    notes: StringBuilder = DataType::Utf8, true, false;
    deployed_by: StringBuilder = DataType::Utf8, true, true;
    trace_id: StringBuilder = DataType::Utf8, true, true;
    services: ListBuilder<StringBuilder> = string_list(), false, true;
    metadata: StringBuilder = DataType::Utf8, true, false;
    extra: StringBuilder = DataType::Utf8, true, false;
    resolution_time_seconds: Float64Builder = DataType::Float64, true, true;
    error_fingerprint: StringBuilder = DataType::Utf8, true, true;
    error_template: StringBuilder = DataType::Utf8, true, true;
    source_file: StringBuilder = DataType::Utf8, false, true;
    source_line: Int64Builder = DataType::Int64, false, false;
    source_offset: Int64Builder = DataType::Int64, false, false;
    ingested_at: BatchStamp = timestamp_type(), false, true;
}

table! {
    /// The builders of the `rejects` table: one row per line that could not be stored as an
    /// event.
    RejectColumns, REJECTS, REJECTS_PLAIN;
    source_file: StringBuilder = DataType::Utf8, false, true;
    source_line: Int64Builder = DataType::Int64, false, true;
    source_offset: Int64Builder = DataType::Int64, false, true;
    repository: StringBuilder = DataType::Utf8, false, true;
    reason: StringBuilder = DataType::Utf8, false, true;
    message: StringBuilder = DataType::Utf8, false, false;
    raw: StringBuilder = DataType::Utf8, false, false;
    raw_escaped: BooleanBuilder = DataType::Boolean, false, false;
    raw_bytes: Int64Builder = DataType::Int64, false, true;
    ingested_at: BatchStamp = timestamp_type(), false, true;
}

/// The `events` table: one row per distinct valid event.
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

/// The `rejects` table: one row per line that could not be stored as an event.
pub fn rejects_schema() -> SchemaRef {
    REJECTS.clone()
}

/// Columns of either table that Parquet stores without a dictionary (ids, positions, free
/// text: their values rarely repeat).
pub fn plain_encoded_columns() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = EVENTS_PLAIN.iter().chain(REJECTS_PLAIN.iter()).copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builders_finish_in_schema_order_and_type() {
        let mut events = EventColumns::new();
        let columns = events.finish(0, 0);
        let schema = events_schema();
        assert_eq!(columns.len(), schema.fields().len());
        for (c, f) in columns.iter().zip(schema.fields()) {
            assert_eq!(c.data_type(), f.data_type(), "{}", f.name());
        }
        let mut rejects = RejectColumns::new();
        assert_eq!(rejects.finish(0, 0).len(), rejects_schema().fields().len());
    }
}
