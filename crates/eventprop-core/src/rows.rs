//! Splitting time-major `(T, B, N)` buffers into disjoint per-batch-group rows, so that
//! the time loops can run in parallel over the batch without `unsafe`.

/// For a row-major `(T, B, width_per_b)` buffer, returns one list per batch group; list
/// `g` holds, for every time step `t`, the mutable slice of batch rows
/// `g*group .. min((g+1)*group, B)` at step `t`.
///
/// `row_len` is `B * width_per_b` and `chunk_len` is `group * width_per_b`.
pub(crate) fn split_time_rows<F>(
    buf: &mut [F],
    row_len: usize,
    chunk_len: usize,
) -> Vec<Vec<&mut [F]>> {
    if row_len == 0 || chunk_len == 0 {
        return Vec::new();
    }
    let steps = buf.len() / row_len;
    let groups = row_len.div_ceil(chunk_len);
    let mut out: Vec<Vec<&mut [F]>> = (0..groups).map(|_| Vec::with_capacity(steps)).collect();
    for row in buf.chunks_mut(row_len) {
        for (list, chunk) in out.iter_mut().zip(row.chunks_mut(chunk_len)) {
            list.push(chunk);
        }
    }
    out
}

/// Problems of fewer elements than this (`T * B * N` of one array) run on the calling
/// thread, as one group: below it, handing the work to the rayon pool (waking its threads,
/// waiting for the slowest) costs more than the second thread saves — most of all on a
/// busy machine, where a woken thread may wait a scheduler slice. The Yin-Yang size
/// (38 × 50 × 120 = 228 000) is below, the medium size (6.6 M) far above; see DESIGN.md
/// "Per-call overhead of the seed function" (its effect is measured there together with
/// the other changes, not alone). Results do not depend on it: the kernels treat every
/// batch row alike, whatever the grouping.
pub const SERIAL_BELOW: usize = 1 << 18;

/// Batch rows per parallel group for a problem of `elements` values: all `batch` rows
/// (one group, run on the calling thread) below [`SERIAL_BELOW`]; otherwise enough groups
/// to keep every thread busy, but never fewer than one batch row per group.
pub(crate) fn group_size(batch: usize, elements: usize) -> usize {
    if elements < SERIAL_BELOW {
        return batch.max(1);
    }
    let target_groups = rayon::current_num_threads() * 4;
    batch.div_ceil(target_groups).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_each_row_once() {
        // T = 2, B = 3, width 2 → rows of 6; groups of 2 batch rows → chunks of 4 and 2.
        let mut buf: Vec<u32> = (0..12).collect();
        let groups = split_time_rows(&mut buf, 6, 4);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0][0], &[0, 1, 2, 3]);
        assert_eq!(groups[0][1], &[6, 7, 8, 9]);
        assert_eq!(groups[1][0], &[4, 5]);
        assert_eq!(groups[1][1], &[10, 11]);
    }
}
