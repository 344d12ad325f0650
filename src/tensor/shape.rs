//! Shape arithmetic: strides and NumPy-style broadcasting.

/// Row-major strides of a shape (in elements).
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        s[d] = acc;
        acc *= shape[d];
    }
    s
}

/// The broadcast shape of two shapes (NumPy rules: align trailing dimensions; a dimension of 1
/// stretches), or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// Strides for reading a tensor of shape `from` as if it had the (broadcast) shape `to`:
/// stretched and missing dimensions get stride 0.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> Vec<usize> {
    let s = strides(from);
    let offset = to.len() - from.len();
    (0..to.len())
        .map(|i| {
            if i < offset || from[i - offset] == 1 {
                0
            } else {
                s[i - offset]
            }
        })
        .collect()
}

/// Normalises a possibly negative axis (`-1` = last) for a tensor of `ndim` dimensions.
pub fn normalize_axis(axis: isize, ndim: usize, op: &str) -> usize {
    let a = if axis < 0 { axis + ndim as isize } else { axis };
    assert!(
        a >= 0 && (a as usize) < ndim.max(1),
        "{op}: axis {axis} out of range for a tensor with {ndim} dimensions"
    );
    a as usize
}
