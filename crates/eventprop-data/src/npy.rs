//! Checks of `.npy` streams and `.npz` entries before anything is allocated: the pieces
//! that every size-checked reader shares (the data files here, the CLI's array readers).
//!
//! A `.npy` header declares the shape and dtype, and readers allocate that much (and the
//! header parser the header length that the prelude declares) before reading. A reader
//! first reads the header with [`read_header`], then requires the [`data_size`] it
//! declares to equal what the stream holds; for a deflated zip entry,
//! [`zip_entry_plausible`] bounds the entry size by deflate's largest expansion of its
//! compressed size, which the file length bounds.

use std::io::Read;

use ndarray_npy::npy::header::{Header, ReadHeaderError};
use zip::CompressionMethod;

/// Deflate's largest expansion ratio (a 258-byte match per 2 bits, plus block overhead).
pub const DEFLATE_MAX_RATIO: u64 = 1032;

/// Counts the bytes read through it (the header length of a `.npy` stream).
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Why a `.npy` header could not be read.
#[derive(Debug)]
pub enum HeaderError {
    /// The stream ends inside the header (or declares a header longer than the stream).
    Truncated,
    /// Reading the stream failed.
    Io(std::io::Error),
    /// The header is not a valid `.npy` header.
    Invalid(ReadHeaderError),
}

/// Reads the `.npy` header of a stream of `available` bytes; returns it and its length in
/// bytes. The header length declared in the prelude is checked against `available` before
/// the parser allocates it (a 12-byte file could declare 4 GiB; found by fuzzing).
///
/// # Errors
/// [`HeaderError`].
pub fn read_header<R: Read>(mut reader: R, available: u64) -> Result<(Header, u64), HeaderError> {
    let mut prelude = Vec::with_capacity(12);
    reader
        .by_ref()
        .take(12)
        .read_to_end(&mut prelude)
        .map_err(HeaderError::Io)?;
    if prelude.starts_with(b"\x93NUMPY") {
        let declared = match prelude.get(6) {
            Some(1) => prelude
                .get(8..10)
                .map(|l| 10 + u64::from(u16::from_le_bytes([l[0], l[1]]))),
            Some(2 | 3) => prelude
                .get(8..12)
                .map(|l| 12 + u64::from(u32::from_le_bytes([l[0], l[1], l[2], l[3]]))),
            _ => None,
        };
        if declared.is_some_and(|d| d > available) {
            return Err(HeaderError::Truncated);
        }
    }
    let mut counting = Counting {
        inner: std::io::Cursor::new(prelude).chain(reader),
        count: 0,
    };
    match Header::from_reader(&mut counting) {
        Ok(h) => Ok((h, counting.count)),
        Err(ReadHeaderError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(HeaderError::Truncated)
        }
        Err(e) => Err(HeaderError::Invalid(e)),
    }
}

/// The kind (`f`, `i`, `u`, `U`, …) and item size in bytes of a plain numpy dtype such as
/// `'<f8'`; `None` for structured dtypes and sizes that overflow.
pub fn dtype(header: &Header) -> Option<(char, u64)> {
    // The descriptor prints as a Python literal: `'<f8'` for a plain dtype, a list for a
    // structured one (not supported).
    let literal = header.type_descriptor.to_string();
    let descr = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let rest = descr.trim_start_matches(['<', '>', '|', '=']);
    let kind = rest.chars().next()?;
    let digits: u64 = rest.get(1..)?.parse().ok()?;
    // `<U4611686018427387904` overflowed `4 * digits` (found by fuzzing).
    let size = if kind == 'U' {
        digits.checked_mul(4)?
    } else {
        digits
    };
    Some((kind, size))
}

/// The data size a header declares for items of `item` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSize {
    /// This many bytes.
    Bytes(u64),
    /// More bytes than a `u64` counts.
    Overflow,
    /// A byte count that fits, but more elements than ndarray can index (e.g.
    /// `(0, 2**64 - 1)`, which declares 0 bytes; found by fuzzing).
    TooManyElements,
}

/// The data size `header` declares for items of `item` bytes.
pub fn data_size(header: &Header, item: u64) -> DataSize {
    let declared = header
        .shape
        .iter()
        .try_fold(item, |acc, &d| acc.checked_mul(d as u64));
    // ndarray also needs the product of the non-zero axes to fit `isize` (else its reader
    // panics).
    let nonzero_fits = header
        .shape
        .iter()
        .try_fold(item.max(1), |acc, &d| acc.checked_mul(d.max(1) as u64))
        .is_some_and(|n| n <= isize::MAX as u64);
    match declared {
        None => DataSize::Overflow,
        Some(_) if !nonzero_fits => DataSize::TooManyElements,
        Some(b) => DataSize::Bytes(b),
    }
}

/// Whether a zip entry of `size` bytes, `compressed` in the archive with `method`, is
/// plausible; `None` for a compression method other than stored and deflate.
pub fn zip_entry_plausible(size: u64, compressed: u64, method: CompressionMethod) -> Option<bool> {
    match method {
        CompressionMethod::Stored => Some(size == compressed),
        CompressionMethod::Deflated => Some(
            size <= compressed
                .saturating_mul(DEFLATE_MAX_RATIO)
                .saturating_add(1024),
        ),
        _ => None,
    }
}
