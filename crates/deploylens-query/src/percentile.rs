//! An exact `percentile_cont`, replacing DataFusion's built-in one, whose interpolation weight
//! is truncated to six decimals (p95 of 1..=100 gives 95.049999 instead of 95.05).
//!
//! Linear interpolation between the two nearest ranks, as numpy's `linear` method and DuckDB's
//! `quantile_cont`: `x[floor(h)] + (h - floor(h)) * (x[ceil(h)] - x[floor(h)])` with
//! `h = p * (n - 1)`. Both `percentile_cont(p) WITHIN GROUP (ORDER BY x)` and
//! `percentile_cont(x, p)` (and the alias `quantile_cont`) use it.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};

/// Exact percentile of `values` (NaN-free), sorting them in place. `None` when empty.
pub fn exact_percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let h = p * (values.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let (a, b) = (values[lo], values[hi]);
    Some(a + (h - lo as f64) * (b - a))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactPercentileCont {
    signature: Signature,
    aliases: Vec<String>,
}

/// The UDAF to register in place of the built-in `percentile_cont`.
pub fn percentile_cont_udaf() -> AggregateUDF {
    let numeric = [
        DataType::Float64,
        DataType::Float32,
        DataType::Int64,
        DataType::Int32,
        DataType::UInt64,
        DataType::UInt32,
    ];
    let mut forms = Vec::new();
    for t in &numeric {
        for p in [DataType::Float64, DataType::Float32] {
            forms.push(TypeSignature::Exact(vec![t.clone(), p]));
        }
    }
    AggregateUDF::from(ExactPercentileCont {
        signature: Signature::one_of(forms, Volatility::Immutable),
        aliases: vec!["quantile_cont".to_string()],
    })
}

impl AggregateUDFImpl for ExactPercentileCont {
    fn name(&self) -> &str {
        "percentile_cont"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(vec![DataType::Float64; arg_types.len()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(DataType::Float64, true);
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "percentile_cont"),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let literal = args.exprs.get(1).and_then(|e| {
            let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
            match e.evaluate(&empty) {
                Ok(ColumnarValue::Scalar(s)) => Some(s),
                _ => None,
            }
        });
        let p = match literal {
            Some(ScalarValue::Float64(Some(p))) => p,
            Some(ScalarValue::Float32(Some(p))) => p as f64,
            None => return plan_err!("percentile_cont: the percentile must be a literal between 0 and 1"),
            Some(other) => {
                return plan_err!(
                    "percentile_cont: the percentile must be a number between 0 and 1, got {other}"
                );
            }
        };
        if !(0.0..=1.0).contains(&p) {
            return plan_err!("percentile_cont: the percentile must be between 0 and 1, got {p}");
        }
        let descending = args.order_bys.first().is_some_and(|o| o.options.descending);
        if args.is_distinct {
            return plan_err!("percentile_cont(DISTINCT ...) is not supported");
        }
        Ok(Box::new(PercentileAccumulator {
            values: Vec::new(),
            p: if descending { 1.0 - p } else { p },
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct PercentileAccumulator {
    values: Vec<f64>,
    p: f64,
}

impl PercentileAccumulator {
    fn extend(&mut self, array: &ArrayRef) {
        let values = array.as_primitive::<Float64Type>();
        self.values
            .extend(values.iter().flatten().filter(|v| !v.is_nan()));
    }
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.extend(&values[0]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.extend(&lists.value(i));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from(std::mem::take(&mut self.values));
        let list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            OffsetBuffer::from_lengths([values.len()]),
            Arc::new(values),
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(exact_percentile(&mut self.values, self.p)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_linear_interpolation() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(exact_percentile(&mut v, 0.95), Some(95.05));
        assert_eq!(exact_percentile(&mut v, 0.5), Some(50.5));
        assert_eq!(exact_percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(exact_percentile(&mut v, 1.0), Some(100.0));
        assert_eq!(exact_percentile(&mut [], 0.5), None);
        assert_eq!(exact_percentile(&mut [7.0], 0.99), Some(7.0));
    }
}
