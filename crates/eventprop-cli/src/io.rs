//! File helpers shared by the subcommands: `.npy` reading in either float dtype, atomic
//! writes.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{ArrayBase, ArrayD, Data, Dimension};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WritableElement, WriteNpyExt};

/// A `.npy` array of either float dtype.
#[derive(Debug, Clone)]
pub enum FloatArray {
    /// `<f4`.
    F32(ArrayD<f32>),
    /// `<f8`.
    F64(ArrayD<f64>),
}

impl FloatArray {
    /// Converts to `f64` (exact for `f32`).
    pub fn into_f64(self) -> ArrayD<f64> {
        match self {
            FloatArray::F32(a) => a.mapv(f64::from),
            FloatArray::F64(a) => a,
        }
    }
}

/// Reads a float32 or float64 `.npy` file.
///
/// # Errors
/// When the file cannot be opened, is truncated or corrupt, or holds another dtype; the
/// message names `arg` and the path.
pub fn read_float_npy(arg: &str, path: &Path) -> Result<FloatArray> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::new(File::open(path).with_context(|| {
            format!("{arg}: cannot open {}", path.display())
        })?))
    };
    match ArrayD::<f64>::read_npy(open()?) {
        Ok(a) => Ok(FloatArray::F64(a)),
        Err(ReadNpyError::WrongDescriptor(_)) => match ArrayD::<f32>::read_npy(open()?) {
            Ok(a) => Ok(FloatArray::F32(a)),
            Err(ReadNpyError::WrongDescriptor(d)) => {
                anyhow::bail!(
                    "{arg}: expected a float32 or float64 .npy, got dtype {d} in {}",
                    path.display()
                )
            }
            Err(e) => Err(npy_error(arg, path, e)),
        },
        Err(e) => Err(npy_error(arg, path, e)),
    }
}

fn npy_error(arg: &str, path: &Path, e: ReadNpyError) -> anyhow::Error {
    anyhow::anyhow!("{arg}: cannot read {} as .npy ({e})", path.display())
}

/// Writes a file atomically through `write` ([`eventprop_train::fsio::write_atomic_with`]):
/// temporary file in the same folder, synced, then renamed over `path`.
///
/// # Errors
/// I/O errors, with the path in the message.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    eventprop_train::fsio::write_atomic_with(path, write)
        .map_err(|e| anyhow::anyhow!(e.to_string()))
}

/// Writes an array as `.npy`, atomically.
///
/// # Errors
/// I/O errors.
pub fn write_npy<S, D>(path: &Path, array: &ArrayBase<S, D>) -> Result<()>
where
    S: Data,
    S::Elem: WritableElement,
    D: Dimension,
{
    write_atomic(path, |w| array.write_npy(w).map_err(std::io::Error::other))
}

/// Writes a value as pretty JSON, atomically.
///
/// # Errors
/// I/O or serialisation errors.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value)?;
        w.write_all(b"\n")
    })
}
