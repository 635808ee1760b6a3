//! `eventprop train yinyang` and `eventprop eval`.
//!
//! Settings are layered: library defaults (the seed example, tuned; see DESIGN.md) ←
//! `--config FILE` (TOML, keys as in `TrainConfig`) ← individual flags. A run directory
//! holds `config.toml`, `checkpoint.safetensors` (atomically replaced after every epoch),
//! `metrics.json`, `metrics.csv` and `curves.png`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_core::Discretization;
use eventprop_train::loss::LossKind;
use eventprop_train::train::{evaluate, Progress, TrainConfig, Trainer};
use eventprop_train::{fsio, metrics, plot, yinyang};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A library error as one flat message (its `Display` already includes the OS cause, so
/// the error chain must not print it twice).
fn flat(e: eventprop_train::Error) -> anyhow::Error {
    anyhow::anyhow!(e.to_string())
}

/// Checkpoint file name inside a run directory.
const CHECKPOINT: &str = "checkpoint.safetensors";

/// Arguments of `eventprop train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Train on the Yin-Yang data set (Kriener et al. 2021).
    Yinyang(Box<YinYangArgs>),
}

/// Loss selector of the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LossArg {
    /// Max-over-time of a leaky-integrator readout + cross-entropy.
    MaxOverTime,
    /// First-spike-time cross-entropy on spiking output neurons.
    FirstSpike,
}

/// Simulation mode of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Time-stepped seed function (hxtorch-compatible) with the EventProp adjoint.
    Stepped,
    /// Event-based simulation with exact spike times and the exact adjoint
    /// (`eventprop-exact`; the EventProp paper's 5-200-3 first-spike setup).
    Exact,
}

#[derive(Debug, clap::Args)]
struct YinYangArgs {
    /// Simulation mode.
    #[arg(long, value_enum, default_value_t = Mode::Stepped)]
    mode: Mode,
    /// TOML file with settings (flags override it); in exact mode the keys of
    /// `ExactTrainConfig`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output directory (default: a fresh `runs/<UTC timestamp>`); must not hold a run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the interrupted run in DIR (only `--epochs` may change).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config"])]
    resume: Option<PathBuf>,
    /// Number of rayon threads (default: all cores); results are identical for a fixed count.
    #[arg(long)]
    threads: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,

    /// Seed of initialisation and shuffling.
    #[arg(long)]
    seed: Option<u64>,
    /// Seed of the data splits.
    #[arg(long)]
    data_seed: Option<u64>,
    /// Number of epochs (may be raised on `--resume`).
    #[arg(long)]
    epochs: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Training samples.
    #[arg(long)]
    train_size: Option<usize>,
    /// Validation samples.
    #[arg(long)]
    val_size: Option<usize>,
    /// Test samples.
    #[arg(long)]
    test_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Epochs between learning-rate decays.
    #[arg(long)]
    lr_step: Option<usize>,
    /// Learning-rate decay factor.
    #[arg(long)]
    lr_gamma: Option<f64>,
    /// Adam beta1.
    #[arg(long)]
    beta1: Option<f64>,
    /// Adam beta2.
    #[arg(long)]
    beta2: Option<f64>,
    /// Adam eps.
    #[arg(long)]
    eps: Option<f64>,
    /// Hidden layer sizes, comma-separated (e.g. `120` or `100,50`).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Hidden membrane time constant (s).
    #[arg(long)]
    tau_mem: Option<f64>,
    /// Hidden synaptic time constant (s).
    #[arg(long)]
    tau_syn: Option<f64>,
    /// Threshold.
    #[arg(long)]
    threshold: Option<f64>,
    /// Leak potential.
    #[arg(long, allow_hyphen_values = true)]
    leak: Option<f64>,
    /// Reset potential.
    #[arg(long, allow_hyphen_values = true)]
    reset: Option<f64>,
    /// Readout membrane time constant (s).
    #[arg(long)]
    readout_tau_mem: Option<f64>,
    /// Readout synaptic time constant (s).
    #[arg(long)]
    readout_tau_syn: Option<f64>,
    /// Adjoint discretization: `seed` or `corrected`.
    #[arg(long)]
    discretization: Option<Discretization>,
    /// Loss.
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Readout regulariser weight (max-over-time loss).
    #[arg(long)]
    readout_reg: Option<f64>,
    /// Softmax temperature of the first-spike loss (s).
    #[arg(long)]
    tau0: Option<f64>,
    /// Early-spike time constant of the first-spike loss (s).
    #[arg(long)]
    tau1: Option<f64>,
    /// Early-spike weight of the first-spike loss.
    #[arg(long)]
    alpha: Option<f64>,
    /// Hidden firing-rate regulariser weight.
    #[arg(long)]
    rate_reg: Option<f64>,
    /// Hidden weight init mean.
    #[arg(long, allow_hyphen_values = true)]
    hidden_init_mean: Option<f64>,
    /// Hidden weight init std.
    #[arg(long)]
    hidden_init_std: Option<f64>,
    /// Output weight init mean.
    #[arg(long, allow_hyphen_values = true)]
    readout_init_mean: Option<f64>,
    /// Output weight init std.
    #[arg(long)]
    readout_init_std: Option<f64>,
    /// Clip weights to [-C, C] after each update.
    #[arg(long, value_name = "C")]
    weight_clip: Option<f64>,
    /// Encoding: time of feature value 0 (s).
    #[arg(long)]
    t_early: Option<f64>,
    /// Encoding: time of feature value 1 (s).
    #[arg(long)]
    t_late: Option<f64>,
    /// Encoding: bias spike time (s).
    #[arg(long)]
    t_bias: Option<f64>,
    /// Simulated duration (s).
    #[arg(long)]
    t_sim: Option<f64>,
    /// Time step (s).
    #[arg(long)]
    dt: Option<f64>,
    /// Evaluation batch size.
    #[arg(long)]
    eval_batch_size: Option<usize>,
}

impl YinYangArgs {
    /// Names of the config flags that were given, except `--epochs`.
    fn given_config_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! chk {
            ($($f:ident),*) => {$( if self.$f.is_some() { v.push(stringify!($f)); } )*};
        }
        chk!(
            seed,
            data_seed,
            batch_size,
            train_size,
            val_size,
            test_size,
            lr,
            lr_step,
            lr_gamma,
            beta1,
            beta2,
            eps,
            hidden,
            tau_mem,
            tau_syn,
            threshold,
            leak,
            reset,
            readout_tau_mem,
            readout_tau_syn,
            discretization,
            loss,
            readout_reg,
            tau0,
            tau1,
            alpha,
            rate_reg,
            hidden_init_mean,
            hidden_init_std,
            readout_init_mean,
            readout_init_std,
            weight_clip,
            t_early,
            t_late,
            t_bias,
            t_sim,
            dt,
            eval_batch_size
        );
        v
    }

    /// Applies the flags on top of `c`.
    fn apply(&self, c: &mut TrainConfig) -> Result<()> {
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f.clone() { c.$f = v; } )*};
        }
        set!(
            seed,
            data_seed,
            epochs,
            batch_size,
            train_size,
            val_size,
            test_size,
            lr,
            lr_step,
            lr_gamma,
            beta1,
            beta2,
            eps,
            hidden,
            tau_mem,
            tau_syn,
            threshold,
            leak,
            reset,
            readout_tau_mem,
            readout_tau_syn,
            discretization,
            rate_reg,
            hidden_init_mean,
            hidden_init_std,
            readout_init_mean,
            readout_init_std,
            eval_batch_size
        );
        if let Some(w) = self.weight_clip {
            c.weight_clip = Some(w);
        }
        macro_rules! enc {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { c.encoding.$f = v; } )*};
        }
        enc!(t_early, t_late, t_bias, t_sim, dt);
        // First-spike defaults (tau0, tau1, alpha): measured 86 % with `--lr 2e-3
        // --readout-init-mean 1 --readout-init-std 0.5` (silent outputs give no gradient).
        let defaults_first = (1e-6, 2e-5, 0.0);
        if let Some(kind) = self.loss {
            c.loss = match (kind, c.loss) {
                (LossArg::MaxOverTime, l @ LossKind::MaxOverTime { .. }) => l,
                (LossArg::MaxOverTime, _) => LossKind::MaxOverTime { reg: 4e-4 },
                (LossArg::FirstSpike, l @ LossKind::FirstSpike { .. }) => l,
                (LossArg::FirstSpike, _) => LossKind::FirstSpike {
                    tau0: defaults_first.0,
                    tau1: defaults_first.1,
                    alpha: defaults_first.2,
                },
            };
        }
        match &mut c.loss {
            LossKind::MaxOverTime { reg } => {
                if let Some(r) = self.readout_reg {
                    *reg = r;
                }
                if self.tau0.is_some() || self.tau1.is_some() || self.alpha.is_some() {
                    bail!("--tau0/--tau1/--alpha: only with --loss first-spike");
                }
            }
            LossKind::FirstSpike { tau0, tau1, alpha } => {
                if self.readout_reg.is_some() {
                    bail!("--readout-reg: only with --loss max-over-time");
                }
                if let Some(v) = self.tau0 {
                    *tau0 = v;
                }
                if let Some(v) = self.tau1 {
                    *tau1 = v;
                }
                if let Some(v) = self.alpha {
                    *alpha = v;
                }
            }
        }
        Ok(())
    }
}

/// Arguments of `eventprop eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Checkpoint written by `eventprop train` (`OUT/checkpoint.safetensors`).
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Data seed of the evaluation set (default: the run's; the set is that seed's test split).
    #[arg(long)]
    data_seed: Option<u64>,
    /// Number of samples (default: the run's test size).
    #[arg(long)]
    size: Option<usize>,
    /// Number of rayon threads.
    #[arg(long)]
    threads: Option<usize>,
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads: expected >= 1, got 0");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("--threads: could not build the thread pool")?;
    }
    Ok(())
}

/// `YYYYMMDD-HHMMSS` (UTC) of the current time.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The output directory of a new run: `out`, or a fresh `runs/<timestamp>`; refused when it
/// already holds a run, created otherwise.
fn fresh_out_dir(out: Option<&Path>) -> Result<PathBuf> {
    let dir = out.map(Path::to_path_buf).unwrap_or_else(|| {
        // A fresh directory: `runs/<timestamp>`, suffixed when that already exists.
        let base = Path::new("runs").join(timestamp());
        (1..)
            .map(|k| {
                if k == 1 {
                    base.clone()
                } else {
                    PathBuf::from(format!("{}-{k}", base.display()))
                }
            })
            .find(|d| !d.exists())
            .expect("an unused name exists")
    });
    if dir.join(CHECKPOINT).exists() || dir.join("metrics.json").exists() {
        bail!(
            "--out {}: already holds a run (use --resume to continue it, or another --out)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    Ok(dir)
}

/// A progress bar for one epoch (hidden with `--quiet`).
fn epoch_bar(quiet: bool, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Prints one epoch's summary line.
fn print_epoch(m: &metrics::EpochMetrics, epochs: usize) {
    println!(
        "epoch {}/{}: train loss {:.4} acc {:.4} | val loss {} acc {} | test loss {} acc {} | {:.3} s | {:.1} hidden spikes/sample",
        m.epoch,
        epochs,
        m.train_loss,
        m.train_acc,
        fmt_opt(m.val_loss),
        fmt_opt(m.val_acc),
        fmt_opt(m.test_loss),
        fmt_opt(m.test_acc),
        m.epoch_seconds,
        m.hidden_spikes_per_sample
    );
}

/// Flags that have no meaning in exact mode (no time grid, no readout integrator).
fn exact_unsupported(a: &YinYangArgs) -> Vec<&'static str> {
    let mut v = Vec::new();
    macro_rules! chk {
        ($($f:ident),*) => {$( if a.$f.is_some() { v.push(stringify!($f)); } )*};
    }
    chk!(
        resume,
        train_size,
        val_size,
        test_size,
        readout_tau_mem,
        readout_tau_syn,
        discretization,
        readout_reg,
        rate_reg,
        weight_clip,
        dt,
        eval_batch_size
    );
    if matches!(a.loss, Some(LossArg::MaxOverTime)) {
        v.push("loss max-over-time");
    }
    if matches!(&a.hidden, Some(h) if h.len() != 1) {
        v.push("hidden (exact mode has one hidden layer)");
    }
    v
}

/// `train yinyang --mode exact`: the EventProp paper's setup, event-based and exact.
fn run_train_exact(args: &YinYangArgs) -> Result<()> {
    use eventprop_exact::train::{train_yinyang_with, ExactProgress, ExactTrainConfig};
    let unsupported = exact_unsupported(args);
    if !unsupported.is_empty() {
        bail!(
            "--mode exact: not available in exact mode: --{}",
            unsupported.join(", --").replace('_', "-")
        );
    }
    let mut c = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--config {}: cannot read", p.display()))?;
            toml::from_str::<ExactTrainConfig>(&text)
                .map_err(|e| anyhow::anyhow!("--config {}: {}", p.display(), e.message()))?
        }
        None => ExactTrainConfig::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => {$( if let Some(v) = args.$f { c.$f = v; } )*};
    }
    set!(seed, data_seed, epochs, batch_size, lr, lr_step, lr_gamma, beta1, beta2, eps);
    if let Some(h) = &args.hidden {
        c.hidden = h[0];
    }
    macro_rules! set_in {
        ($part:ident: $($f:ident => $g:ident),*) => {$( if let Some(v) = args.$f { c.$part.$g = v; } )*};
    }
    set_in!(params: tau_mem => tau_mem, tau_syn => tau_syn, threshold => threshold, leak => leak, reset => reset);
    set_in!(encoding: t_early => t_early, t_late => t_late, t_bias => t_bias, t_sim => t_sim);
    set_in!(loss: tau0 => tau0, tau1 => tau1, alpha => alpha);
    set_in!(init: hidden_init_mean => hidden_mean, hidden_init_std => hidden_std,
        readout_init_mean => output_mean, readout_init_std => output_std);
    c.validate().map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let dir = fresh_out_dir(args.out.as_deref())?;
    let toml = toml::to_string(&c).context("config")?;
    fsio::write_atomic(&dir.join("config.toml"), toml.as_bytes()).map_err(flat)?;
    eprintln!(
        "training Yin-Yang in exact mode: {} epochs, 5-{}-3, first-spike loss, output in {}",
        c.epochs,
        c.hidden,
        dir.display()
    );
    let epochs = c.epochs;
    let mut bar: Option<ProgressBar> = None;
    let history = train_yinyang_with(
        &c,
        &dir,
        &mut |p: ExactProgress| {
            let b = bar.get_or_insert_with(|| epoch_bar(args.quiet, p.epoch, epochs));
            b.set_length(p.batches as u64);
            b.set_position(p.batch as u64);
            b.set_message(format!("loss {:.4} acc {:.4}", p.loss, p.accuracy));
            if p.batch == p.batches {
                b.finish_and_clear();
                bar = None;
            }
        },
        &mut |m| print_epoch(m, epochs),
    )
    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    if let Some(m) = history.last() {
        println!("test accuracy: {}", fmt_opt(m.test_acc));
    }
    Ok(())
}

fn write_outputs(dir: &Path, trainer: &Trainer) -> Result<()> {
    trainer.save(&dir.join(CHECKPOINT)).map_err(flat)?;
    metrics::write(dir, &trainer.history).map_err(flat)?;
    plot::plot_metrics(&dir.join("curves.png"), &trainer.history).map_err(flat)?;
    Ok(())
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.4}"))
}

/// Runs `train`.
pub fn run_train(args: TrainArgs) -> Result<()> {
    let Task::Yinyang(args) = args.task;
    set_threads(args.threads)?;
    if args.mode == Mode::Exact {
        return run_train_exact(&args);
    }
    let (mut trainer, dir) = if let Some(dir) = &args.resume {
        let given = args.given_config_flags();
        if !given.is_empty() {
            bail!(
                "--resume: settings cannot change when resuming (only --epochs); got --{}",
                given.join(", --").replace('_', "-")
            );
        }
        let mut t = Trainer::load(&dir.join(CHECKPOINT))
            .map_err(flat)
            .with_context(|| format!("--resume {}", dir.display()))?;
        if let Some(e) = args.epochs {
            if e < t.epochs_done {
                bail!(
                    "--epochs: expected >= {} (epochs already done), got {e}",
                    t.epochs_done
                );
            }
            t.config.epochs = e;
        }
        (t, dir.clone())
    } else {
        let mut config = match &args.config {
            Some(p) => TrainConfig::from_toml_file(p)
                .map_err(flat)
                .context("--config")?,
            None => TrainConfig::default(),
        };
        args.apply(&mut config)?;
        let trainer = Trainer::new(config).map_err(flat)?;
        let dir = fresh_out_dir(args.out.as_deref())?;
        let toml = toml::to_string(&trainer.config).context("config")?;
        fsio::write_atomic(&dir.join("config.toml"), toml.as_bytes()).map_err(flat)?;
        (trainer, dir)
    };
    // Persist the (possibly extended) state before the first epoch, so that the
    // directory is resumable from the start.
    write_outputs(&dir, &trainer)?;
    eprintln!(
        "training Yin-Yang: {} epochs, hidden {:?}, {} discretization, output in {}",
        trainer.config.epochs,
        trainer.config.hidden,
        trainer.config.discretization,
        dir.display()
    );
    while !trainer.finished() {
        let epoch = trainer.epochs_done + 1;
        let bar = epoch_bar(args.quiet, epoch, trainer.config.epochs);
        let m = trainer
            .run_epoch(&mut |p: Progress| {
                bar.set_length(p.batches as u64);
                bar.set_position(p.batch as u64);
                bar.set_message(format!(
                    "loss {:.4} acc {:.4} rate {:.1} spikes/sample",
                    p.loss, p.accuracy, p.hidden_spikes_per_sample
                ));
            })
            .map_err(flat)?;
        bar.finish_and_clear();
        write_outputs(&dir, &trainer)?;
        print_epoch(&m, trainer.config.epochs);
    }
    if let Some(m) = trainer.history.last() {
        println!("test accuracy: {}", fmt_opt(m.test_acc));
    }
    Ok(())
}

/// Runs `eval`.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    set_threads(args.threads)?;
    if is_exact_checkpoint(&args.checkpoint) {
        return run_eval_exact(&args);
    }
    let trainer = Trainer::load(&args.checkpoint)
        .map_err(flat)
        .context("--checkpoint")?;
    let cfg = &trainer.config;
    let seed = args.data_seed.unwrap_or(cfg.data_seed);
    let size = args.size.unwrap_or(cfg.test_size);
    if size == 0 {
        bail!("--size: expected >= 1, got 0");
    }
    let data = yinyang::generate(size, yinyang::split_seeds(seed)[2]);
    let e = evaluate(&trainer.net, cfg, &data, cfg.eval_batch_size).map_err(flat)?;
    println!("accuracy: {}", e.accuracy);
    println!("loss: {}", e.loss);
    println!("hidden spikes per sample: {}", e.hidden_spikes_per_sample);
    println!("samples: {} (data seed {seed}, test split)", e.samples);
    println!("epochs trained: {}", trainer.epochs_done);
    Ok(())
}

/// True for a checkpoint written by `train yinyang --mode exact` (its metadata names the
/// exact format). Unreadable files are left to the regular loader's error message.
fn is_exact_checkpoint(path: &Path) -> bool {
    eventprop_train::checkpoint::load(path)
        .ok()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(&c.metadata).ok())
        .is_some_and(|m| m["format"] == eventprop_exact::train::FORMAT)
}

/// `eval` of an exact-mode checkpoint, on the same kind of data set as the stepped mode.
fn run_eval_exact(args: &EvalArgs) -> Result<()> {
    let (cfg, net, history) = eventprop_exact::train::load_checkpoint(&args.checkpoint)
        .map_err(|e| anyhow::anyhow!(e.to_string()))
        .context("--checkpoint")?;
    let seed = args.data_seed.unwrap_or(cfg.data_seed);
    let size = args.size.unwrap_or(1000);
    if size == 0 {
        bail!("--size: expected >= 1, got 0");
    }
    let data = yinyang::generate(size, yinyang::split_seeds(seed)[2]);
    let e = eventprop_exact::train::evaluate(&net, &cfg, &data)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    println!("accuracy: {}", e.accuracy);
    println!("loss: {}", e.loss);
    println!("hidden spikes per sample: {}", e.hidden_spikes_per_sample);
    println!("silent output fraction: {}", e.silent_output_fraction);
    println!(
        "samples: {} (data seed {seed}, test split, exact mode)",
        e.samples
    );
    println!("epochs trained: {}", history.len());
    Ok(())
}
