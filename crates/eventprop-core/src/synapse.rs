//! The companion synapse (docs/spec.md §3): `y = x W^T`, and its backward
//! `grad_x = g[1] W`, `grad_W = Σ_{t,b} g[0][t,b] ⊗ x[t,b]`.
//!
//! Spike inputs are sparse, so both the forward and the weight gradient have an
//! event-driven path (accumulate one weight column per non-zero input) next to the dense
//! matrix product; [`SparseRows`] holds the non-zeros once so that forward and backward
//! share them. The dense path is used when the density exceeds [`DENSE_ABOVE`].
//!
//! # Shapes
//! `x` `(T, B, N_in)`, `weight` `(N_out, N_in)`, `y` `(T, B, N_out)`, gradient from the
//! neuron `(2, T, B, N_out)`.

use ndarray::linalg::general_mat_mul;
use ndarray::{
    s, Array2, Array3, Array4, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut3,
    Axis, CowArray, Ix3,
};
use rayon::prelude::*;

use crate::error::{check_finite, check_shape, fmt_shape, Error, Result};
use crate::rows::SERIAL_BELOW;
use crate::Real;

/// Input density above which the dense matrix product is used instead of the
/// event-driven accumulation (measured crossover, see DESIGN.md).
pub const DENSE_ABOVE: f64 = 0.15;

/// Row chunk of the dense products handed to one task.
const DENSE_ROWS: usize = 256;

/// The non-zero entries of a `(R, N_in)` input, row by row (CSR).
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows<F> {
    n_cols: usize,
    row_ptr: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<F>,
}

impl<F: Real> SparseRows<F> {
    /// Collects the non-zeros of a row-major `(rows, n_cols)` buffer (no rows when
    /// `n_cols == 0`).
    ///
    /// # Errors
    /// [`Error::Shape`] naming `input` if `data.len()` is not a multiple of `n_cols`, or
    /// `n_cols` exceeds `u32::MAX` (column indices are stored as `u32`).
    pub fn new(data: &[F], n_cols: usize) -> Result<Self> {
        if n_cols > u32::MAX as usize {
            return Err(Error::Shape {
                arg: "input",
                expected: format!("(rows, N_in) with N_in <= {}", u32::MAX),
                actual: format!("N_in = {n_cols}"),
            });
        }
        if n_cols == 0 {
            return Ok(Self {
                n_cols,
                row_ptr: vec![0],
                cols: Vec::new(),
                vals: Vec::new(),
            });
        }
        if data.len() % n_cols != 0 {
            return Err(Error::Shape {
                arg: "input",
                expected: format!("a whole number of rows of N_in = {n_cols} values"),
                actual: format!("{} values", data.len()),
            });
        }
        Ok(Self::collect(data, n_cols))
    }

    /// Like [`SparseRows::new`], for callers that have already checked the shape.
    ///
    /// # Panics
    /// Where [`SparseRows::new`] returns an error; prefer that function for data from
    /// users.
    #[track_caller]
    pub fn from_dense(data: &[F], n_cols: usize) -> Self {
        match Self::new(data, n_cols) {
            Ok(s) => s,
            Err(e) => panic!("SparseRows::from_dense: {e}"),
        }
    }

    /// The collection proper; `n_cols` is in `1..=u32::MAX` and divides `data.len()`.
    fn collect(data: &[F], n_cols: usize) -> Self {
        let rows = data.len() / n_cols;
        let block = if data.len() < SERIAL_BELOW {
            rows.max(1)
        } else {
            rows.div_ceil(rayon::current_num_threads().max(1) * 4)
                .max(1)
        };
        let parts: Vec<(Vec<usize>, Vec<u32>, Vec<F>)> = data
            .par_chunks(block * n_cols)
            .map(|part| {
                // Count first (vectorises), then compact without branches: every element
                // is written at slot `k`, and `k` only advances past non-zeros. One slack
                // slot takes the writes after the last non-zero.
                let count = part.iter().filter(|&&v| v != F::zero()).count();
                let mut cols = vec![0u32; count + 1];
                let mut vals = vec![F::zero(); count + 1];
                let mut lens = Vec::with_capacity(part.len() / n_cols);
                let mut k = 0usize;
                for row in part.chunks(n_cols) {
                    let before = k;
                    for (j, &v) in row.iter().enumerate() {
                        let slot = k.min(count);
                        cols[slot] = j as u32;
                        vals[slot] = v;
                        k += usize::from(v != F::zero());
                    }
                    lens.push(k - before);
                }
                cols.truncate(count);
                vals.truncate(count);
                (lens, cols, vals)
            })
            .collect();
        let nnz: usize = parts.iter().map(|p| p.1.len()).sum();
        let mut row_ptr = Vec::with_capacity(rows + 1);
        row_ptr.push(0);
        let mut cols = Vec::with_capacity(nnz);
        let mut vals = Vec::with_capacity(nnz);
        for (lens, c, v) in parts {
            for len in lens {
                row_ptr.push(row_ptr.last().copied().unwrap_or(0) + len);
            }
            cols.extend_from_slice(&c);
            vals.extend_from_slice(&v);
        }
        Self {
            n_cols,
            row_ptr,
            cols,
            vals,
        }
    }

    /// `rows` rows of zero columns (a buffer cannot tell its row count then).
    fn empty(rows: usize) -> Self {
        Self {
            n_cols: 0,
            row_ptr: vec![0; rows + 1],
            cols: Vec::new(),
            vals: Vec::new(),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.row_ptr.len() - 1
    }

    /// Number of non-zero entries.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// Fraction of non-zero entries (0 for an empty input).
    pub fn density(&self) -> f64 {
        let total = self.rows() * self.n_cols;
        if total == 0 {
            0.0
        } else {
            self.nnz() as f64 / total as f64
        }
    }

    fn row(&self, r: usize) -> (&[u32], &[F]) {
        let range = self.row_ptr[r]..self.row_ptr[r + 1];
        (&self.cols[range.clone()], &self.vals[range])
    }
}

/// Gradients of the synapse.
#[derive(Debug, Clone, PartialEq)]
pub struct SynapseGrad<F> {
    /// `(T, B, N_in)`: `g[1] W`, when requested.
    pub input: Option<Array3<F>>,
    /// `(N_out, N_in)`: `Σ_{t,b} g[0][t,b] ⊗ x[t,b]`.
    pub weight: Array2<F>,
}

fn check_weight<F: Real>(x_cols: usize, weight: &ArrayView2<'_, F>) -> Result<()> {
    if weight.ncols() != x_cols {
        return Err(Error::Shape {
            arg: "weight",
            expected: format!("(N_out, N_in) with N_in = {x_cols}"),
            actual: fmt_shape(weight.shape()),
        });
    }
    let w = weight.as_standard_layout();
    check_finite(
        "weight",
        w.as_slice().expect("standard layout"),
        weight.shape(),
    )
}

/// A validated synapse input `x` `(T, B, N_in)` with its non-zeros collected once, so that
/// the forward and the weight gradient share them.
#[derive(Debug, Clone)]
pub struct SynapseInput<'a, F> {
    x: CowArray<'a, F, Ix3>,
    sparse: SparseRows<F>,
}

impl<'a, F: Real> SynapseInput<'a, F> {
    /// Validates `x` (finite values) and collects its non-zeros.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming `input`; [`Error::Shape`] if `N_in` exceeds `u32::MAX`.
    pub fn new(x: ArrayView3<'a, F>) -> Result<Self> {
        let x: CowArray<'a, F, Ix3> = if x.is_standard_layout() {
            x.into()
        } else {
            x.as_standard_layout().into_owned().into()
        };
        let xs = x.as_slice().expect("standard layout");
        let (t_len, b_len, n_in) = x.dim();
        let sparse = if n_in == 0 {
            SparseRows::empty(t_len * b_len)
        } else {
            SparseRows::new(xs, n_in)?
        };
        // NaN and ±inf are non-zero, so they are all among the collected values: checking
        // those is enough, and the full scan only runs to locate an offending element.
        if sparse.vals.iter().any(|v| !v.is_finite()) {
            check_finite("input", xs, x.shape())?;
        }
        Ok(Self { x, sparse })
    }

    /// The input `(T, B, N_in)`.
    pub fn view(&self) -> ArrayView3<'_, F> {
        self.x.view()
    }

    /// The collected non-zeros.
    pub fn sparse(&self) -> &SparseRows<F> {
        &self.sparse
    }

    fn dense(&self) -> &[F] {
        self.x.as_slice().expect("standard layout")
    }

    /// Forward `y[t, b] = W x[t, b]` `(T, B, N_out)`, event-driven below [`DENSE_ABOVE`].
    ///
    /// # Errors
    /// [`Error::Shape`] if `weight` is not `(N_out, N_in)`; [`Error::NonFinite`].
    pub fn forward(&self, weight: ArrayView2<'_, F>) -> Result<Array3<F>> {
        let (t_len, b_len, _) = self.x.dim();
        let mut y = Array3::zeros((t_len, b_len, weight.nrows()));
        self.forward_into(weight, y.view_mut())?;
        Ok(y)
    }

    /// [`SynapseInput::forward`] into a caller-provided buffer `out` `(T, B, N_out)`
    /// (overwritten; e.g. reused across batches, or the first half of the seed's stacked
    /// output). Bit-identical to [`SynapseInput::forward`]. A C-contiguous `out` is
    /// written in place; another is computed into a temporary and copied.
    ///
    /// # Errors
    /// [`Error::Shape`] if `weight` is not `(N_out, N_in)` or `out` is not
    /// `(T, B, N_out)`; [`Error::NonFinite`] for NaN/inf in `weight`.
    ///
    /// ```
    /// use eventprop_core::SynapseInput;
    /// use ndarray::{array, Array3};
    /// let x = Array3::from_shape_vec((1, 2, 2), vec![1.0, 0.0, 0.0, 1.0])?; // (T, B, N_in)
    /// let w = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]; // (N_out, N_in)
    /// let input = SynapseInput::new(x.view())?;
    /// let mut y = Array3::zeros((1, 2, 3));
    /// input.forward_into(w.view(), y.view_mut())?;
    /// assert_eq!(y, Array3::from_shape_vec((1, 2, 3), vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0])?);
    /// let mut wrong = Array3::zeros((1, 2, 4));
    /// let err = input.forward_into(w.view(), wrong.view_mut()).unwrap_err();
    /// assert_eq!(err.to_string(), "out: expected shape (1, 2, 3), got (1, 2, 4)");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forward_into(
        &self,
        weight: ArrayView2<'_, F>,
        mut out: ArrayViewMut3<'_, F>,
    ) -> Result<()> {
        let (t_len, b_len, n_in) = self.x.dim();
        check_weight(n_in, &weight)?;
        let n_out = weight.nrows();
        check_shape("out", out.shape(), &[t_len, b_len, n_out])?;
        let rows = t_len * b_len;
        let dense = self.sparse.density() > DENSE_ABOVE;
        match out.as_slice_mut() {
            Some(y) if dense => {
                let y = ArrayViewMut2::from_shape((rows, n_out), y).expect("sizes match");
                dense_forward_into(self.dense(), n_in, &weight, y);
            }
            Some(y) => sparse_forward_into(&self.sparse, &weight, y),
            None => {
                let mut y = Array2::zeros((rows, n_out));
                if dense {
                    dense_forward_into(self.dense(), n_in, &weight, y.view_mut());
                } else {
                    sparse_forward_into(&self.sparse, &weight, y.as_slice_mut().expect("owned"));
                }
                out.assign(
                    &y.into_shape_with_order((t_len, b_len, n_out))
                        .expect("sizes match"),
                );
            }
        }
        Ok(())
    }

    /// Weight gradient `Σ_{t,b} g0[t,b] ⊗ x[t,b]` `(N_out, N_in)`; independent of the
    /// number of threads.
    ///
    /// # Errors
    /// [`Error::Shape`] when `g0` is not `(T, B, N_out)`; [`Error::NonFinite`].
    pub fn weight_grad(&self, g0: ArrayView3<'_, F>) -> Result<Array2<F>> {
        let (t_len, b_len, _) = self.x.dim();
        if g0.dim().0 != t_len || g0.dim().1 != b_len {
            return Err(Error::Shape {
                arg: "grad",
                expected: format!("(T, B, N_out) with (T, B) = ({t_len}, {b_len})"),
                actual: fmt_shape(g0.shape()),
            });
        }
        weight_grad(&self.sparse, self.dense(), g0)
    }
}

/// Synapse forward `y[t, b] = W x[t, b]`, `(T, B, N_out)`; picks the event-driven path for
/// sparse inputs.
///
/// # Errors
/// [`Error::Shape`] if `weight` is not `(N_out, N_in)`; [`Error::NonFinite`] for NaN/inf.
pub fn synapse_forward<F: Real>(
    x: ArrayView3<'_, F>,
    weight: ArrayView2<'_, F>,
) -> Result<Array3<F>> {
    check_weight(x.dim().2, &weight)?;
    SynapseInput::new(x)?.forward(weight)
}

/// The seed's stacked synapse output `(2, T, B, N_out) = [y, 0]`.
///
/// # Errors
/// As [`synapse_forward`].
pub fn synapse_forward_stacked<F: Real>(
    x: ArrayView3<'_, F>,
    weight: ArrayView2<'_, F>,
) -> Result<Array4<F>> {
    check_weight(x.dim().2, &weight)?;
    SynapseInput::new(x)?.forward_stacked(weight)
}

impl<F: Real> SynapseInput<'_, F> {
    /// The seed's stacked output `(2, T, B, N_out) = [y, 0]` with `y` as
    /// [`SynapseInput::forward`] (bit-identical), in one zeroed allocation: the event-driven
    /// path adds into the zeroed first half instead of zeroing it again.
    ///
    /// # Errors
    /// As [`SynapseInput::forward`].
    pub fn forward_stacked(&self, weight: ArrayView2<'_, F>) -> Result<Array4<F>> {
        let (t_len, b_len, n_in) = self.x.dim();
        check_weight(n_in, &weight)?;
        let n_out = weight.nrows();
        let mut out = Array4::zeros((2, t_len, b_len, n_out));
        let rows = t_len * b_len;
        let y = &mut out.as_slice_mut().expect("owned")[..rows * n_out];
        if self.sparse.density() > DENSE_ABOVE {
            let y = ArrayViewMut2::from_shape((rows, n_out), y).expect("sizes match");
            dense_forward_into(self.dense(), n_in, &weight, y);
        } else {
            sparse_accumulate(&self.sparse, &weight, y);
        }
        Ok(out)
    }
}

/// Synapse backward from the neuron's stacked gradient `grad` `(2, T, B, N_out)`.
///
/// Returns the weight gradient and, if `need_input`, the input gradient `grad[1] W`
/// (a first layer does not need it).
///
/// # Errors
/// [`Error::Shape`] for mismatched shapes; [`Error::NonFinite`] for NaN/inf.
pub fn synapse_backward<F: Real>(
    x: ArrayView3<'_, F>,
    weight: ArrayView2<'_, F>,
    grad: ArrayView4<'_, F>,
    need_input: bool,
) -> Result<SynapseGrad<F>> {
    let (t_len, b_len, n_in) = x.dim();
    check_weight(n_in, &weight)?;
    check_shape("grad", grad.shape(), &[2, t_len, b_len, weight.nrows()])?;
    let input = SynapseInput::new(x)?;
    let weight_grad = input.weight_grad(grad.index_axis(Axis(0), 0))?;
    let input = if need_input {
        Some(input_grad(weight, grad.index_axis(Axis(0), 1))?)
    } else {
        None
    };
    Ok(SynapseGrad {
        input,
        weight: weight_grad,
    })
}

/// Weight gradient `Σ_{t,b} g0[t,b] ⊗ x[t,b]` `(N_out, N_in)` from the input's non-zeros
/// (`x_dense` is the same input as a row-major buffer, used when it is dense).
///
/// The result does not depend on the number of threads.
///
/// # Errors
/// [`Error::Shape`] when `g0` does not have one row per input row; [`Error::NonFinite`].
pub fn weight_grad<F: Real>(
    sparse: &SparseRows<F>,
    x_dense: &[F],
    g0: ArrayView3<'_, F>,
) -> Result<Array2<F>> {
    let (t_len, b_len, n_out) = g0.dim();
    if n_out == 0 {
        return Ok(Array2::zeros((0, sparse.n_cols)));
    }
    if t_len * b_len != sparse.rows() || x_dense.len() != sparse.rows() * sparse.n_cols {
        return Err(Error::Shape {
            arg: "grad",
            expected: format!("{} rows (T * B) matching the input", sparse.rows()),
            actual: fmt_shape(g0.shape()),
        });
    }
    let g0 = g0.as_standard_layout();
    let gs = g0.as_slice().expect("standard layout");
    check_finite("grad", gs, g0.shape())?;
    let n_in = sparse.n_cols;
    let rows = sparse.rows();
    if sparse.density() > DENSE_ABOVE {
        // grad_W = G0^T X, split over output neurons.
        let g = ArrayView2::from_shape((rows, n_out), gs).expect("sizes match");
        let x = ArrayView2::from_shape((rows, n_in), x_dense).expect("sizes match");
        let mut gw = Array2::zeros((n_out, n_in));
        gw.axis_chunks_iter_mut(Axis(0), 32)
            .into_par_iter()
            .with_min_len(serial_len(rows * n_out * n_in))
            .enumerate()
            .for_each(|(c, mut block)| {
                let o0 = c * 32;
                let o1 = o0 + block.nrows();
                general_mat_mul(
                    F::one(),
                    &g.slice(s![.., o0..o1]).t(),
                    &x,
                    F::zero(),
                    &mut block,
                );
            });
        return Ok(gw);
    }
    // Event-driven: grad_W^T[j, o] += x[r, j] * g0[r, o]; split over output neurons so
    // that each task owns a column block and the summation order is fixed.
    let blocks = if sparse.nnz() * n_out < SERIAL_BELOW {
        1
    } else {
        rayon::current_num_threads().clamp(1, n_out.max(1))
    };
    let width = n_out.div_ceil(blocks).max(1);
    let parts: Vec<(usize, Vec<F>)> = (0..n_out.div_ceil(width))
        .into_par_iter()
        .map(|blk| {
            let o0 = blk * width;
            let o1 = (o0 + width).min(n_out);
            let w = o1 - o0;
            let mut acc = vec![F::zero(); n_in * w];
            for r in 0..rows {
                let (cols, vals) = sparse.row(r);
                if cols.is_empty() {
                    continue;
                }
                let grow = &gs[r * n_out + o0..r * n_out + o1];
                for (&j, &xv) in cols.iter().zip(vals) {
                    let a = &mut acc[j as usize * w..(j as usize + 1) * w];
                    for (a, &gv) in a.iter_mut().zip(grow) {
                        *a += xv * gv;
                    }
                }
            }
            (o0, acc)
        })
        .collect();
    let mut gw = Array2::zeros((n_out, n_in));
    for (o0, acc) in parts {
        let w = acc.len() / n_in.max(1);
        for j in 0..n_in {
            for k in 0..w {
                gw[[o0 + k, j]] = acc[j * w + k];
            }
        }
    }
    Ok(gw)
}

/// Input gradient `g1 W` `(T, B, N_in)` (dense: the adjoint is dense in time).
///
/// # Errors
/// [`Error::Shape`] when `g1` is not `(T, B, N_out)`; [`Error::NonFinite`].
pub fn input_grad<F: Real>(weight: ArrayView2<'_, F>, g1: ArrayView3<'_, F>) -> Result<Array3<F>> {
    let (t_len, b_len, n_out) = g1.dim();
    if n_out != weight.nrows() {
        return Err(Error::Shape {
            arg: "grad",
            expected: format!("(2, T, B, N_out) with N_out = {}", weight.nrows()),
            actual: fmt_shape(g1.shape()),
        });
    }
    let g1 = g1.as_standard_layout();
    let gs = g1.as_slice().expect("standard layout");
    check_finite("grad", gs, g1.shape())?;
    let n_in = weight.ncols();
    let g = ArrayView2::from_shape((t_len * b_len, n_out), gs).expect("sizes match");
    let mut out = Array2::zeros((t_len * b_len, n_in));
    out.axis_chunks_iter_mut(Axis(0), DENSE_ROWS)
        .into_par_iter()
        .with_min_len(serial_len(t_len * b_len * n_out * n_in))
        .enumerate()
        .for_each(|(c, mut block)| {
            let r0 = c * DENSE_ROWS;
            let r1 = r0 + block.nrows();
            general_mat_mul(
                F::one(),
                &g.slice(s![r0..r1, ..]),
                &weight,
                F::zero(),
                &mut block,
            );
        });
    Ok(out
        .into_shape_with_order((t_len, b_len, n_in))
        .expect("sizes match"))
}

/// `with_min_len` for the dense products' tasks: all on the calling thread when the
/// product has fewer than [`SERIAL_BELOW`] multiply-adds.
fn serial_len(work: usize) -> usize {
    if work < SERIAL_BELOW {
        usize::MAX
    } else {
        1
    }
}

/// Event-driven forward over precomputed non-zeros: `(R, N_out)`.
///
/// Unlike [`SparseRows::forward`], `weight` is not checked for NaN/inf.
///
/// # Panics
/// If `weight` does not have `N_in` columns; prefer [`SparseRows::forward`], which returns
/// an error instead, for data from users.
#[track_caller]
pub fn sparse_forward<F: Real>(sparse: &SparseRows<F>, weight: &ArrayView2<'_, F>) -> Array2<F> {
    if weight.ncols() != sparse.n_cols {
        panic!(
            "sparse_forward: weight: expected (N_out, N_in) with N_in = {}, got {}",
            sparse.n_cols,
            fmt_shape(weight.shape())
        );
    }
    sparse_forward_unchecked(sparse, weight)
}

impl<F: Real> SparseRows<F> {
    /// Event-driven forward `y[r] = W x[r]` over the collected non-zeros: `(R, N_out)`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `weight` if it is not `(N_out, N_in)`; [`Error::NonFinite`]
    /// for NaN/inf in `weight`.
    pub fn forward(&self, weight: ArrayView2<'_, F>) -> Result<Array2<F>> {
        check_weight(self.n_cols, &weight)?;
        Ok(sparse_forward_unchecked(self, &weight))
    }

    /// Number of columns `N_in`.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }
}

/// [`SparseRows::forward`] without the checks (`weight` has `N_in` columns).
fn sparse_forward_unchecked<F: Real>(
    sparse: &SparseRows<F>,
    weight: &ArrayView2<'_, F>,
) -> Array2<F> {
    let mut y = Array2::zeros((sparse.rows(), weight.nrows()));
    sparse_forward_into(sparse, weight, y.as_slice_mut().expect("owned"));
    y
}

/// Event-driven forward into a row-major `(R, N_out)` buffer `y` (overwritten); `weight`
/// has `N_in` columns.
fn sparse_forward_into<F: Real>(sparse: &SparseRows<F>, weight: &ArrayView2<'_, F>, y: &mut [F]) {
    y.fill(F::zero());
    sparse_accumulate(sparse, weight, y);
}

/// Event-driven forward added to a row-major `(R, N_out)` buffer `y` that holds zeros (the
/// result is that of [`sparse_forward_into`]; a freshly zeroed buffer is not zeroed again).
fn sparse_accumulate<F: Real>(sparse: &SparseRows<F>, weight: &ArrayView2<'_, F>, y: &mut [F]) {
    let n_out = weight.nrows();
    if n_out == 0 {
        return;
    }
    let wt = weight.t().as_standard_layout().into_owned(); // (N_in, N_out)
    let wts = wt.as_slice().expect("owned");
    // Rows per task: all of them (the calling thread) for small problems.
    let rows_per = if (sparse.rows() + sparse.nnz()) * n_out < SERIAL_BELOW {
        sparse.rows().max(1)
    } else {
        64
    };
    y.par_chunks_mut(n_out * rows_per)
        .enumerate()
        .for_each(|(c, block)| {
            for (k, yrow) in block.chunks_mut(n_out).enumerate() {
                let (cols, vals) = sparse.row(c * rows_per + k);
                for (&j, &xv) in cols.iter().zip(vals) {
                    let wrow = &wts[j as usize * n_out..(j as usize + 1) * n_out];
                    for (y, &w) in yrow.iter_mut().zip(wrow) {
                        *y += xv * w;
                    }
                }
            }
        });
}

/// Dense forward `X W^T` for a row-major `(R, N_in)` buffer into `y` `(R, N_out)`
/// (overwritten).
fn dense_forward_into<F: Real>(
    xs: &[F],
    n_in: usize,
    weight: &ArrayView2<'_, F>,
    mut y: ArrayViewMut2<'_, F>,
) {
    let rows = y.nrows();
    if n_in == 0 {
        y.fill(F::zero());
        return;
    }
    let x = ArrayView2::from_shape((rows, n_in), xs).expect("sizes match");
    y.axis_chunks_iter_mut(Axis(0), DENSE_ROWS)
        .into_par_iter()
        .with_min_len(serial_len(rows * n_in * weight.nrows()))
        .enumerate()
        .for_each(|(c, mut block)| {
            let r0 = c * DENSE_ROWS;
            let r1 = r0 + block.nrows();
            general_mat_mul(
                F::one(),
                &x.slice(s![r0..r1, ..]),
                &weight.t(),
                F::zero(),
                &mut block,
            );
        });
}
