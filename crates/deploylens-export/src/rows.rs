//! Reading query results by column name, whatever numeric type the SQL produced.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

/// The rows of a result, one batch after another.
pub struct Rows<'a> {
    batches: &'a [RecordBatch],
}

pub struct Row<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

impl<'a> Rows<'a> {
    pub fn new(batches: &'a [RecordBatch]) -> Self {
        Rows { batches }
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'a>> + '_ {
        self.batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |i| Row { batch: b, index: i }))
    }
}

impl Row<'_> {
    fn column(&self, name: &str) -> Option<&arrow::array::ArrayRef> {
        self.batch.column_by_name(name)
    }

    pub fn str(&self, name: &str) -> Option<String> {
        let col = self.column(name)?;
        if col.is_null(self.index) {
            return None;
        }
        let text = cast(&col.slice(self.index, 1), &DataType::Utf8).ok()?;
        Some(text.as_string::<i32>().value(0).to_string())
    }

    pub fn f64(&self, name: &str) -> Option<f64> {
        let col = self.column(name)?;
        if col.is_null(self.index) {
            return None;
        }
        let one = col.slice(self.index, 1);
        if let DataType::Timestamp(_, _) = one.data_type() {
            // Seconds since the epoch, from microseconds.
            let us = cast(&one, &DataType::Int64).ok()?;
            return Some(us.as_primitive::<Int64Type>().value(0) as f64 / 1e6);
        }
        let v = cast(&one, &DataType::Float64).ok()?;
        Some(v.as_primitive::<Float64Type>().value(0))
    }
}
