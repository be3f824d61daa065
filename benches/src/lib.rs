//! Benchmarks: criterion benches and load harness binaries.

/// Median, min and max of `values` (the median of an even count is the mean of the middle two); `None` when
/// there are none. The harness binaries report every figure this way.
pub fn median_min_max(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.sort_by(f64::total_cmp);
    let (&min, &max) = (values.first()?, values.last()?);
    let mid = values.len() / 2;
    let median = if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    Some((median, min, max))
}

#[cfg(test)]
mod tests {
    use super::median_min_max;

    #[test]
    fn odd_even_and_empty() {
        assert_eq!(median_min_max(vec![3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(
            median_min_max(vec![4.0, 1.0, 2.0, 3.0]),
            Some((2.5, 1.0, 4.0))
        );
        assert_eq!(median_min_max(Vec::new()), None);
    }
}
