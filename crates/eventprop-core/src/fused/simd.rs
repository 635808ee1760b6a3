//! Run-time choice of the vector width for the row kernels.
//!
//! The binary and the wheel target baseline x86-64 (SSE2: 4 f32 lanes). The hot row loops
//! are written once as `#[inline(always)]` bodies and compiled three times by
//! [`dispatch!`](crate::fused::simd): baseline, AVX2 and AVX-512F; [`simd`] picks one at
//! run time. No FMA is enabled, so every lane does the same IEEE multiply and add as the
//! baseline code: results are bit-identical whatever the CPU.

/// The widest vector extension of this CPU the row kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    /// The baseline target (SSE2 on x86-64).
    Baseline,
    /// AVX2.
    Avx2,
    /// AVX-512F.
    Avx512,
}

/// The vector extension to use, detected once.
pub(crate) fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<Simd> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            if std::is_x86_feature_detected!("avx512f") {
                Simd::Avx512
            } else if std::is_x86_feature_detected!("avx2") {
                Simd::Avx2
            } else {
                Simd::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Simd::Baseline
}

/// Defines `pub(crate) fn $name<F: Real>(args) -> ret` that runs the `#[inline(always)]`
/// function `$body` compiled for the CPU's widest [`Simd`] level. Each version is a
/// separate, non-inlined function, so that its slice arguments are known not to alias.
macro_rules! dispatch {
    ($(#[$m:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$m])*
        #[inline]
        pub(crate) fn $name<F: Real>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2<F: Real>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx512f")]
                fn avx512<F: Real>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                match $crate::fused::simd::simd() {
                    // SAFETY: `simd()` detected AVX-512F on this CPU.
                    $crate::fused::simd::Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `simd()` detected AVX2 on this CPU.
                    $crate::fused::simd::Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::fused::simd::Simd::Baseline => {}
                }
            }
            #[inline(never)]
            fn base<F: Real>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            base($($arg),*)
        }
    };
}
pub(crate) use dispatch;
