//! File helpers shared by the subcommands: atomic writes and removing stale outputs. The
//! size-checked `.npy`/`.npz` readers are [`eventprop_data::arrays`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ndarray::{ArrayBase, Data, Dimension};
use ndarray_npy::{WritableElement, WriteNpyExt};

pub use eventprop_data::arrays::{read_float_npy, Archive as Npz, FloatArray};

/// Writes a file atomically through `write` ([`eventprop_train::fsio::write_atomic_with`]):
/// temporary file in the same folder, synced, then renamed over `path`.
///
/// # Errors
/// I/O errors, with the path in the message.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    // The error keeps its source (the OS error); `main` prints the chain in one line.
    Ok(eventprop_train::fsio::write_atomic_with(path, write)?)
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

/// Removes the files in `dir` that `owned` claims as this command's outputs but that are
/// not in `written` (left over from an earlier run with more outputs). Only plain files
/// directly in `dir` are considered; nothing else is touched.
///
/// # Errors
/// When `dir` cannot be listed or a stale file cannot be removed.
pub fn remove_stale_outputs(
    dir: &Path,
    owned: impl Fn(&str) -> bool,
    written: &[String],
) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("--out: cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("--out: cannot list {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && owned(&name) && !written.iter().any(|w| w == &name) {
            std::fs::remove_file(entry.path()).with_context(|| {
                format!("--out: cannot remove the stale {}", entry.path().display())
            })?;
        }
    }
    Ok(())
}
