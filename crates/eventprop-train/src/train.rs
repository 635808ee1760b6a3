//! The Yin-Yang training loop: configuration (TOML-loadable), seeded initialisation and
//! shuffling, Adam + step schedule, evaluation, and checkpoint/resume.
//!
//! Determinism: initial weights come from `ChaCha8(seed)`, the shuffle of epoch `e` from
//! `ChaCha8(shuffle_seed(seed, e))`, so the RNG state at an epoch boundary is `(seed, e)`;
//! together with the weights, the Adam moments and step counts (all stored bit-exactly in the
//! checkpoint) a resumed run repeats the uninterrupted one. The core kernels give
//! bit-identical results for a fixed thread count.

use std::path::Path;
use std::time::Instant;

use eventprop_core::Discretization;
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, Tensor, TensorData};
use crate::error::{Error, Result};
use crate::loss::{self, LossKind};
use crate::metrics::EpochMetrics;
use crate::network::{Init, Lif, Network, NetworkConfig, OutputLayer};
use crate::optim::{Adam, AdamSlot, StepLr};
use crate::readout::LeakyIntegrator;
use crate::yinyang::{self, Dataset, Encoding, Splits};

/// Every hyperparameter of a Yin-Yang run. Field names are the TOML keys and (with `-`
/// for `_`) the CLI flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Seed of the data splits ([`yinyang::split_seeds`]).
    pub data_seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Training samples (the standard split has 5000).
    pub train_size: usize,
    /// Validation samples (1000).
    pub val_size: usize,
    /// Test samples (1000).
    pub test_size: usize,
    /// Adam learning rate of epoch 0.
    pub lr: f64,
    /// Epochs between learning-rate decays.
    pub lr_step: usize,
    /// Learning-rate decay factor.
    pub lr_gamma: f64,
    /// Adam `beta1`.
    pub beta1: f64,
    /// Adam `beta2`.
    pub beta2: f64,
    /// Adam `eps`.
    pub eps: f64,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Hidden membrane time constant (s).
    pub tau_mem: f64,
    /// Hidden synaptic time constant (s).
    pub tau_syn: f64,
    /// Threshold.
    pub threshold: f64,
    /// Leak potential.
    pub leak: f64,
    /// Reset potential.
    pub reset: f64,
    /// Readout (or spiking output) membrane time constant (s).
    pub readout_tau_mem: f64,
    /// Readout (or spiking output) synaptic time constant (s).
    pub readout_tau_syn: f64,
    /// Adjoint discretization of the LIF layers.
    pub discretization: Discretization,
    /// Loss (and with it the output layer: integrator for `max_over_time`, spiking for
    /// `first_spike`).
    pub loss: LossKind,
    /// Weight of the hidden firing-rate regulariser (0 = off).
    pub rate_reg: f64,
    /// Hidden weight init mean.
    pub hidden_init_mean: f64,
    /// Hidden weight init std.
    pub hidden_init_std: f64,
    /// Output weight init mean.
    pub readout_init_mean: f64,
    /// Output weight init std.
    pub readout_init_std: f64,
    /// Clip all weights to `[-c, c]` after each update.
    pub weight_clip: Option<f64>,
    /// Input spike encoding (also fixes `dt` and `T`).
    pub encoding: Encoding,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
}

impl Default for TrainConfig {
    /// The seed example (SPEC §5) with the tuned changes that reach ≥ 95 % test accuracy in
    /// 10 epochs (measured, see DESIGN.md): `Corrected` discretization, hidden
    /// `tau_mem = tau_syn = 4 µs` (seed: 6 µs), Adam lr `1e-2` (seed: `2e-3`),
    /// `StepLR(step 2, gamma 0.7)` (seed: step 10, gamma 0.9), hidden init std `0.5`
    /// (seed: 0.25). Everything else is the seed's: 120 hidden, batch 50, readout LI with
    /// 6 µs, max-over-time + `4e-4 mean(score²)`, hidden init mean 0.8, readout `N(0, 0.1)`.
    fn default() -> Self {
        Self {
            seed: 0,
            data_seed: 0,
            epochs: 10,
            batch_size: 50,
            train_size: 5000,
            val_size: 1000,
            test_size: 1000,
            lr: 1e-2,
            lr_step: 2,
            lr_gamma: 0.7,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            hidden: vec![120],
            tau_mem: 4e-6,
            tau_syn: 4e-6,
            threshold: 1.0,
            leak: 0.0,
            reset: 0.0,
            readout_tau_mem: 6e-6,
            readout_tau_syn: 6e-6,
            discretization: Discretization::Corrected,
            loss: LossKind::MaxOverTime { reg: 4e-4 },
            rate_reg: 0.0,
            hidden_init_mean: 0.8,
            hidden_init_std: 0.5,
            readout_init_mean: 0.0,
            readout_init_std: 0.1,
            weight_clip: None,
            encoding: Encoding::default(),
            eval_batch_size: 1000,
        }
    }
}

impl TrainConfig {
    /// Parses a TOML config (missing keys keep their defaults; unknown keys are errors).
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Format`] naming the file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let c: Self = toml::from_str(&text).map_err(|e| {
            Error::format(
                path,
                format!(
                    "invalid config: {}",
                    e.to_string().trim().replace('\n', " ")
                ),
            )
        })?;
        Ok(c)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.encoding.validate()?;
        for (name, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("train_size", self.train_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, ">= 1", v));
            }
        }
        Adam::new(self.lr, self.beta1, self.beta2, self.eps)?;
        StepLr::new(self.lr, self.lr_step, self.lr_gamma)?;
        if !(self.rate_reg.is_finite() && self.rate_reg >= 0.0) {
            return Err(Error::invalid("rate_reg", "finite and >= 0", self.rate_reg));
        }
        if let Some(c) = self.weight_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid("weight_clip", "finite and > 0", c));
            }
        }
        for (name, v) in [
            ("hidden_init_std", self.hidden_init_std),
            ("readout_init_std", self.readout_init_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, "finite and >= 0", v));
            }
        }
        match self.loss {
            LossKind::MaxOverTime { reg } => {
                if !(reg.is_finite() && reg >= 0.0) {
                    return Err(Error::invalid("readout_reg", "finite and >= 0", reg));
                }
            }
            LossKind::FirstSpike { tau0, tau1, alpha } => {
                for (name, v) in [("tau0", tau0), ("tau1", tau1)] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(Error::invalid(name, "finite and > 0", v));
                    }
                }
                if !(alpha.is_finite() && alpha >= 0.0) {
                    return Err(Error::invalid("alpha", "finite and >= 0", alpha));
                }
            }
        }
        self.network().validate()
    }

    /// The network settings implied by this config.
    pub fn network(&self) -> NetworkConfig {
        let dt = self.encoding.dt;
        let output = match self.loss {
            LossKind::MaxOverTime { .. } => OutputLayer::Integrator(LeakyIntegrator {
                tau_syn: self.readout_tau_syn,
                tau_mem: self.readout_tau_mem,
                leak: self.leak,
                dt,
            }),
            LossKind::FirstSpike { .. } => OutputLayer::Spiking(Lif {
                tau_mem: self.readout_tau_mem,
                tau_syn: self.readout_tau_syn,
                threshold: self.threshold,
                leak: self.leak,
                reset: self.reset,
            }),
        };
        NetworkConfig {
            n_in: yinyang::N_INPUTS,
            hidden: self.hidden.clone(),
            n_out: yinyang::N_CLASSES,
            lif: Lif {
                tau_mem: self.tau_mem,
                tau_syn: self.tau_syn,
                threshold: self.threshold,
                leak: self.leak,
                reset: self.reset,
            },
            dt,
            discretization: self.discretization,
            output,
        }
    }

    /// The data splits: sizes from the config, seeds from [`yinyang::split_seeds`]
    /// (5000/1000/1000 reproduce [`yinyang::standard_splits`]).
    pub fn splits(&self) -> Splits {
        let [a, b, c] = yinyang::split_seeds(self.data_seed);
        Splits {
            train: yinyang::generate(self.train_size, a),
            validation: yinyang::generate(self.val_size, b),
            test: yinyang::generate(self.test_size, c),
        }
    }
}

/// Seed of the shuffle of epoch `epoch` (0-based).
pub fn shuffle_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Loss, accuracy and hidden activity on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss (without the rate regulariser).
    pub loss: f64,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean hidden spikes per sample.
    pub hidden_spikes_per_sample: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Progress of a running epoch, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Batches done.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Running mean loss.
    pub loss: f64,
    /// Running accuracy.
    pub accuracy: f64,
    /// Running hidden spikes per sample.
    pub hidden_spikes_per_sample: f64,
}

/// Network, optimizer and history of a run.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The settings.
    pub config: TrainConfig,
    /// The network (trained in `f64`).
    pub net: Network<f64>,
    /// Optimizer state.
    pub adam: Adam,
    /// Schedule.
    pub schedule: StepLr,
    /// Completed epochs.
    pub epochs_done: usize,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
    /// The data.
    pub data: Splits,
}

const FORMAT: &str = "eventprop-train/yinyang/1";

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    config: TrainConfig,
    epochs_done: usize,
    adam_steps: Vec<u64>,
    history: Vec<EpochMetrics>,
}

/// Evaluates `net` on `data` (batches of `batch_size`).
///
/// # Errors
/// Core errors.
pub fn evaluate(
    net: &Network<f64>,
    config: &TrainConfig,
    data: &Dataset,
    batch_size: usize,
) -> Result<Evaluation> {
    let idx: Vec<usize> = (0..data.len()).collect();
    let (mut loss_sum, mut correct, mut spikes) = (0.0, 0usize, 0.0);
    for chunk in idx.chunks(batch_size.max(1)) {
        let x = yinyang::encode_batch::<f64>(data, chunk, &config.encoding);
        let trace = net.forward(x.view())?;
        let labels: Vec<usize> = chunk.iter().map(|&i| data.labels[i]).collect();
        let out = apply_loss(config, &trace.output, &labels);
        loss_sum += out.loss * chunk.len() as f64;
        correct += out.correct;
        spikes += trace.total_hidden_spikes();
    }
    let n = data.len().max(1) as f64;
    Ok(Evaluation {
        loss: loss_sum / n,
        accuracy: correct as f64 / n,
        hidden_spikes_per_sample: spikes / n,
        samples: data.len(),
    })
}

fn apply_loss(
    config: &TrainConfig,
    output: &ndarray::Array3<f64>,
    labels: &[usize],
) -> loss::LossOutput<f64> {
    match config.loss {
        LossKind::MaxOverTime { reg } => loss::max_over_time(output.view(), labels, reg),
        LossKind::FirstSpike { tau0, tau1, alpha } => {
            loss::first_spike(output.view(), labels, config.encoding.dt, tau0, tau1, alpha)
        }
    }
}

impl Trainer {
    /// A fresh run.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid config.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let net = Network::init(
            config.network(),
            Init {
                mean: config.hidden_init_mean,
                std: config.hidden_init_std,
            },
            Init {
                mean: config.readout_init_mean,
                std: config.readout_init_std,
            },
            config.seed,
        )?;
        let adam = Adam::new(config.lr, config.beta1, config.beta2, config.eps)?;
        let schedule = StepLr::new(config.lr, config.lr_step, config.lr_gamma)?;
        let data = config.splits();
        Ok(Self {
            config,
            net,
            adam,
            schedule,
            epochs_done: 0,
            history: Vec::new(),
            data,
        })
    }

    /// Whether all configured epochs are done.
    pub fn finished(&self) -> bool {
        self.epochs_done >= self.config.epochs
    }

    /// Trains one epoch, then evaluates validation and test sets; appends and returns the
    /// epoch's metrics. `progress` is called after every batch.
    ///
    /// # Errors
    /// Core errors.
    pub fn run_epoch(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<EpochMetrics> {
        let start = Instant::now();
        let epoch = self.epochs_done;
        let cfg = &self.config;
        self.adam.lr = self.schedule.lr(epoch);
        let mut order: Vec<usize> = (0..self.data.train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(shuffle_seed(
            cfg.seed, epoch,
        )));
        let batches = order.len().div_ceil(cfg.batch_size);
        let (mut loss_sum, mut correct, mut spikes, mut seen) = (0.0, 0usize, 0.0, 0usize);
        for (bi, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let x = yinyang::encode_batch::<f64>(&self.data.train, chunk, &cfg.encoding);
            let labels: Vec<usize> = chunk.iter().map(|&i| self.data.train.labels[i]).collect();
            let trace = self.net.forward(x.view())?;
            let out = apply_loss(cfg, &trace.output, &labels);
            let mut batch_loss = out.loss;
            let extra = if cfg.rate_reg > 0.0 {
                let mut v = Vec::with_capacity(trace.n_hidden());
                for k in 0..trace.n_hidden() {
                    let (l, g) =
                        loss::rate_regularizer(trace.hidden_spikes(k).view(), cfg.rate_reg);
                    batch_loss += l;
                    v.push(g);
                }
                Some(v)
            } else {
                None
            };
            let grads = self
                .net
                .backward(&trace, out.grad.view(), extra.as_deref())?;
            for (k, (w, g)) in self.net.weights.iter_mut().zip(&grads.weights).enumerate() {
                self.adam.step(
                    k,
                    w.as_slice_mut().expect("standard layout"),
                    g.as_slice().expect("standard layout"),
                );
                if let Some(c) = cfg.weight_clip {
                    w.mapv_inplace(|x| x.clamp(-c, c));
                }
            }
            loss_sum += batch_loss * chunk.len() as f64;
            correct += out.correct;
            spikes += trace.total_hidden_spikes();
            seen += chunk.len();
            progress(Progress {
                batch: bi + 1,
                batches,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                hidden_spikes_per_sample: spikes / seen as f64,
            });
        }
        let eb = cfg.eval_batch_size;
        let val = (!self.data.validation.is_empty())
            .then(|| evaluate(&self.net, cfg, &self.data.validation, eb))
            .transpose()?;
        let test = (!self.data.test.is_empty())
            .then(|| evaluate(&self.net, cfg, &self.data.test, eb))
            .transpose()?;
        let n = seen.max(1) as f64;
        let m = EpochMetrics {
            epoch: epoch + 1,
            lr: self.adam.lr,
            train_loss: loss_sum / n,
            train_acc: correct as f64 / n,
            val_loss: val.map(|e| e.loss),
            val_acc: val.map(|e| e.accuracy),
            test_loss: test.map(|e| e.loss),
            test_acc: test.map(|e| e.accuracy),
            epoch_seconds: start.elapsed().as_secs_f64(),
            hidden_spikes_per_sample: spikes / n,
        };
        self.epochs_done += 1;
        self.history.push(m.clone());
        Ok(m)
    }

    /// The checkpoint of the current state.
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint::default();
        for (k, w) in self.net.weights.iter().enumerate() {
            c.tensors.insert(
                format!("weight.{k}"),
                Tensor {
                    shape: w.shape().to_vec(),
                    data: TensorData::F64(w.iter().copied().collect()),
                },
            );
        }
        for (k, s) in self.adam.slots.iter().enumerate() {
            for (name, v) in [("m", &s.m), ("v", &s.v)] {
                c.tensors.insert(
                    format!("adam.{name}.{k}"),
                    Tensor {
                        shape: vec![v.len()],
                        data: TensorData::F64(v.clone()),
                    },
                );
            }
        }
        let meta = Meta {
            format: FORMAT.into(),
            config: self.config.clone(),
            epochs_done: self.epochs_done,
            adam_steps: self.adam.slots.iter().map(|s| s.steps).collect(),
            history: self.history.clone(),
        };
        c.metadata = serde_json::to_string(&meta).expect("metadata serialises");
        c
    }

    /// Saves the state to `path` atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        checkpoint::save(path, &self.to_checkpoint())
    }

    /// Restores a run from a checkpoint written by [`Trainer::save`].
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Format`] for a missing or corrupt file.
    pub fn load(path: &Path) -> Result<Self> {
        let c = checkpoint::load(path)?;
        let meta: Meta = serde_json::from_str(&c.metadata)
            .map_err(|e| Error::format(path, format!("checkpoint metadata: {e}")))?;
        if meta.format != FORMAT {
            return Err(Error::format(
                path,
                format!("expected format `{FORMAT}`, got `{}`", meta.format),
            ));
        }
        meta.config
            .validate()
            .map_err(|e| Error::format(path, format!("checkpoint config: {e}")))?;
        let shapes = meta.config.network().weight_shapes();
        let mut weights = Vec::with_capacity(shapes.len());
        for (k, &(o, i)) in shapes.iter().enumerate() {
            let t = c.get(path, &format!("weight.{k}"))?;
            if t.shape != [o, i] {
                return Err(Error::format(
                    path,
                    format!("weight.{k}: expected shape [{o}, {i}], got {:?}", t.shape),
                ));
            }
            weights.push(Array2::from_shape_vec((o, i), t.data.to_f64()).expect("shape checked"));
        }
        let net = Network::from_weights(meta.config.network(), weights)?;
        let mut adam = Adam::new(
            meta.config.lr,
            meta.config.beta1,
            meta.config.beta2,
            meta.config.eps,
        )?;
        for (k, &steps) in meta.adam_steps.iter().enumerate() {
            let m = c.get(path, &format!("adam.m.{k}"))?.data.to_f64();
            let v = c.get(path, &format!("adam.v.{k}"))?.data.to_f64();
            if m.len() != shapes.get(k).map_or(0, |s| s.0 * s.1) || v.len() != m.len() {
                return Err(Error::format(path, format!("adam state {k}: wrong length")));
            }
            adam.slots.push(AdamSlot { steps, m, v });
        }
        let schedule = StepLr::new(meta.config.lr, meta.config.lr_step, meta.config.lr_gamma)?;
        let data = meta.config.splits();
        Ok(Self {
            config: meta.config,
            net,
            adam,
            schedule,
            epochs_done: meta.epochs_done,
            history: meta.history,
            data,
        })
    }
}
