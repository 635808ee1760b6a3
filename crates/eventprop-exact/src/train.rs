//! Training the EventProp paper's Yin-Yang setup in exact mode (SPEC §5): a 5-200-3
//! network of LIF neurons (`tau_mem = 20 ms`, `tau_syn = 5 ms`), first-spike-time
//! cross-entropy, Adam with a step schedule.
//!
//! Reuses the training crate's pieces: the data set and spike encoding
//! ([`eventprop_train::yinyang`]), [`Adam`] and [`StepLr`], the metrics files
//! ([`eventprop_train::metrics`]), the plot and the safetensors checkpoint format.
//!
//! Files written to the output folder (each atomically, after every epoch):
//! [`METRICS_JSON`], [`METRICS_CSV`], [`PLOT_PNG`], [`LAST_CHECKPOINT`] (the latest weights)
//! and [`BEST_CHECKPOINT`] (the weights of the epoch with the best validation accuracy).

use std::path::Path;
use std::time::Instant;

use eventprop_train::checkpoint::{self, Checkpoint, Tensor, TensorData};
use eventprop_train::metrics::{self, EpochMetrics};
use eventprop_train::optim::{Adam, StepLr};
use eventprop_train::plot::plot_metrics;
use eventprop_train::train::shuffle_seed;
use eventprop_train::yinyang::{spike_times, standard_splits, Dataset, Encoding};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::batch::first_spike_batch;
use crate::loss::FirstSpikeCe;
use crate::network::{Network, Spike};
use crate::params::{NeuronParams, SolverConfig};

/// `metrics.json` (the train crate's format).
pub const METRICS_JSON: &str = "metrics.json";
/// `metrics.csv`.
pub const METRICS_CSV: &str = "metrics.csv";
/// Loss and accuracy curves.
pub const PLOT_PNG: &str = "curves.png";
/// Weights after the last finished epoch.
pub const LAST_CHECKPOINT: &str = "checkpoint.safetensors";
/// Weights of the epoch with the best validation accuracy.
pub const BEST_CHECKPOINT: &str = "best.safetensors";
/// `format` field of the checkpoint metadata.
pub const FORMAT: &str = "eventprop-exact-yinyang/1";

/// Errors of exact-mode training: the simulator's or the training crate's.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// From the simulator, adjoint or loss (bad settings, spike cap exceeded).
    #[error(transparent)]
    Exact(#[from] crate::Error),
    /// From the training crate (data, optimizer settings, files).
    #[error(transparent)]
    Train(#[from] eventprop_train::Error),
}

/// Result alias of this module.
pub type TrainResult<T> = std::result::Result<T, TrainError>;

/// Initial weight distributions (normal, per layer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WeightInit {
    /// Mean of the input → hidden weights.
    pub hidden_mean: f64,
    /// Standard deviation of the input → hidden weights.
    pub hidden_std: f64,
    /// Mean of the hidden → output weights.
    pub output_mean: f64,
    /// Standard deviation of the hidden → output weights.
    pub output_std: f64,
}

impl Default for WeightInit {
    /// `N(1.5, 0.8)` and `N(0.93, 0.1)`: chosen here (threshold 1, unit-weight PSP peak
    /// ≈ 0.157) so that at the start ~70 hidden spikes per sample reach every output
    /// neuron, and every output neuron fires.
    fn default() -> Self {
        Self {
            hidden_mean: 1.5,
            hidden_std: 0.8,
            output_mean: 0.93,
            output_std: 0.1,
        }
    }
}

/// Settings of an exact-mode Yin-Yang run. `Default` is the paper's setup as tuned here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExactTrainConfig {
    /// Seed of the weight initialisation and of the per-epoch shuffles.
    pub seed: u64,
    /// Seed of the data splits ([`standard_splits`]).
    pub data_seed: u64,
    /// Hidden neurons (200 in the paper).
    pub hidden: usize,
    /// Epochs.
    pub epochs: usize,
    /// Samples per batch (32).
    pub batch_size: usize,
    /// Adam learning rate of epoch 0.
    pub lr: f64,
    /// Epochs between learning-rate decays.
    pub lr_step: usize,
    /// Learning-rate factor per decay.
    pub lr_gamma: f64,
    /// Adam `beta1`.
    pub beta1: f64,
    /// Adam `beta2`.
    pub beta2: f64,
    /// Adam `eps`.
    pub eps: f64,
    /// Neuron parameters (both layers).
    pub params: NeuronParams,
    /// Spike encoding (`dt` is unused: spike times are exact); `t_sim` is the simulated
    /// window `t_max`.
    pub encoding: Encoding,
    /// The loss.
    pub loss: FirstSpikeCe,
    /// Initial weights.
    pub init: WeightInit,
    /// Solver settings.
    pub solver: SolverConfig,
}

impl Default for ExactTrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            data_seed: 0,
            hidden: 200,
            epochs: 40,
            batch_size: 32,
            lr: 3e-3,
            lr_step: 1,
            lr_gamma: 0.93,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            params: NeuronParams::default(),
            // Features map to [0, 30 ms], bias spike at 0, window 60 ms.
            encoding: Encoding {
                t_early: 0.0,
                t_late: 30e-3,
                t_bias: 0.0,
                t_sim: 60e-3,
                dt: 1e-4,
            },
            loss: FirstSpikeCe {
                silent_label_gamma: 30.0,
                ..FirstSpikeCe::default()
            },
            init: WeightInit::default(),
            solver: SolverConfig::default(),
        }
    }
}

impl ExactTrainConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`TrainError::Exact`] / [`TrainError::Train`] naming the offending field.
    pub fn validate(&self) -> TrainResult<()> {
        self.params.validate()?;
        self.solver.validate()?;
        self.encoding.validate()?;
        crate::forward::check_t_max(self.encoding.t_sim)?;
        StepLr::new(self.lr, self.lr_step, self.lr_gamma)?;
        Adam::new(self.lr, self.beta1, self.beta2, self.eps)?;
        let positive = [
            ("hidden", self.hidden),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
        ];
        for (arg, v) in positive {
            if v == 0 {
                return Err(crate::Error::Invalid {
                    arg,
                    expected: "a value >= 1".into(),
                    actual: "0".into(),
                }
                .into());
            }
        }
        let init = [
            self.init.hidden_mean,
            self.init.hidden_std,
            self.init.output_mean,
            self.init.output_std,
        ];
        if init.iter().any(|v| !v.is_finite())
            || self.init.hidden_std < 0.0
            || self.init.output_std < 0.0
        {
            return Err(crate::Error::Invalid {
                arg: "init",
                expected: "finite means and standard deviations >= 0".into(),
                actual: format!("{:?}", self.init),
            }
            .into());
        }
        // The loss settings are checked by evaluating it once.
        self.loss.evaluate(&[], 3, 0, self.encoding.t_sim)?;
        Ok(())
    }

    /// The initial 5-`hidden`-3 network.
    ///
    /// # Errors
    /// As [`ExactTrainConfig::validate`].
    pub fn init_network(&self) -> TrainResult<Network> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let n0 = Normal::new(self.init.hidden_mean, self.init.hidden_std).expect("validated");
        let n1 = Normal::new(self.init.output_mean, self.init.output_std).expect("validated");
        let w0 = Array2::from_shape_simple_fn((self.hidden, 5), || n0.sample(&mut rng));
        let w1 = Array2::from_shape_simple_fn((3, self.hidden), || n1.sample(&mut rng));
        Ok(Network::new(vec![w0, w1], vec![self.params; 2])?)
    }

    /// The input spikes of every sample of `data`.
    pub fn encode(&self, data: &Dataset) -> Vec<Vec<Spike>> {
        data.features
            .iter()
            .map(|f| {
                spike_times(f, &self.encoding)
                    .iter()
                    .enumerate()
                    .map(|(j, &time)| Spike {
                        time,
                        neuron: j as u32,
                    })
                    .collect()
            })
            .collect()
    }
}

/// Progress of a running epoch, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExactProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Batches done.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Running mean training loss.
    pub loss: f64,
    /// Running training accuracy.
    pub accuracy: f64,
}

/// Loss and accuracy of a network on a data set (loss: plain cross-entropy with the
/// paper's regulariser, without the silent-label term).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactEvaluation {
    /// Mean loss.
    pub loss: f64,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean hidden spikes per sample.
    pub hidden_spikes_per_sample: f64,
    /// Fraction of samples with at least one silent output neuron.
    pub silent_output_fraction: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Evaluates `net` on `data` with the encoding and loss of `cfg`.
///
/// # Errors
/// As [`first_spike_batch`].
pub fn evaluate(
    net: &Network,
    cfg: &ExactTrainConfig,
    data: &Dataset,
) -> TrainResult<ExactEvaluation> {
    let inputs = cfg.encode(data);
    let r = first_spike_batch(
        net,
        &inputs,
        &data.labels,
        &cfg.loss,
        cfg.encoding.t_sim,
        &cfg.solver,
        false,
    )?;
    let n = r.samples.max(1) as f64;
    Ok(ExactEvaluation {
        loss: r.loss_sum / n,
        accuracy: r.correct as f64 / n,
        hidden_spikes_per_sample: r.spikes[1] as f64 / n,
        silent_output_fraction: r.silent_outputs as f64 / n,
        samples: r.samples,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: String,
    config: ExactTrainConfig,
    epochs_done: usize,
    history: Vec<EpochMetrics>,
}

/// Saves weights, config and history as a safetensors checkpoint (`weight.0`,
/// `weight.1`; metadata JSON with `format`, `config`, `epochs_done`, `history`).
///
/// # Errors
/// [`TrainError::Train`] for I/O errors.
pub fn save_checkpoint(
    path: &Path,
    net: &Network,
    cfg: &ExactTrainConfig,
    history: &[EpochMetrics],
) -> TrainResult<()> {
    let mut c = Checkpoint::default();
    for (k, w) in net.weights().iter().enumerate() {
        c.tensors.insert(
            format!("weight.{k}"),
            Tensor {
                shape: w.shape().to_vec(),
                data: TensorData::F64(w.iter().copied().collect()),
            },
        );
    }
    let meta = Meta {
        format: FORMAT.into(),
        config: cfg.clone(),
        epochs_done: history.len(),
        history: history.to_vec(),
    };
    c.metadata = serde_json::to_string(&meta).expect("metadata serialises");
    Ok(checkpoint::save(path, &c)?)
}

/// Loads a checkpoint written by [`save_checkpoint`]: its config, network and history.
///
/// # Errors
/// [`TrainError::Train`] for a missing or corrupt file (wrong format, shapes);
/// [`TrainError::Exact`] for invalid weights.
pub fn load_checkpoint(path: &Path) -> TrainResult<(ExactTrainConfig, Network, Vec<EpochMetrics>)> {
    let c = checkpoint::load(path)?;
    let meta: Meta =
        serde_json::from_str(&c.metadata).map_err(|e| eventprop_train::Error::Format {
            path: path.into(),
            reason: format!("checkpoint metadata: {e}"),
        })?;
    if meta.format != FORMAT {
        return Err(eventprop_train::Error::Format {
            path: path.into(),
            reason: format!("expected format `{FORMAT}`, got `{}`", meta.format),
        }
        .into());
    }
    meta.config.validate()?;
    let shapes = [(meta.config.hidden, 5), (3, meta.config.hidden)];
    let mut weights = Vec::new();
    for (k, &(o, i)) in shapes.iter().enumerate() {
        let t = c.get(path, &format!("weight.{k}"))?;
        if t.shape != [o, i] {
            return Err(eventprop_train::Error::Format {
                path: path.into(),
                reason: format!("weight.{k}: expected shape [{o}, {i}], got {:?}", t.shape),
            }
            .into());
        }
        weights.push(Array2::from_shape_vec((o, i), t.data.to_f64()).expect("shape checked"));
    }
    let net = Network::new(weights, vec![meta.config.params; 2])?;
    Ok((meta.config, net, meta.history))
}

/// Evaluates a saved exact checkpoint on the test split of its own `data_seed`.
///
/// # Errors
/// As [`load_checkpoint`] and [`evaluate`].
pub fn evaluate_checkpoint(path: &Path) -> TrainResult<ExactEvaluation> {
    let (cfg, net, _) = load_checkpoint(path)?;
    evaluate(&net, &cfg, &standard_splits(cfg.data_seed).test)
}

/// Trains the Yin-Yang task in exact mode and writes the files listed in the module docs
/// into `out_dir` (created if missing) after every epoch. `progress` is called after every
/// batch. Returns the per-epoch metrics (validation and test evaluated after each epoch).
///
/// Same config, seed and thread count give bit-identical results (the batch sums are
/// thread-count independent, see [`first_spike_batch`]).
///
/// # Errors
/// Invalid settings, a spike cap exceeded, or file errors.
pub fn train_yinyang(
    cfg: &ExactTrainConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(ExactProgress),
) -> TrainResult<Vec<EpochMetrics>> {
    train_yinyang_with(cfg, out_dir, progress, &mut |_| {})
}

/// [`train_yinyang`] with a second callback, called with each epoch's metrics once they
/// are evaluated and written.
///
/// # Errors
/// As [`train_yinyang`].
pub fn train_yinyang_with(
    cfg: &ExactTrainConfig,
    out_dir: &Path,
    progress: &mut dyn FnMut(ExactProgress),
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> TrainResult<Vec<EpochMetrics>> {
    let mut net = cfg.init_network()?;
    std::fs::create_dir_all(out_dir).map_err(|e| eventprop_train::Error::Io {
        path: out_dir.into(),
        source: e,
    })?;
    let splits = standard_splits(cfg.data_seed);
    let train_in = cfg.encode(&splits.train);
    let schedule = StepLr::new(cfg.lr, cfg.lr_step, cfg.lr_gamma)?;
    let mut adam = Adam::new(cfg.lr, cfg.beta1, cfg.beta2, cfg.eps)?;
    let mut history: Vec<EpochMetrics> = Vec::with_capacity(cfg.epochs);
    let mut best_val = f64::NEG_INFINITY;
    let n_train = train_in.len();
    let batches = n_train.div_ceil(cfg.batch_size);
    for epoch in 0..cfg.epochs {
        let start = Instant::now();
        adam.lr = schedule.lr(epoch);
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(shuffle_seed(
            cfg.seed, epoch,
        )));
        let (mut loss_sum, mut correct, mut hidden, mut seen) = (0.0, 0usize, 0usize, 0usize);
        for (b, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let inputs: Vec<Vec<Spike>> = chunk.iter().map(|&i| train_in[i].clone()).collect();
            let labels: Vec<usize> = chunk.iter().map(|&i| splits.train.labels[i]).collect();
            let r = first_spike_batch(
                &net,
                &inputs,
                &labels,
                &cfg.loss,
                cfg.encoding.t_sim,
                &cfg.solver,
                true,
            )?;
            loss_sum += r.loss_sum;
            correct += r.correct;
            hidden += r.spikes[1];
            seen += r.samples;
            let grads = r.grads.expect("requested");
            let scale = 1.0 / r.samples as f64;
            for (k, (mut w, g)) in net.weights_mut().zip(&grads).enumerate() {
                let g: Vec<f64> = g.iter().map(|v| v * scale).collect();
                adam.step(k, w.as_slice_mut().expect("standard layout"), &g);
            }
            progress(ExactProgress {
                epoch: epoch + 1,
                batch: b + 1,
                batches,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
            });
        }
        let val = evaluate(&net, cfg, &splits.validation)?;
        let test = evaluate(&net, cfg, &splits.test)?;
        history.push(EpochMetrics {
            epoch: epoch + 1,
            lr: adam.lr,
            train_loss: loss_sum / seen as f64,
            train_acc: correct as f64 / seen as f64,
            val_loss: Some(val.loss),
            val_acc: Some(val.accuracy),
            test_loss: Some(test.loss),
            test_acc: Some(test.accuracy),
            epoch_seconds: start.elapsed().as_secs_f64(),
            hidden_spikes_per_sample: hidden as f64 / seen as f64,
        });
        metrics::write(out_dir, &history)?;
        plot_metrics(&out_dir.join(PLOT_PNG), &history)?;
        save_checkpoint(&out_dir.join(LAST_CHECKPOINT), &net, cfg, &history)?;
        if val.accuracy > best_val {
            best_val = val.accuracy;
            save_checkpoint(&out_dir.join(BEST_CHECKPOINT), &net, cfg, &history)?;
        }
        on_epoch(history.last().expect("pushed above"));
    }
    Ok(history)
}
