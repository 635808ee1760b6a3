//! The floating-point element types the kernels run on (`f32`, `f64`).

use std::fmt::{Debug, Display};

/// A floating-point element type: implemented for `f32` and `f64`.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Name of the type (`"f32"`/`"f64"`), for messages and file headers.
    const NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn of(x: f64) -> Self;

    /// `if cond { a } else { b }` with bit masks instead of a branch or a blend: loops over
    /// it vectorise on baseline x86-64 (SSE2 has no blend; the compiler's cost model keeps a
    /// plain `if` scalar there).
    fn select(cond: bool, a: Self, b: Self) -> Self;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn select(cond: bool, a: Self, b: Self) -> Self {
        let m = 0u32.wrapping_sub(u32::from(cond));
        f32::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn select(cond: bool, a: Self, b: Self) -> Self {
        let m = 0u64.wrapping_sub(u64::from(cond));
        f64::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
    }
}
