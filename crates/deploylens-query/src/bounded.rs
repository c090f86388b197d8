//! Scalar functions whose output can be far larger than their input, bounded.
//!
//! DataFusion's memory pool accounts for what operators buffer (sorts, joins, aggregates), not
//! for the arrays a scalar function returns. `repeat('x', 300000000)` or `range(1, 50000000)`
//! allocate hundreds of megabytes in one call, outside any limit. For an engine with a memory
//! limit, [`bound_functions`] replaces each such function with a wrapper that estimates, from
//! its arguments and before calling it, how many bytes one call would produce, and refuses
//! the call (a "Resources exhausted" error) when that is over the per-call budget. Functions
//! whose output is at most the sum of their inputs (`concat`) are checked the same way, so
//! that chains of them cannot double a value past the budget either.
//!
//! ```
//! # use datafusion::prelude::SessionContext;
//! let ctx = SessionContext::new();
//! deploylens_query::bound_functions(&ctx, 1 << 20);
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::prelude::SessionContext;

/// How the output size of a function follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: bytes of `s` times `n`.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: `n` characters of up to 4 bytes.
    Pad,
    /// `range(start, stop [, step])`, `generate_series`: one 8-byte value per step.
    Series,
    /// `array_repeat(x, n)`, `array_resize(a, n [, x])`: `n` values.
    Count,
    /// `replace(s, from, to)`: every occurrence of `from` may become `to`.
    Replace,
    /// `regexp_replace(s, pattern, repl [, flags])`: every position may take `repl`.
    RegexpReplace,
    /// `concat`, `concat_ws`, `array_concat`, `array_append`, ...: the sum of the inputs.
    Sum,
}

const BOUNDED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("array_repeat", Growth::Count),
    ("array_resize", Growth::Count),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("concat", Growth::Sum),
    ("concat_ws", Growth::Sum),
    ("array_concat", Growth::Sum),
    ("array_append", Growth::Sum),
    ("array_prepend", Growth::Sum),
    ("overlay", Growth::Sum),
];

/// Replaces the functions of `ctx` that can produce outputs out of proportion to their inputs
/// with wrappers that refuse a call whose output would exceed `max_bytes`.
pub fn bound_functions(ctx: &SessionContext, max_bytes: usize) {
    let state = ctx.state();
    for (name, growth) in BOUNDED {
        if let Some(udf) = state.scalar_functions().get(*name) {
            let bounded = Bounded {
                inner: udf.clone(),
                growth: *growth,
                max_bytes,
            };
            ctx.register_udf(ScalarUDF::new_from_impl(bounded));
        }
    }
}

/// A function with a size check before each call.
#[derive(Debug)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    max_bytes: usize,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.growth == other.growth && self.max_bytes == other.max_bytes
    }
}

impl Eq for Bounded {}

impl std::hash::Hash for Bounded {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.growth.hash(state);
        self.max_bytes.hash(state);
    }
}

/// Bytes of the values of an argument over all rows (strings and binaries: their bytes; lists:
/// their values; anything else: its buffers).
fn bytes_of(v: &ColumnarValue, rows: usize) -> u128 {
    match v {
        ColumnarValue::Scalar(s) => scalar_bytes(s) as u128 * rows.max(1) as u128,
        ColumnarValue::Array(a) => a.get_array_memory_size() as u128,
    }
}

fn scalar_bytes(s: &ScalarValue) -> usize {
    match s {
        ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => {
            v.len()
        }
        ScalarValue::Binary(Some(v))
        | ScalarValue::LargeBinary(Some(v))
        | ScalarValue::BinaryView(Some(v)) => v.len(),
        other => other.size(),
    }
}

/// The bytes of the string argument of row `i`, or of the scalar.
fn str_len(v: &ColumnarValue, i: usize) -> u128 {
    match v {
        ColumnarValue::Scalar(s) => scalar_bytes(s) as u128,
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(i).len() as u128,
            DataType::LargeUtf8 => a.as_string::<i64>().value(i).len() as u128,
            DataType::Utf8View => a.as_string_view().value(i).len() as u128,
            _ => 8,
        },
    }
}

/// The integer argument of row `i` (`None` for a null or another type).
fn int_at(v: &ColumnarValue, i: usize) -> Option<i128> {
    match v {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(Some(n)) => Some(n as i128),
            _ => None,
        },
        ColumnarValue::Array(a) => {
            let ints = datafusion::arrow::compute::cast(a, &DataType::Int64).ok()?;
            let ints = ints.as_primitive_opt::<Int64Type>()?;
            ints.is_valid(i).then(|| ints.value(i) as i128)
        }
    }
}

/// How many rows a call covers: arrays give their length, all-scalar calls one row.
fn rows_of(args: &ScalarFunctionArgs) -> usize {
    args.args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            _ => None,
        })
        .unwrap_or(1)
}

/// The number of values `range`/`generate_series` would make for row `i`. Dates and
/// timestamps with an interval step are counted in whole steps of the step's length.
fn series_len(args: &[ColumnarValue], i: usize) -> u128 {
    let value = |v: &ColumnarValue| -> Option<i128> {
        let s = match v {
            ColumnarValue::Scalar(s) => s.clone(),
            ColumnarValue::Array(a) => ScalarValue::try_from_array(a, i).ok()?,
        };
        match s {
            ScalarValue::Date32(Some(d)) => Some(d as i128 * 86_400_000_000_000),
            ScalarValue::Date64(Some(d)) => Some(d as i128 * 1_000_000),
            ScalarValue::TimestampSecond(Some(t), _) => Some(t as i128 * 1_000_000_000),
            ScalarValue::TimestampMillisecond(Some(t), _) => Some(t as i128 * 1_000_000),
            ScalarValue::TimestampMicrosecond(Some(t), _) => Some(t as i128 * 1_000),
            ScalarValue::TimestampNanosecond(Some(t), _) => Some(t as i128),
            ScalarValue::IntervalMonthDayNano(Some(v)) => Some(
                v.months as i128 * 30 * 86_400_000_000_000
                    + v.days as i128 * 86_400_000_000_000
                    + v.nanoseconds as i128,
            ),
            ScalarValue::IntervalDayTime(Some(v)) => {
                Some(v.days as i128 * 86_400_000_000_000 + v.milliseconds as i128 * 1_000_000)
            }
            ScalarValue::IntervalYearMonth(Some(m)) => Some(m as i128 * 30 * 86_400_000_000_000),
            other => match other.cast_to(&DataType::Int64).ok()? {
                ScalarValue::Int64(Some(n)) => Some(n as i128),
                _ => None,
            },
        }
    };
    let (start, stop, step) = match args {
        [stop] => (Some(0), value(stop), Some(1)),
        [start, stop] => (value(start), value(stop), Some(1)),
        [start, stop, step, ..] => (value(start), value(stop), value(step)),
        [] => return 0,
    };
    match (start, stop, step) {
        (Some(a), Some(b), Some(s)) if s != 0 => ((b - a).unsigned_abs() / s.unsigned_abs()) + 1,
        _ => 0,
    }
}

impl Bounded {
    /// The most bytes one call with these arguments can produce.
    fn estimate(&self, args: &ScalarFunctionArgs) -> u128 {
        let a = &args.args;
        let rows = rows_of(args);
        let per_row = |f: &dyn Fn(usize) -> u128| (0..rows).map(f).fold(0u128, u128::saturating_add);
        match self.growth {
            Growth::Repeat if a.len() >= 2 => {
                per_row(&|i| str_len(&a[0], i).saturating_mul(int_at(&a[1], i).unwrap_or(0).max(0) as u128))
            }
            Growth::Pad if a.len() >= 2 => per_row(&|i| int_at(&a[1], i).unwrap_or(0).max(0) as u128 * 4),
            Growth::Series => per_row(&|i| series_len(a, i).saturating_mul(8)),
            Growth::Count if a.len() >= 2 => {
                let each = a[0].data_type().primitive_width().unwrap_or(16) as u128;
                per_row(&|i| int_at(&a[1], i).unwrap_or(0).max(0) as u128 * each)
            }
            Growth::Replace if a.len() >= 3 => per_row(&|i| {
                let (s, from, to) = (str_len(&a[0], i), str_len(&a[1], i).max(1), str_len(&a[2], i));
                s + (s / from + 1) * to
            }),
            Growth::RegexpReplace if a.len() >= 3 => per_row(&|i| {
                str_len(&a[0], i)
                    .saturating_add(1)
                    .saturating_mul(str_len(&a[2], i) + 1)
            }),
            _ => a
                .iter()
                .map(|v| bytes_of(v, rows))
                .fold(0u128, u128::saturating_add),
        }
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Bounded {
            inner: Arc::new(updated),
            growth: self.growth,
            max_bytes: self.max_bytes,
        }))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = self.estimate(&args);
        if bytes > self.max_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would produce about {bytes} bytes in one call, over the limit of {} bytes for one value (a share of the query memory limit)",
                self.name(),
                self.max_bytes
            )));
        }
        self.inner.invoke_with_args(args)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }
    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<datafusion::logical_expr::preimage::PreimageResult> {
        self.inner.inner().preimage(args, lit_expr, info)
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn conditional_arguments<'a>(&self, args: &'a [Expr]) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }
    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(input)
    }
    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }
    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }
    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }
    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.inner().strictly_order_preserving(inputs)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<datafusion::logical_expr::StructFieldMapping> {
        self.inner.inner().struct_field_mapping(literal_args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn placement(
        &self,
        args: &[datafusion::logical_expr::ExpressionPlacement],
    ) -> datafusion::logical_expr::ExpressionPlacement {
        self.inner.inner().placement(args)
    }
}
