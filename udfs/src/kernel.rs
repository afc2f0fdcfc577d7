//! Vectorised loops shared by the functions: one pass over an Arrow array,
//! whatever its string encoding, with no allocation per row.

use std::sync::Arc;

use datafusion::arrow::array::builder::NullBufferBuilder;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Array, StringViewBuilder,
};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::types::{NativeType, logical_date, logical_float64, logical_string};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{Coercion, ColumnarValue, TypeSignatureClass};

/// Calls `f` on each string of `array` (`None` for nulls), in order.
pub fn for_each_str(array: &ArrayRef, mut f: impl FnMut(Option<&str>)) -> Result<()> {
    match array.data_type() {
        DataType::Utf8View => array.as_string_view().iter().for_each(&mut f),
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut f),
        other => return exec_err!("expected a string array, got {other}"),
    }
    Ok(())
}

/// Runs `f` over a string argument, as an array or a scalar; the result
/// keeps the argument's shape.
pub fn map_string_arg(
    arg: &ColumnarValue,
    f: impl Fn(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    match arg {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(f(array)?)),
        ColumnarValue::Scalar(scalar) => {
            let array = scalar.to_array_of_size(1)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &f(&array)?,
                0,
            )?))
        }
    }
}

/// A string-to-string function into a `Utf8View` array. Short results (up
/// to 12 bytes, such as HS prefixes) are stored inline in the views, so
/// building the output allocates nothing beyond the views themselves.
pub fn map_str_to_view(
    array: &ArrayRef,
    f: impl Fn(&str, &mut StringViewBuilder),
) -> Result<ArrayRef> {
    let mut builder = StringViewBuilder::with_capacity(array.len());
    for_each_str(array, |value| match value {
        Some(v) => f(v, &mut builder),
        None => builder.append_null(),
    })?;
    Ok(Arc::new(builder.finish()))
}

/// A string predicate into a Boolean array (null in, null out).
pub fn map_str_to_bool(array: &ArrayRef, f: impl Fn(&str) -> bool) -> Result<ArrayRef> {
    let mut builder = BooleanBuilder::with_capacity(array.len());
    for_each_str(array, |value| builder.append_option(value.map(&f)))?;
    Ok(Arc::new(builder.finish()))
}

/// Float64 arrays of the arguments, scalars broadcast to `rows`.
pub fn float_args<const N: usize>(
    args: &[ColumnarValue],
    rows: usize,
) -> Result<[Arc<Float64Array>; N]> {
    let arrays: Vec<Arc<Float64Array>> = args
        .iter()
        .map(|a| {
            let array = a.to_array(rows)?;
            match array.data_type() {
                DataType::Float64 => Ok(Arc::new(array.as_primitive().clone())),
                other => exec_err!("expected Float64 arguments, got {other}"),
            }
        })
        .collect::<Result<_>>()?;
    arrays
        .try_into()
        .or_else(|_| exec_err!("expected {N} arguments"))
}

/// Builds a Float64 result from computed values, NULL where `compute`
/// gives `None`. One pass; the validity bitmap is only allocated once a
/// NULL appears.
pub fn float_result(rows: usize, mut compute: impl FnMut(usize) -> Option<f64>) -> Float64Array {
    let mut values = Vec::with_capacity(rows);
    let mut validity = NullBufferBuilder::new(rows);
    for i in 0..rows {
        match compute(i) {
            Some(v) => {
                values.push(v);
                validity.append_non_null();
            }
            None => {
                values.push(0.0);
                validity.append_null();
            }
        }
    }
    Float64Array::new(ScalarBuffer::from(values), validity.finish())
}

/// How many rows ahead of the one being scored the functions that look up
/// an importer's records prefetch them: enough rows to cover a memory
/// access, few enough that the lines are still in L1 when their row comes.
pub const PREFETCH_AHEAD: usize = 16;

/// `compute` of every row's string (`None` for NULL), worked out once per
/// run of rows repeating the previous row's view: items of a declaration
/// sit together and share the importer, often the code.
pub fn per_run<T: Copy>(
    array: &datafusion::arrow::array::StringViewArray,
    mut compute: impl FnMut(&str) -> Option<T>,
) -> Vec<Option<T>> {
    let mut out: Vec<Option<T>> = Vec::with_capacity(array.len());
    for i in 0..array.len() {
        let value = match i {
            _ if array.is_null(i) => None,
            1.. if same_view(array, i, i - 1) => out[i - 1],
            _ => compute(array.value(i)),
        };
        out.push(value);
    }
    out
}

/// Whether rows `i` and `j` of a string view array certainly hold the same
/// string, from their 16-byte views alone: equal views are equal strings
/// (inline, or the same bytes of the same buffer). Unequal views of long
/// strings may still be equal strings; callers then do the full work.
#[inline]
pub fn same_view(array: &datafusion::arrow::array::StringViewArray, i: usize, j: usize) -> bool {
    array.views()[i] == array.views()[j]
}

/// Whether all arguments were scalars: the result is then a scalar too.
pub fn all_scalars(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// Wraps a computed array as the function's result, a scalar when every
/// argument was one.
pub fn finish(args: &[ColumnarValue], array: ArrayRef) -> Result<ColumnarValue> {
    if all_scalars(args) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Invokes an `N`-argument Float64 function row by row: NULL in any
/// argument gives NULL, as does `f` returning `None`; all-scalar arguments
/// give a scalar.
pub fn invoke_floats<const N: usize>(
    name: &str,
    args: &[ColumnarValue],
    number_rows: usize,
    f: impl Fn([f64; N]) -> Option<f64>,
) -> Result<ColumnarValue> {
    if args.len() != N {
        return exec_err!("{name} takes {N} arguments, got {}", args.len());
    }
    let rows = if all_scalars(args) { 1 } else { number_rows };
    let arrays = float_args::<N>(args, rows)?;
    let result = float_result(rows, |i| {
        if arrays.iter().any(|a| a.is_null(i)) {
            return None;
        }
        f(std::array::from_fn(|k| arrays[k].value(i)))
    });
    finish(args, Arc::new(result))
}

/// A text argument (any string encoding).
pub fn text_arg() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// A number argument, coerced to Float64 (money decimals included).
pub fn number_arg() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// A date argument (Date32).
pub fn date_arg() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_date()))
}

/// A string argument as a `Utf8View` array (a no-op for views).
pub fn string_view(array: &ArrayRef) -> Result<datafusion::arrow::array::StringViewArray> {
    Ok(
        datafusion::arrow::compute::cast(array, &DataType::Utf8View)?
            .as_string_view()
            .clone(),
    )
}

/// The string at `i`, or `None` when null (a function, not a closure, so
/// the borrow checker ties the result to the array).
pub fn opt_str(array: &datafusion::arrow::array::StringViewArray, i: usize) -> Option<&str> {
    array.is_valid(i).then(|| array.value(i))
}

/// Row `i` of a number column, `None` where NULL.
pub fn opt_number(array: &datafusion::arrow::array::Float64Array, i: usize) -> Option<f64> {
    array.is_valid(i).then(|| array.value(i))
}

/// The number of rows to compute (1 when every argument is a scalar) and
/// the arguments as arrays of that length.
pub fn arg_arrays(args: &[ColumnarValue], number_rows: usize) -> Result<(usize, Vec<ArrayRef>)> {
    let rows = if all_scalars(args) { 1 } else { number_rows };
    let arrays = args
        .iter()
        .map(|a| a.to_array(rows))
        .collect::<Result<_>>()?;
    Ok((rows, arrays))
}

/// A signature taking `short` arguments, or `short` followed by the first
/// one, two, ... of `tails`: nested optional trailing arguments.
pub fn with_optional_tails(
    short: Vec<Coercion>,
    tails: &[&[Coercion]],
) -> datafusion::logical_expr::Signature {
    use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
    let mut forms = vec![TypeSignature::Coercible(short.clone())];
    let mut long = short;
    for tail in tails {
        long.extend(tail.iter().cloned());
        forms.push(TypeSignature::Coercible(long.clone()));
    }
    Signature::one_of(forms, Volatility::Immutable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    #[test]
    fn per_run_matches_computing_every_row() {
        let long = "IMPORTER-WITH-A-LONG-NAME";
        let rows = [
            Some("A1"),
            Some("A1"),
            None,
            Some(long),
            Some(long),
            Some("B2"),
            None,
            None,
            Some(long),
        ];
        let array = StringViewArray::from(rows.to_vec());
        let mut calls = 0;
        let lengths = per_run(&array, |s| {
            calls += 1;
            Some(s.len())
        });
        let expected: Vec<Option<usize>> = rows.iter().map(|r| r.map(str::len)).collect();
        assert_eq!(lengths, expected);
        assert!(
            calls < 6,
            "repeated rows reuse the previous answer ({calls} calls)"
        );
        assert!(same_view(&array, 0, 1) && !same_view(&array, 1, 5));
    }
}
