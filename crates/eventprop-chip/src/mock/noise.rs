//! The mock chip's Gaussian noise draws, by table lookup.
//!
//! A noise kick is `σ ξ` with `ξ` standard normal, drawn for every neuron every `noise_dt`
//! (≈ 33 M draws per Yin-Yang epoch). Drawn by inverse transform on [`LEVELS`] equiprobable
//! bins of the standard normal: 12 random bits pick a bin, and `ξ` is the bin's conditional
//! mean `E[X | z_k < X < z_{k+1}]` (`z_k = Φ^{-1}(k / LEVELS)`), the table rescaled to unit
//! variance and stored as `f32` (16 KiB: it stays in the L1 cache next to the simulation's
//! own data). So each bin has exactly its normal probability, values stay within their bin
//! (|ξ| ≤ 3.7), and five draws come from one 64-bit random number: ≈ 1 ns per draw against
//! ≈ 3-6 ns for a ziggurat `StandardNormal` (DESIGN.md "HIL speed").
//!
//! The table comes from the normal density alone: mass and first moment of each bin by the
//! trapezoidal rule on a grid of step 1e-4 over `[-10, 10]` (the mass outside is below
//! 1e-23), bin edges where the cumulative mass crosses `k / LEVELS`, interpolated linearly
//! within a grid cell; then symmetrised and scaled to unit variance.

use std::sync::OnceLock;

use rand::RngCore;

/// Bits per draw.
const BITS: u32 = 12;
/// Equiprobable bins of the table.
pub const LEVELS: usize = 1 << BITS;
/// Draws per 64-bit random number.
const PER_WORD: usize = (64 / BITS) as usize;

/// The conditional means of the [`LEVELS`] bins, ascending, unit variance (to `f32`
/// rounding).
fn table() -> &'static [f32; LEVELS] {
    static TABLE: OnceLock<Box<[f32; LEVELS]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let t: Vec<f32> = build().iter().map(|&x| x as f32).collect();
        t.into_boxed_slice().try_into().expect("LEVELS values")
    })
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

/// Fills `out` with draws of `scale · ξ` from `rng`: five 12-bit chunks of each 64-bit
/// number, low chunk first, each indexing the table; a fresh number for every call.
pub fn fill(rng: &mut impl RngCore, scale: f64, out: &mut [f64]) {
    let t = table();
    for chunk in out.chunks_mut(PER_WORD) {
        let mut x = rng.next_u64();
        for v in chunk {
            *v = scale * f64::from(t[(x & (LEVELS as u64 - 1)) as usize]);
            x >>= BITS;
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
        assert!((0..LEVELS).all(|k| t[k] == -t[LEVELS - 1 - k]), "symmetric");
        let t: Vec<f64> = t.iter().map(|&x| f64::from(x)).collect();
        let mean = t.iter().sum::<f64>() / LEVELS as f64;
        let var = t.iter().map(|x| x * x).sum::<f64>() / LEVELS as f64;
        // unit variance to f32 rounding of the values (relative 6e-8)
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-7,
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
        // the outermost bin's conditional mean: E[X | X > z] = φ(z) / (1 - Φ(z)) with
        // z = Φ^{-1}(1 - 2^-12) ≈ 3.49 (tables), φ(3.49) ≈ 9.03e-4: ≈ 3.70
        assert!((3.65..3.75).contains(&t[LEVELS - 1]), "{}", t[LEVELS - 1]);
    }

    #[test]
    fn draws_use_every_chunk_and_have_the_table_statistics() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut out = vec![0.0; 1_000_001];
        fill(&mut rng, 2.0, &mut out);
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
        // the same stream gives the same draws; a call whose count is not a multiple of 5
        // leaves the rest of its last number unused
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut again = vec![0.0; 7];
        fill(&mut rng, 2.0, &mut again);
        assert_eq!(again[..], out[..7]);
        let mut next = [0.0; 5];
        fill(&mut rng, 2.0, &mut next);
        assert_eq!(next[..], out[10..15]);
        // every draw is a table level
        let t = table();
        assert!(out[..1000].iter().all(|&v| t
            .binary_search_by(|&x| (2.0 * f64::from(x)).total_cmp(&v))
            .is_ok()));
    }
}
