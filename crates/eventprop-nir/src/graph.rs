//! A NIR graph in memory, and its HDF5 file layout (as `nir.write` / `nir.read` of the
//! Python `nir` package 1.0.x lay it out).
//!
//! File layout: a root dataset `version` (variable-length UTF-8 string) and a group `node`
//! holding the graph: `node/type = "NIRGraph"`, `node/edges` (an `(E, 2)` array of
//! variable-length strings, source then target), `node/metadata/<key>` (scalar datasets:
//! strings, floats, integers) and one group per node under `node/nodes/<name>` with its
//! `type` string and its parameters as datasets (`weight`, `tau_syn`, …; `Input`/`Output`
//! store `shape`). `nir.write` gzip-compresses the arrays; [`Graph::read`] decompresses,
//! [`Graph::write`] stores them uncompressed (the weights of these networks are a few
//! kilobytes).

use std::collections::BTreeMap;
use std::path::Path;

use hdf5_reader::{Dataset, Hdf5File};
use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};

use crate::error::{Error, Result};

/// The `version` string written to files: the release of the Python `nir` package whose
/// reader the files are tested against.
pub const NIR_VERSION: &str = "1.0.8";

/// Largest single array the reader allocates (256 MiB): a larger one is refused before
/// allocation (a corrupt file cannot make the reader take all memory).
const MAX_READ_BYTES: usize = 256 << 20;

/// A graph-level metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    /// A string.
    Str(String),
    /// A float.
    F64(f64),
    /// An integer.
    I64(i64),
}

impl Meta {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The parameters of a current-based LIF layer (`CubaLIF`), one value per neuron.
///
/// `τ_syn dI/dt = −I + w_in·S`, `τ_mem dv/dt = (v_leak − v) + r·I`, a spike when
/// `v > v_threshold`, then `v = v_reset` (NIR's definition).
#[derive(Debug, Clone, PartialEq)]
pub struct CubaLif {
    /// Synaptic time constant.
    pub tau_syn: Array1<f64>,
    /// Membrane time constant.
    pub tau_mem: Array1<f64>,
    /// Resistance.
    pub r: Array1<f64>,
    /// Leak (resting) potential.
    pub v_leak: Array1<f64>,
    /// Threshold.
    pub v_threshold: Array1<f64>,
    /// Reset potential (0 when absent from a file, as in `nir`).
    pub v_reset: Array1<f64>,
    /// Input weight.
    pub w_in: Array1<f64>,
}

/// The parameters of a current-based leaky integrator (`CubaLI`), one value per neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct CubaLi {
    /// Synaptic time constant.
    pub tau_syn: Array1<f64>,
    /// Membrane time constant.
    pub tau_mem: Array1<f64>,
    /// Resistance.
    pub r: Array1<f64>,
    /// Leak (resting) potential.
    pub v_leak: Array1<f64>,
    /// Input weight.
    pub w_in: Array1<f64>,
}

/// A node of a graph: the types this crate reads, and every other type by name.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Graph input with its shape.
    Input {
        /// Shape of the input.
        shape: Vec<i64>,
    },
    /// Graph output with its shape.
    Output {
        /// Shape of the output.
        shape: Vec<i64>,
    },
    /// `y = W x`.
    Linear {
        /// `(N_out, N_in)`.
        weight: Array2<f64>,
    },
    /// `y = W x + b`.
    Affine {
        /// `(N_out, N_in)`.
        weight: Array2<f64>,
        /// `(N_out,)`.
        bias: Array1<f64>,
    },
    /// Current-based LIF neurons.
    CubaLif(CubaLif),
    /// Current-based leaky integrators.
    CubaLi(CubaLi),
    /// A node type this crate does not read (the `type` string of the file).
    Other(String),
}

impl Node {
    /// The NIR type name (`"CubaLIF"`, …).
    pub fn kind(&self) -> &str {
        match self {
            Self::Input { .. } => "Input",
            Self::Output { .. } => "Output",
            Self::Linear { .. } => "Linear",
            Self::Affine { .. } => "Affine",
            Self::CubaLif(_) => "CubaLIF",
            Self::CubaLi(_) => "CubaLI",
            Self::Other(t) => t,
        }
    }
}

/// A NIR graph: named nodes, directed edges, graph-level metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// `(source, target)` node names.
    pub edges: Vec<(String, String)>,
    /// Graph-level metadata.
    pub metadata: BTreeMap<String, Meta>,
}

impl Graph {
    /// Reads a NIR file (as written by `nir.write` or [`Graph::write`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened; [`Error::Format`] naming the HDF5
    /// object for a file that is not HDF5, lacks `node`, `node/edges`, a node's `type`, or
    /// holds a parameter of the wrong shape or type.
    pub fn read(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::format(path, "not a file"));
        }
        let options = hdf5_reader::OpenOptions {
            max_read_bytes: MAX_READ_BYTES,
            ..Default::default()
        };
        let file = Hdf5File::open_with_options(path, options)
            .map_err(|e| Error::format(path, format!("not a readable HDF5 file ({e})")))?;
        Reader { path, file }.graph()
    }

    /// Writes the graph as a NIR file, atomically (a temporary file in the same folder,
    /// then a rename).
    ///
    /// # Errors
    /// [`Error::Format`] when a node cannot be written (an [`Node::Other`] node, or an
    /// HDF5 encoding error), [`Error::Io`] for the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes(path)?;
        eventprop_data::fsio::write_atomic(path, &bytes).map_err(|e| match e {
            eventprop_data::Error::Io { path, source } => Error::Io { path, source },
            other => Error::format(path, other.to_string()),
        })?;
        Ok(())
    }

    fn to_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        use hdf5_pure::FileBuilder;
        let mut b = FileBuilder::new();
        b.create_dataset("version")
            .with_vlen_strings(&[NIR_VERSION])
            .with_shape(&[]);
        let mut g = b.create_group("node");
        g.create_dataset("type")
            .with_vlen_strings(&["NIRGraph"])
            .with_shape(&[]);
        let flat: Vec<&str> = self
            .edges
            .iter()
            .flat_map(|(a, c)| [a.as_str(), c.as_str()])
            .collect();
        g.create_dataset("edges")
            .with_vlen_strings(&flat)
            .with_shape(&[self.edges.len() as u64, 2]);
        if !self.metadata.is_empty() {
            let mut m = g.create_group("metadata");
            for (k, v) in &self.metadata {
                let d = m.create_dataset(k);
                match v {
                    Meta::Str(s) => d.with_vlen_strings(&[s.as_str()]),
                    Meta::F64(x) => d.with_f64_data(&[*x]),
                    Meta::I64(x) => d.with_i64_data(&[*x]),
                }
                .with_shape(&[]);
            }
            g.add_group(m.finish());
        }
        let mut nodes = g.create_group("nodes");
        for (name, node) in &self.nodes {
            let mut n = nodes.create_group(name);
            n.create_dataset("type")
                .with_vlen_strings(&[node.kind()])
                .with_shape(&[]);
            let mut vec = |key: &str, a: &Array1<f64>| {
                n.create_dataset(key)
                    .with_f64_data(&a.to_vec())
                    .with_shape(&[a.len() as u64]);
            };
            match node {
                Node::Input { shape } | Node::Output { shape } => {
                    n.create_dataset("shape")
                        .with_i64_data(shape)
                        .with_shape(&[shape.len() as u64]);
                }
                Node::Linear { weight } => write_matrix(&mut n, weight),
                Node::Affine { weight, bias } => {
                    vec("bias", bias);
                    write_matrix(&mut n, weight);
                }
                Node::CubaLif(p) => {
                    vec("tau_syn", &p.tau_syn);
                    vec("tau_mem", &p.tau_mem);
                    vec("r", &p.r);
                    vec("v_leak", &p.v_leak);
                    vec("v_threshold", &p.v_threshold);
                    vec("v_reset", &p.v_reset);
                    vec("w_in", &p.w_in);
                }
                Node::CubaLi(p) => {
                    vec("tau_syn", &p.tau_syn);
                    vec("tau_mem", &p.tau_mem);
                    vec("r", &p.r);
                    vec("v_leak", &p.v_leak);
                    vec("w_in", &p.w_in);
                }
                Node::Other(t) => {
                    return Err(Error::format(
                        path,
                        format!("node `{name}`: type `{t}` cannot be written"),
                    ))
                }
            }
            nodes.add_group(n.finish());
        }
        g.add_group(nodes.finish());
        b.add_group(g.finish());
        b.finish()
            .map_err(|e| Error::format(path, format!("HDF5 encoding failed: {e}")))
    }
}

fn write_matrix(n: &mut hdf5_pure::GroupBuilder, w: &Array2<f64>) {
    let (r, c) = w.dim();
    n.create_dataset("weight")
        .with_f64_data(&w.iter().copied().collect::<Vec<_>>())
        .with_shape(&[r as u64, c as u64]);
}

struct Reader<'a> {
    path: &'a Path,
    file: Hdf5File,
}

impl Reader<'_> {
    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::format(self.path, what.to_string())
    }

    fn dataset(&self, name: &str) -> Result<Dataset> {
        self.file
            .dataset(name)
            .map_err(|e| self.err(format!("`{name}`: missing or unreadable ({e})")))
    }

    fn string(&self, name: &str) -> Result<String> {
        self.dataset(name)?
            .read_string()
            .map_err(|e| self.err(format!("`{name}`: expected a string ({e})")))
    }

    /// A float or integer dataset as f64 (any shape).
    fn numbers(&self, name: &str) -> Result<ArrayD<f64>> {
        let d = self.dataset(name)?;
        let bad =
            |e: hdf5_reader::error::Error| self.err(format!("`{name}`: expected numbers ({e})"));
        use hdf5_reader::Datatype;
        match d.dtype() {
            Datatype::FloatingPoint { size: 4, .. } => {
                Ok(d.read_array::<f32>().map_err(bad)?.mapv(f64::from))
            }
            Datatype::FloatingPoint { .. } => d.read_array::<f64>().map_err(bad),
            Datatype::FixedPoint { .. } => {
                Ok(d.read_array::<i64>().map_err(bad)?.mapv(|v| v as f64))
            }
            other => Err(self.err(format!("`{name}`: expected numbers, got {other:?}"))),
        }
    }

    fn vector(&self, name: &str) -> Result<Array1<f64>> {
        let a = self.numbers(name)?;
        let shape = a.shape().to_vec();
        match shape.len() {
            0 => Ok(Array1::from_elem(
                1,
                a.iter().copied().next().unwrap_or(0.0),
            )),
            1 => Ok(a.into_dimensionality::<Ix1>().expect("1-d")),
            _ => Err(self.err(format!("`{name}`: expected a vector, got shape {shape:?}"))),
        }
    }

    fn matrix(&self, name: &str) -> Result<Array2<f64>> {
        let a = self.numbers(name)?;
        let shape = a.shape().to_vec();
        a.into_dimensionality::<Ix2>()
            .map_err(|_| self.err(format!("`{name}`: expected a matrix, got shape {shape:?}")))
    }

    fn shape(&self, name: &str) -> Result<Vec<i64>> {
        let a = self.numbers(name)?;
        Ok(a.iter().map(|&v| v as i64).collect())
    }

    fn has(&self, group: &str, member: &str) -> Result<bool> {
        let g = self
            .file
            .group(group)
            .map_err(|e| self.err(format!("`{group}`: missing ({e})")))?;
        let (groups, datasets) = g
            .member_names()
            .map_err(|e| self.err(format!("`{group}`: unreadable ({e})")))?;
        Ok(groups.iter().chain(&datasets).any(|m| m == member))
    }

    fn graph(&self) -> Result<Graph> {
        let kind = self.string("node/type")?;
        if kind != "NIRGraph" {
            return Err(self.err(format!("`node/type`: expected `NIRGraph`, got `{kind}`")));
        }
        let edges_ds = self.dataset("node/edges")?;
        let edge_shape = edges_ds.shape().to_vec();
        let flat = if edge_shape.iter().product::<u64>() == 0 {
            Vec::new()
        } else {
            edges_ds
                .read_strings()
                .map_err(|e| self.err(format!("`node/edges`: expected strings ({e})")))?
        };
        if !(edge_shape.len() == 2 && edge_shape[1] == 2 || flat.is_empty()) {
            return Err(self.err(format!(
                "`node/edges`: expected shape (E, 2), got {edge_shape:?}"
            )));
        }
        let edges = flat
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        let mut metadata = BTreeMap::new();
        if self.has("node", "metadata")? {
            let g = self
                .file
                .group("node/metadata")
                .map_err(|e| self.err(format!("`node/metadata`: unreadable ({e})")))?;
            let (_, names) = g
                .member_names()
                .map_err(|e| self.err(format!("`node/metadata`: unreadable ({e})")))?;
            for k in names {
                let path = format!("node/metadata/{k}");
                let d = self.dataset(&path)?;
                use hdf5_reader::Datatype;
                let v = match d.dtype() {
                    Datatype::String { .. } | Datatype::VarLen { .. } => {
                        Meta::Str(self.string(&path)?)
                    }
                    Datatype::FloatingPoint { .. } | Datatype::FixedPoint { .. } => {
                        let a = self.numbers(&path)?;
                        if a.len() != 1 {
                            continue; // array metadata: not used by this crate
                        }
                        let x = a.iter().copied().next().expect("one value");
                        if matches!(d.dtype(), Datatype::FixedPoint { .. }) {
                            Meta::I64(x as i64)
                        } else {
                            Meta::F64(x)
                        }
                    }
                    _ => continue, // other metadata types: not used by this crate
                };
                metadata.insert(k, v);
            }
        }
        let nodes_group = self
            .file
            .group("node/nodes")
            .map_err(|e| self.err(format!("`node/nodes`: missing ({e})")))?;
        let (names, _) = nodes_group
            .member_names()
            .map_err(|e| self.err(format!("`node/nodes`: unreadable ({e})")))?;
        let mut nodes = BTreeMap::new();
        for name in names {
            let p = format!("node/nodes/{name}");
            let kind = self.string(&format!("{p}/type"))?;
            let v = |k: &str| self.vector(&format!("{p}/{k}"));
            let node = match kind.as_str() {
                "Input" => Node::Input {
                    shape: self.shape(&format!("{p}/shape"))?,
                },
                "Output" => Node::Output {
                    shape: self.shape(&format!("{p}/shape"))?,
                },
                "Linear" => Node::Linear {
                    weight: self.matrix(&format!("{p}/weight"))?,
                },
                "Affine" => Node::Affine {
                    weight: self.matrix(&format!("{p}/weight"))?,
                    bias: v("bias")?,
                },
                "CubaLIF" => {
                    let v_threshold = v("v_threshold")?;
                    let v_reset = if self.has(&p, "v_reset")? {
                        v("v_reset")?
                    } else {
                        Array1::zeros(v_threshold.len())
                    };
                    let w_in = if self.has(&p, "w_in")? {
                        v("w_in")?
                    } else {
                        Array1::ones(v_threshold.len())
                    };
                    Node::CubaLif(CubaLif {
                        tau_syn: v("tau_syn")?,
                        tau_mem: v("tau_mem")?,
                        r: v("r")?,
                        v_leak: v("v_leak")?,
                        v_threshold,
                        v_reset,
                        w_in,
                    })
                }
                "CubaLI" => {
                    let v_leak = v("v_leak")?;
                    let w_in = if self.has(&p, "w_in")? {
                        v("w_in")?
                    } else {
                        Array1::ones(v_leak.len())
                    };
                    Node::CubaLi(CubaLi {
                        tau_syn: v("tau_syn")?,
                        tau_mem: v("tau_mem")?,
                        r: v("r")?,
                        v_leak,
                        w_in,
                    })
                }
                _ => Node::Other(kind),
            };
            nodes.insert(name, node);
        }
        Ok(Graph {
            nodes,
            edges,
            metadata,
        })
    }
}
