//! File helpers shared by the subcommands: `.npy`/`.npz` reading that checks every
//! declared size before allocating, atomic writes, and removing stale outputs.
//!
//! A `.npy` header declares the shape and dtype, and the readers allocate that much before
//! reading the data. So a 192-byte file can declare `(100000, 100000, 100000)` float64 and
//! abort the process on allocation. Every reader here parses the header first and requires
//! the declared data size to equal what the file (or zip entry) holds; for a deflated zip
//! entry, the entry size must also be within deflate's largest expansion (1032:1) of its
//! compressed size, which the file length bounds. Only then is the array read.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use eventprop_core::error::{fmt_shape, one_line};
use eventprop_train::npy;
use ndarray::{Array, ArrayBase, ArrayD, Data, Dimension};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};
use zip::ZipArchive;

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

/// Reads a `.npy` header from `reader` and checks that the data it declares is exactly
/// `available` bytes (the stream's length minus the header); returns the header.
///
/// `what` names the stream in messages (`input: x.npy`, `--weights: w0 in W.npz`).
fn check_npy_header<R: Read>(what: &str, reader: R, available: u64) -> Result<Header> {
    let (header, header_len) = match npy::read_header(reader, available) {
        Ok(read) => read,
        Err(npy::HeaderError::Io(e)) => {
            return Err(anyhow::Error::new(e).context(format!("{what}: cannot read")))
        }
        Err(npy::HeaderError::Truncated) if available == 0 => {
            anyhow::bail!("{what}: the file is empty (0 bytes), expected a .npy array")
        }
        Err(npy::HeaderError::Truncated) => anyhow::bail!(
            "{what}: truncated .npy: the file ends inside the header ({available} bytes)"
        ),
        Err(npy::HeaderError::Invalid(e)) => {
            anyhow::bail!("{what}: not a valid .npy file ({})", one_line(&e))
        }
    };
    let data_len = available.saturating_sub(header_len);
    let Some((_, size)) = npy::dtype(&header) else {
        anyhow::bail!("{what}: unsupported .npy dtype {}", header.type_descriptor);
    };
    let shape = fmt_shape(&header.shape);
    match npy::data_size(&header, size) {
        npy::DataSize::TooManyElements => anyhow::bail!(
            "{what}: corrupt .npy: the header declares shape {shape}, more elements than \
             fit in memory"
        ),
        npy::DataSize::Bytes(bytes) if bytes == data_len && bytes <= isize::MAX as u64 => {
            Ok(header)
        }
        npy::DataSize::Bytes(bytes) if bytes > data_len => anyhow::bail!(
            "{what}: truncated or corrupt .npy: the header declares shape {shape} of dtype \
             {}, {bytes} bytes of data, but only {data_len} bytes follow the header",
            header.type_descriptor
        ),
        npy::DataSize::Bytes(bytes) => anyhow::bail!(
            "{what}: corrupt .npy: the header declares shape {shape} of dtype {}, {bytes} \
             bytes of data, but {data_len} bytes follow the header",
            header.type_descriptor
        ),
        npy::DataSize::Overflow => anyhow::bail!(
            "{what}: corrupt .npy: the header declares shape {shape}, more data than \
             fits in memory, but only {data_len} bytes follow the header"
        ),
    }
}

/// Reads a float32 or float64 `.npy` file.
///
/// The declared size is checked against the file's length before anything is allocated.
///
/// # Errors
/// When the file cannot be opened, is empty, truncated or corrupt, or holds another dtype;
/// the message names `arg` and the path.
pub fn read_float_npy(arg: &str, path: &Path) -> Result<FloatArray> {
    let what = format!("{arg}: {}", path.display());
    let file =
        File::open(path).with_context(|| format!("{arg}: cannot open {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("{what}: cannot read the file's size"))?
        .len();
    let mut reader = BufReader::new(file);
    check_npy_header(&what, &mut reader, len)?;
    let rewind = |reader: &mut BufReader<File>| {
        reader
            .seek(SeekFrom::Start(0))
            .with_context(|| format!("{what}: cannot seek"))
    };
    rewind(&mut reader)?;
    match ArrayD::<f64>::read_npy(&mut reader) {
        Ok(a) => Ok(FloatArray::F64(a)),
        Err(ReadNpyError::WrongDescriptor(_)) => {
            rewind(&mut reader)?;
            match ArrayD::<f32>::read_npy(&mut reader) {
                Ok(a) => Ok(FloatArray::F32(a)),
                Err(ReadNpyError::WrongDescriptor(d)) => {
                    anyhow::bail!(
                        "{arg}: expected a float32 or float64 .npy, got dtype {d} in {}",
                        path.display()
                    )
                }
                Err(e) => Err(npy_error(arg, path, e)),
            }
        }
        Err(e) => Err(npy_error(arg, path, e)),
    }
}

fn npy_error(arg: &str, path: &Path, e: ReadNpyError) -> anyhow::Error {
    anyhow::anyhow!(
        "{arg}: cannot read {} as .npy ({})",
        path.display(),
        one_line(&e)
    )
}

/// An open `.npz` archive whose arrays are read with their sizes checked first.
pub struct Npz {
    arg: String,
    path: PathBuf,
    file_len: u64,
    zip: ZipArchive<BufReader<File>>,
}

impl Npz {
    /// Opens `path` (`arg` names the command-line argument in messages).
    ///
    /// # Errors
    /// When the file cannot be opened or is not a zip archive.
    pub fn open(arg: &str, path: &Path) -> Result<Self> {
        let file =
            File::open(path).with_context(|| format!("{arg}: cannot open {}", path.display()))?;
        let file_len = file
            .metadata()
            .with_context(|| format!("{arg}: cannot read the size of {}", path.display()))?
            .len();
        if file_len == 0 {
            anyhow::bail!(
                "{arg}: {} is empty (0 bytes), expected a .npz archive",
                path.display()
            );
        }
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|e| {
            anyhow::anyhow!(
                "{arg}: cannot read {} as .npz ({})",
                path.display(),
                one_line(&e)
            )
        })?;
        Ok(Self {
            arg: arg.to_owned(),
            path: path.to_owned(),
            file_len,
            zip,
        })
    }

    /// The array names (a `.npy` suffix removed, as NumPy does).
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_owned())
            .collect()
    }

    /// Reads array `name`; `expected` describes it for messages (`a 1-D float64 array`).
    ///
    /// # Errors
    /// When the archive has no such array (the message lists those it has), the entry's
    /// compression is not supported, its declared size does not match the entry, or it
    /// does not hold `expected`.
    pub fn array<T, D>(&mut self, name: &str, expected: &str) -> Result<Array<T, D>>
    where
        T: ReadableElement,
        D: Dimension,
    {
        let (arg, path) = (&self.arg, self.path.display());
        let Some(index) = self
            .zip
            .index_for_name(name)
            .or_else(|| self.zip.index_for_name(&format!("{name}.npy")))
        else {
            let mut names = self.names();
            names.sort();
            anyhow::bail!(
                "{arg}: {path} has no array `{name}` (expected {expected}; it holds: {})",
                if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                }
            );
        };
        let what = format!("{arg}: {name} in {path}");
        let (size, compressed, method) = {
            let raw = self.zip.by_index_raw(index).map_err(|e| {
                anyhow::anyhow!("{what}: cannot read the zip entry ({})", one_line(&e))
            })?;
            (raw.size(), raw.compressed_size(), raw.compression())
        };
        let Some(plausible) = npy::zip_entry_plausible(size, compressed, method) else {
            anyhow::bail!(
                "{what}: compression method {method} is not supported (only stored, as from \
                 np.savez, or deflate, as from np.savez_compressed)"
            );
        };
        if compressed > self.file_len || !plausible {
            anyhow::bail!(
                "{what}: corrupt zip entry: it declares {size} bytes ({compressed} compressed, \
                 {method}) in a file of {} bytes",
                self.file_len
            );
        }
        {
            let entry = self.zip.by_index(index).map_err(|e| {
                anyhow::anyhow!("{what}: cannot read the zip entry ({})", one_line(&e))
            })?;
            check_npy_header(&what, entry, size)?;
        }
        let entry = self
            .zip
            .by_index(index)
            .map_err(|e| anyhow::anyhow!("{what}: cannot read the zip entry ({})", one_line(&e)))?;
        Array::<T, D>::read_npy(entry)
            .map_err(|e| anyhow::anyhow!("{what}: expected {expected} ({})", one_line(&e)))
    }
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
