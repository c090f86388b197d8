//! Scalar SQL functions over error text: `fingerprint(text)` and `error_template(text)`, the same
//! normalization that fills the `error_fingerprint` and `error_template` columns at ingest.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

fn string_udf(name: &str, f: fn(&str) -> String) -> ScalarUDF {
    let fun = Arc::new(move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let input = arrays[0].as_string::<i32>();
        let mut out = StringBuilder::with_capacity(input.len(), input.len() * 32);
        for v in input.iter() {
            out.append_option(v.map(f));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    });
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        fun,
    )
}

pub fn fingerprint_udf() -> ScalarUDF {
    string_udf("fingerprint", deploylens_fingerprint::fingerprint)
}

pub fn error_template_udf() -> ScalarUDF {
    string_udf("error_template", deploylens_fingerprint::template)
}
