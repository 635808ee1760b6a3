//! Checkpoints: named `f64`/`f32` tensors plus a JSON metadata string in one safetensors
//! file, written atomically.
//!
//! The metadata string is stored under the safetensors header key `"eventprop"`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use eventprop_data::fsio::write_atomic;

/// Header key holding the metadata string.
pub const METADATA_KEY: &str = "eventprop";

/// Tensor data of a checkpoint entry.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 32-bit floats.
    F32(Vec<f32>),
}

impl TensorData {
    fn len(&self) -> usize {
        match self {
            Self::F64(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Self::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    /// The values as `f64` (exact for both types).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Self::F64(v) => v.clone(),
            Self::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        }
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: TensorData,
}

/// A loaded (or to-be-saved) checkpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    /// Tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// Free-form metadata (JSON by convention).
    pub metadata: String,
}

impl Checkpoint {
    /// The tensor `name`, or [`Error::Format`] naming the file and the missing tensor.
    ///
    /// # Errors
    /// As described.
    pub fn get(&self, path: &Path, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::format(path, format!("checkpoint has no tensor `{name}`")))
    }
}

/// Saves `tensors` and `metadata` to `path` atomically.
///
/// # Errors
/// [`Error::Invalid`] when a tensor's data length does not match its shape, [`Error::Io`]
/// when the file cannot be written.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let mut names: Vec<&String> = checkpoint.tensors.keys().collect();
    names.sort();
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = names
        .iter()
        .map(|&n| {
            let t = &checkpoint.tensors[n];
            let dtype = match t.data {
                TensorData::F64(_) => Dtype::F64,
                TensorData::F32(_) => Dtype::F32,
            };
            (n.clone(), dtype, t.shape.clone(), t.data.bytes())
        })
        .collect();
    for &n in &names {
        let t = &checkpoint.tensors[n];
        let want: usize = t.shape.iter().product();
        if want != t.data.len() {
            return Err(Error::invalid(
                "tensor",
                format!("`{n}` with {want} values for shape {:?}", t.shape),
                t.data.len(),
            ));
        }
    }
    let views = bytes
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::format(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = HashMap::from([(METADATA_KEY.to_string(), checkpoint.metadata.clone())]);
    let buf = safetensors::serialize(views, Some(meta)).map_err(|e| Error::format(path, e))?;
    Ok(write_atomic(path, &buf)?)
}

/// Loads a checkpoint written by [`save`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is not a valid
/// safetensors file, lacks the metadata, or holds a dtype other than F64/F32.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let buf = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&buf)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&buf)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let metadata = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .cloned()
        .ok_or_else(|| Error::format(path, format!("no `{METADATA_KEY}` metadata")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F64 => TensorData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            ),
            other => {
                return Err(Error::format(
                    path,
                    format!("tensor `{name}`: expected dtype F64 or F32, got {other:?}"),
                ))
            }
        };
        tensors.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(Checkpoint { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint {
            metadata: r#"{"epoch":3}"#.into(),
            ..Default::default()
        };
        c.tensors.insert(
            "w".into(),
            Tensor {
                shape: vec![2, 3],
                data: TensorData::F64(vec![1.0, -2.0, 3.5, 0.0, 1e-300, f64::MAX]),
            },
        );
        c.tensors.insert(
            "v".into(),
            Tensor {
                shape: vec![2],
                data: TensorData::F32(vec![0.25, -7.0]),
            },
        );
        c
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        save(&p, &sample()).unwrap();
        assert_eq!(load(&p).unwrap(), sample());
    }

    #[test]
    fn corrupt_and_missing_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let err = load(&p).unwrap_err();
        assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("c.safetensors"));
        save(&p, &sample()).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&p, &bytes).unwrap();
        let err = load(&p).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(matches!(load(&p).unwrap_err(), Error::Format { .. }));
    }

    #[test]
    fn shape_mismatch_is_rejected_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let mut c = sample();
        c.tensors.get_mut("w").unwrap().shape = vec![4, 4];
        assert!(matches!(save(&p, &c).unwrap_err(), Error::Invalid { .. }));
        assert!(!p.exists());
    }
}
