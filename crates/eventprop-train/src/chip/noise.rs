//! The mock chip's Gaussian noise draws, by table lookup.
//!
//! A noise kick is `σ ξ` with `ξ` standard normal, drawn for every neuron every `noise_dt`
//! (≈ 33 M draws per Yin-Yang epoch). Drawn by inverse transform on [`LEVELS`] equiprobable
//! bins of the standard normal: 14 random bits pick a bin, and `ξ` is the bin's conditional
//! mean `E[X | z_k < X < z_{k+1}]` (`z_k = Φ^{-1}(k / LEVELS)`), the table rescaled to unit
//! variance. So each bin has exactly its normal probability, values stay within their bin
//! (|ξ| ≤ 4.0), and four draws come from one 64-bit random number: ≈ 1 ns per draw against
//! ≈ 3-6 ns for a ziggurat `StandardNormal` (DESIGN.md "HIL speed").
//!
//! The table comes from the normal density alone: mass and first moment of each bin by the
//! trapezoidal rule on a grid of step 1e-4 over `[-10, 10]` (the mass outside is below
//! 1e-23), bin edges where the cumulative mass crosses `k / LEVELS`, interpolated linearly
//! within a grid cell; then symmetrised and scaled to unit variance.

use std::sync::OnceLock;

use rand::RngCore;

/// Bits per draw.
const BITS: u32 = 14;
/// Equiprobable bins of the table.
pub const LEVELS: usize = 1 << BITS;

/// The conditional means of the [`LEVELS`] bins, ascending, unit variance.
fn table() -> &'static [f64] {
    static TABLE: OnceLock<Vec<f64>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Vec<f64> {
    let density = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (lo, hi, h) = (-10.0, 10.0, 1e-4);
    let cells = ((hi - lo) / h) as usize;
    let per_bin = 1.0 / LEVELS as f64;
    let mut means = Vec::with_capacity(LEVELS);
    let (mut bin_mass, mut bin_moment, mut cumulative) = (0.0, 0.0, 0.0);
    for c in 0..cells {
        let (x0, x1) = (lo + c as f64 * h, lo + (c + 1) as f64 * h);
        let (f0, f1) = (density(x0), density(x1));
        let mass = 0.5 * h * (f0 + f1);
        let moment = 0.5 * h * (x0 * f0 + x1 * f1);
        // the part of this cell below the next edge goes to the current bin
        let mut rest = 1.0;
        while means.len() + 1 < LEVELS
            && cumulative + rest * mass >= (means.len() + 1) as f64 * per_bin
        {
            let edge = (means.len() + 1) as f64 * per_bin;
            let part = (edge - cumulative) / mass; // share of the whole cell
            bin_mass += part * mass;
            bin_moment += part * moment;
            means.push(bin_moment / bin_mass);
            cumulative = edge;
            rest -= part;
            bin_mass = 0.0;
            bin_moment = 0.0;
        }
        bin_mass += rest * mass;
        bin_moment += rest * moment;
        cumulative += rest * mass;
    }
    means.push(bin_moment / bin_mass);
    // symmetrise, then unit variance (each bin has probability 1 / LEVELS)
    let sym: Vec<f64> = (0..LEVELS)
        .map(|k| 0.5 * (means[k] - means[LEVELS - 1 - k]))
        .collect();
    let var = sym.iter().map(|m| m * m).sum::<f64>() / LEVELS as f64;
    sym.iter().map(|m| m / var.sqrt()).collect()
}

/// Appends `count` draws of `scale · ξ` from `rng` to `out`: four 16-bit chunks of each
/// 64-bit number, low chunk first, the top 14 bits of a chunk indexing the table.
pub fn fill(rng: &mut impl RngCore, scale: f64, count: usize, out: &mut Vec<f64>) {
    let t = table();
    let start = out.len();
    out.resize(start + count, 0.0);
    for chunk in out[start..].chunks_mut(4) {
        let mut x = rng.next_u64();
        for v in chunk {
            *v = scale * t[((x & 0xFFFF) >> (16 - BITS)) as usize];
            x >>= 16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn the_table_is_a_symmetric_unit_variance_normal() {
        let t = table();
        assert_eq!(t.len(), LEVELS);
        assert!(t.windows(2).all(|w| w[0] < w[1]), "ascending");
        let mean = t.iter().sum::<f64>() / LEVELS as f64;
        let var = t.iter().map(|x| x * x).sum::<f64>() / LEVELS as f64;
        assert!(
            mean.abs() < 1e-15 && (var - 1.0).abs() < 1e-12,
            "{mean} {var}"
        );
        // the share of the table below x is Φ(x) to within one bin (Φ from standard normal
        // tables: Φ(0.5) = 0.691462461, Φ(1) = 0.841344746, Φ(2) = 0.977249868,
        // Φ(3) = 0.998650102)
        for (x, phi) in [
            (0.5, 0.691462461),
            (1.0, 0.841344746),
            (2.0, 0.977249868),
            (3.0, 0.998650102),
        ] {
            let below = t.iter().filter(|&&v| v < x).count() as f64 / LEVELS as f64;
            assert!(
                (below - phi).abs() <= 1.0 / LEVELS as f64,
                "Φ({x}): {below}"
            );
        }
        // the outermost bin's conditional mean: E[X | X > Φ^{-1}(1 - 2^-14)] ≈ 4.0
        assert!((3.9..4.1).contains(&t[LEVELS - 1]), "{}", t[LEVELS - 1]);
    }

    #[test]
    fn draws_use_every_chunk_and_have_the_table_statistics() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut out = Vec::new();
        fill(&mut rng, 2.0, 1_000_001, &mut out);
        assert_eq!(out.len(), 1_000_001);
        let n = out.len() as f64;
        let mean = out.iter().sum::<f64>() / n;
        let var = out.iter().map(|x| x * x).sum::<f64>() / n - mean * mean;
        // scale 2: mean 0 ± 3 standard errors (2/1000), variance 4 ± 3 standard errors
        assert!(
            mean.abs() < 0.006 && (var - 4.0).abs() < 0.017,
            "{mean} {var}"
        );
        // two-sided tail beyond 2σ (here 4): 0.0455 ± 3 standard errors (0.0002)
        let tail = out.iter().filter(|x| x.abs() > 4.0).count() as f64 / n;
        assert!((tail - 0.0455).abs() < 0.0007, "{tail}");
        // the same stream gives the same draws; a count not a multiple of 4 ends early
        let mut again = Vec::new();
        fill(
            &mut Xoshiro256PlusPlus::seed_from_u64(3),
            2.0,
            6,
            &mut again,
        );
        assert_eq!(again[..], out[..6]);
    }
}
