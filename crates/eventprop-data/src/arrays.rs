//! `.npy` and `.npz` arrays of any element type, read with every declared size checked
//! before anything is allocated ([`crate::npy`]): a 192-byte file can declare
//! `(100000, 100000, 100000)` float64, so each reader parses the header first and
//! requires the declared data size to equal what the file (or zip entry) holds; for a
//! deflated zip entry, the entry size must also be within deflate's largest expansion
//! (1032:1) of its compressed size, which the file length bounds. Only then is the array
//! read. Errors are [`Error::Read`], one line naming the argument (`arg`) and the file.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use eventprop_core::error::{fmt_shape, one_line};
use ndarray::{Array, ArrayD, Dimension};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};
use zip::ZipArchive;

use crate::error::{Error, Result};
use crate::npy::{data_size, dtype, read_header, zip_entry_plausible, DataSize, HeaderError};

/// An [`Error::Read`] from a format string.
macro_rules! msg {
    ($($t:tt)*) => {
        Error::Read(format!($($t)*))
    };
}

/// Returns an [`Error::Read`] from a format string.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err(msg!($($t)*))
    };
}

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
fn check_header<R: Read>(what: &str, reader: R, available: u64) -> Result<Header> {
    let (header, header_len) = match read_header(reader, available) {
        Ok(read) => read,
        Err(HeaderError::Io(e)) => return Err(msg!("{what}: cannot read: {e}")),
        Err(HeaderError::Truncated) if available == 0 => {
            bail!("{what}: the file is empty (0 bytes), expected a .npy array")
        }
        Err(HeaderError::Truncated) => {
            bail!("{what}: truncated .npy: the file ends inside the header ({available} bytes)")
        }
        Err(HeaderError::Invalid(e)) => {
            bail!("{what}: not a valid .npy file ({})", one_line(&e))
        }
    };
    let data_len = available.saturating_sub(header_len);
    let Some((_, size)) = dtype(&header) else {
        bail!("{what}: unsupported .npy dtype {}", header.type_descriptor);
    };
    let shape = fmt_shape(&header.shape);
    match data_size(&header, size) {
        DataSize::TooManyElements => bail!(
            "{what}: corrupt .npy: the header declares shape {shape}, more elements than \
             fit in memory"
        ),
        DataSize::Bytes(bytes) if bytes == data_len && bytes <= isize::MAX as u64 => Ok(header),
        DataSize::Bytes(bytes) if bytes > data_len => bail!(
            "{what}: truncated or corrupt .npy: the header declares shape {shape} of dtype \
             {}, {bytes} bytes of data, but only {data_len} bytes follow the header",
            header.type_descriptor
        ),
        DataSize::Bytes(bytes) => bail!(
            "{what}: corrupt .npy: the header declares shape {shape} of dtype {}, {bytes} \
             bytes of data, but {data_len} bytes follow the header",
            header.type_descriptor
        ),
        DataSize::Overflow => bail!(
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
    let file = File::open(path).map_err(|e| msg!("{arg}: cannot open {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| msg!("{what}: cannot read the file's size: {e}"))?
        .len();
    let mut reader = BufReader::new(file);
    check_header(&what, &mut reader, len)?;
    let rewind = |reader: &mut BufReader<File>| {
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| msg!("{what}: cannot seek: {e}"))
    };
    rewind(&mut reader)?;
    match ArrayD::<f64>::read_npy(&mut reader) {
        Ok(a) => Ok(FloatArray::F64(a)),
        Err(ReadNpyError::WrongDescriptor(_)) => {
            rewind(&mut reader)?;
            match ArrayD::<f32>::read_npy(&mut reader) {
                Ok(a) => Ok(FloatArray::F32(a)),
                Err(ReadNpyError::WrongDescriptor(d)) => {
                    bail!(
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

fn npy_error(arg: &str, path: &Path, e: ReadNpyError) -> Error {
    msg!(
        "{arg}: cannot read {} as .npy ({})",
        path.display(),
        one_line(&e)
    )
}

/// An open `.npz` archive whose arrays (of any element type and dimension) are read with
/// their sizes checked first.
pub struct Archive {
    arg: String,
    path: PathBuf,
    file_len: u64,
    zip: ZipArchive<BufReader<File>>,
}

impl Archive {
    /// Opens `path` (`arg` names the command-line argument in messages).
    ///
    /// # Errors
    /// When the file cannot be opened or is not a zip archive.
    pub fn open(arg: &str, path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| msg!("{arg}: cannot open {}: {e}", path.display()))?;
        let file_len = file
            .metadata()
            .map_err(|e| msg!("{arg}: cannot read the size of {}: {e}", path.display()))?
            .len();
        if file_len == 0 {
            bail!(
                "{arg}: {} is empty (0 bytes), expected a .npz archive",
                path.display()
            );
        }
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|e| {
            msg!(
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
            bail!(
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
            let raw = self
                .zip
                .by_index_raw(index)
                .map_err(|e| msg!("{what}: cannot read the zip entry ({})", one_line(&e)))?;
            (raw.size(), raw.compressed_size(), raw.compression())
        };
        let Some(plausible) = zip_entry_plausible(size, compressed, method) else {
            bail!(
                "{what}: compression method {method} is not supported (only stored, as from \
                 np.savez, or deflate, as from np.savez_compressed)"
            );
        };
        if compressed > self.file_len || !plausible {
            bail!(
                "{what}: corrupt zip entry: it declares {size} bytes ({compressed} compressed, \
                 {method}) in a file of {} bytes",
                self.file_len
            );
        }
        {
            let entry = self
                .zip
                .by_index(index)
                .map_err(|e| msg!("{what}: cannot read the zip entry ({})", one_line(&e)))?;
            check_header(&what, entry, size)?;
        }
        let entry = self
            .zip
            .by_index(index)
            .map_err(|e| msg!("{what}: cannot read the zip entry ({})", one_line(&e)))?;
        Array::<T, D>::read_npy(entry)
            .map_err(|e| msg!("{what}: expected {expected} ({})", one_line(&e)))
    }
}
