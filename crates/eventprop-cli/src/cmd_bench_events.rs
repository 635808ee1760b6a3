//! `eventprop bench --task events`: what a user waits for, an epoch of `train events` on a
//! data file, for each training configuration (row).
//!
//! Every row is a real `eventprop train events` run of this same executable, in a process of
//! its own (so that its peak resident memory is its own): the same data loading, init
//! calibration, engine and batch loop as a user's run. The row's times come from the run's
//! `metrics.json` (per epoch: `train_seconds`, and `epoch_seconds − train_seconds` for the
//! validation and test evaluation), its sample counts from the run's `data:` line, its peak
//! memory from the kernel's accounting of the finished process (`wait4`'s `ru_maxrss`).
//!
//! The data are an SHD-shaped generated timing task (`eventprop data timing`; smaller with
//! `--samples`, `--test-samples`, `--events-per-sample`, `--channels`) or `--data FILE`
//! (with `--test FILE`). The exact-engine rows run on the first `--exact-samples` training
//! and `--exact-test-samples` test samples of the same data (a full SHD-sized epoch of the
//! exact engine takes minutes); samples/s make the rows comparable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use eventprop_data::timing::{timing_task, TimingTask};
use eventprop_data::SpikeSet;
use serde::Serialize;

/// The configurations `--rows` chooses from: name, engine, extra `train events` flags.
pub const ROWS: &[(&str, &[&str])] = &[
    ("plain", &[]),
    ("recurrent", &["--recurrent"]),
    ("delays", &["--delays"]),
    ("taus-threshold", &["--train-taus", "--train-threshold"]),
    ("exact", &["--engine", "exact"]),
    ("exact-recurrent", &["--engine", "exact", "--recurrent"]),
];

/// The settings of an events benchmark (from `eventprop bench --task events`).
#[derive(Debug)]
pub struct EventsBench {
    /// Training data file (`None`: generate the timing task).
    pub data: Option<PathBuf>,
    /// Test data file (with `data`).
    pub test: Option<PathBuf>,
    /// Generated training samples.
    pub samples: usize,
    /// Generated test samples.
    pub test_samples: usize,
    /// Events per generated sample.
    pub events_per_sample: usize,
    /// Channels of the generated task.
    pub channels: usize,
    /// Hidden layer size (`None`: the trainer's default).
    pub hidden: Option<usize>,
    /// Training samples of the exact-engine rows (the first of the file; 0 = all).
    pub exact_samples: usize,
    /// Test samples of the exact-engine rows (the first of the file; 0 = all).
    pub exact_test_samples: usize,
    /// Epochs per row.
    pub epochs: usize,
    /// Rows to run, in this order.
    pub rows: Vec<String>,
    /// Worker threads of each run.
    pub threads: usize,
    /// Seed of each run (`train events --seed`).
    pub seed: u64,
    /// Folder for the data files and run folders (`None`: a fresh folder in the system's
    /// temporary directory, removed at the end).
    pub work_dir: Option<PathBuf>,
    /// Seconds after which a row's process is stopped and the row reported as timed out
    /// (`None`: no limit).
    pub row_timeout: Option<f64>,
    /// One JSON object per row instead of text.
    pub json: bool,
}

/// One row's result.
#[derive(Debug, Serialize)]
struct RowResult {
    task: &'static str,
    row: String,
    engine: &'static str,
    flags: Vec<String>,
    threads: usize,
    epochs: usize,
    /// Samples trained per epoch (the training file less the validation split).
    train_samples: usize,
    /// Samples evaluated per epoch (validation and test).
    eval_samples: usize,
    /// Median over the epochs of the training pass's seconds.
    train_seconds: Option<f64>,
    /// Median over the epochs of the evaluation's seconds (validation and test).
    eval_seconds: Option<f64>,
    /// Median over the epochs of the epoch's seconds (training and evaluation).
    epoch_seconds: Option<f64>,
    /// `train_samples / train_seconds`.
    train_samples_per_s: Option<f64>,
    /// `eval_samples / eval_seconds`.
    eval_samples_per_s: Option<f64>,
    /// The whole `train events` process: reading the data, init calibration, the epochs,
    /// the run folder's files and figures.
    process_seconds: f64,
    /// Peak resident memory of the run's process (MB; `None` where the OS does not tell).
    peak_rss_mb: Option<f64>,
    /// Hidden spikes per training sample in the last epoch.
    hidden_spikes_per_sample: Option<f64>,
    /// Test accuracy after the last epoch (`None` without a test set).
    test_acc: Option<f64>,
    /// The training file of the row.
    data: String,
    /// Whether the row's process ran past `--row-timeout-s` and was stopped (its times are
    /// then those of the epochs it finished, or `None`).
    timed_out: bool,
}

/// Removes the folder it names when dropped (the benchmark's own temporary folder).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks the settings before anything is generated or run.
fn check(b: &EventsBench) -> Result<()> {
    for row in &b.rows {
        if !ROWS.iter().any(|(name, _)| name == row) {
            let names: Vec<&str> = ROWS.iter().map(|(n, _)| *n).collect();
            bail!(
                "--rows: expected a comma-separated list of {}, got `{row}`",
                names.join(", ")
            );
        }
    }
    if b.rows.is_empty() {
        bail!("--rows: expected at least one row, got none");
    }
    if b.test.is_some() && b.data.is_none() {
        bail!("--test: expected with --data FILE (the generated task has its own test file)");
    }
    for (flag, n) in [
        ("--samples", b.samples),
        ("--events-per-sample", b.events_per_sample),
        ("--channels", b.channels),
    ] {
        if n == 0 {
            bail!("{flag}: expected at least 1, got 0");
        }
    }
    if b.samples < 2 {
        bail!(
            "--samples: expected at least 2 (a training and a validation sample), got {}",
            b.samples
        );
    }
    // 16 B per event in memory, as `eventprop data` bounds it.
    let events = (b.samples as f64 + b.test_samples as f64) * b.events_per_sample as f64;
    if events * 16.0 > 8.0 * (1u64 << 30) as f64 {
        bail!(
            "--samples, --test-samples, --events-per-sample: {events:.3e} events in all, expected at most 8 GiB of them (16 B each)"
        );
    }
    Ok(())
}

/// The first `n` samples of `set` (all of them for `n = 0`).
fn head(set: &SpikeSet, n: usize) -> SpikeSet {
    let n = if n == 0 { set.len() } else { n.min(set.len()) };
    SpikeSet {
        samples: set.samples[..n].to_vec(),
        labels: set.labels[..n].to_vec(),
    }
}

/// Writes `set` as an event `.npz` named `name` in `dir`.
fn write(dir: &Path, name: &str, set: &SpikeSet) -> Result<PathBuf> {
    let path = dir.join(name);
    eventprop_train::files::write_events(&path, set)
        .with_context(|| format!("bench: writing {}", path.display()))?;
    Ok(path)
}

/// The data files: `(train, test)` for the stepped rows and for the exact rows.
type Files = ((PathBuf, Option<PathBuf>), (PathBuf, Option<PathBuf>));

/// Generates (or reads) the data and writes the files the rows train on into `dir`.
fn prepare_data(b: &EventsBench, dir: &Path, exact: bool) -> Result<Files> {
    let (train, test, main) = match &b.data {
        Some(path) => {
            let read = |p: &Path, flag: &str| {
                eventprop_train::events::read_event_file(p, None, None)
                    .with_context(|| format!("--{flag} {}", p.display()))
            };
            // the exact rows' subsets need the samples; the stepped rows read the file
            let need = exact && (b.exact_samples > 0 || b.exact_test_samples > 0);
            let train = need.then(|| read(path, "data")).transpose()?;
            let test = match &b.test {
                Some(p) if need => Some(read(p, "test")?),
                _ => None,
            };
            (train, test, (path.clone(), b.test.clone()))
        }
        None => {
            let task = |samples, seed| {
                timing_task(&TimingTask {
                    samples,
                    channels: b.channels,
                    events_per_sample: b.events_per_sample,
                    seed,
                    ..TimingTask::default()
                })
                .context("bench: generating the timing task")
            };
            let train = task(b.samples, 1)?;
            let train_path = write(dir, "train.npz", &train)?;
            let (test, test_path) = if b.test_samples > 0 {
                let t = task(b.test_samples, 2)?;
                let p = write(dir, "test.npz", &t)?;
                (Some(t), Some(p))
            } else {
                (None, None)
            };
            (Some(train), test, (train_path, test_path))
        }
    };
    let exact_files = match &train {
        Some(train) if exact => {
            let tr = write(dir, "exact-train.npz", &head(train, b.exact_samples))?;
            let te = test
                .as_ref()
                .map(|t| write(dir, "exact-test.npz", &head(t, b.exact_test_samples)))
                .transpose()?;
            (tr, te)
        }
        _ => main.clone(),
    };
    Ok((main, exact_files))
}

/// Runs the benchmark, printing one line (or JSON object) per row.
pub fn run(b: &EventsBench) -> Result<()> {
    check(b)?;
    let exe = std::env::current_exe().context("bench: the path of this executable")?;
    let (dir, _cleanup) = match &b.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("--work-dir {}: cannot create it", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let d = std::env::temp_dir()
                .join(format!("eventprop-bench-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("bench: cannot create {}", d.display()))?;
            (d.clone(), Some(TempDir(d)))
        }
    };
    let any_exact = b.rows.iter().any(|r| r.starts_with("exact"));
    let (main, exact) = prepare_data(b, &dir, any_exact)?;
    if !b.json {
        println!(
            "train events, {} epoch(s) per row, {} thread(s); stepped rows on {}, exact rows on {}",
            b.epochs,
            b.threads,
            main.0.display(),
            exact.0.display()
        );
    }
    for (k, row) in b.rows.iter().enumerate() {
        let flags = ROWS
            .iter()
            .find(|(n, _)| n == row)
            .map(|(_, f)| *f)
            .unwrap_or_default();
        let files = if row.starts_with("exact") {
            &exact
        } else {
            &main
        };
        let out = dir.join(format!("run-{k}-{row}"));
        let r = run_row(b, &exe, row, flags, files, &out)?;
        print_row(&r, b.json)?;
    }
    Ok(())
}

/// Runs one row's `train events` process and reads its results.
fn run_row(
    b: &EventsBench,
    exe: &Path,
    row: &str,
    flags: &[&str],
    (train, test): &(PathBuf, Option<PathBuf>),
    out: &Path,
) -> Result<RowResult> {
    let mut args: Vec<String> = vec![
        "train".into(),
        "events".into(),
        "--train".into(),
        train.display().to_string(),
        "--epochs".into(),
        b.epochs.to_string(),
        "--threads".into(),
        b.threads.to_string(),
        "--seed".into(),
        b.seed.to_string(),
        "--out".into(),
        out.display().to_string(),
        "--quiet".into(),
    ];
    if let Some(t) = test {
        args.extend(["--test".into(), t.display().to_string()]);
    }
    if let Some(h) = b.hidden {
        args.extend(["--hidden".into(), h.to_string()]);
    }
    args.extend(flags.iter().map(|s| s.to_string()));
    let log = out.with_extension("log");
    let stderr = File::create(&log).with_context(|| format!("bench: {}", log.display()))?;
    let start = Instant::now();
    let child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("bench: starting {}", exe.display()))?;
    let (status, peak_rss_mb) = wait_with_peak_rss(child, b.row_timeout)?;
    let process_seconds = start.elapsed().as_secs_f64();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let timed_out = status == Exit::TimedOut;
    if status == Exit::Failed {
        let last = log_text.lines().last().unwrap_or("(no message)");
        bail!(
            "bench: row {row}: `eventprop {}` failed: {last}",
            args.join(" ")
        );
    }
    let (n_train, n_val, n_test) = match data_counts(&log_text) {
        Some(c) => c,
        None if timed_out => (0, 0, 0),
        None => bail!("bench: row {row}: no `data:` line in the run's output"),
    };
    let metrics_path = out.join("metrics.json");
    let epochs: Vec<serde_json::Value> = match std::fs::read_to_string(&metrics_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("bench: row {row}: {}", metrics_path.display()))?,
        Err(_) if timed_out => Vec::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("bench: row {row}: {}", metrics_path.display()))
        }
    };
    let field = |e: &serde_json::Value, k: &str| e[k].as_f64();
    let mut train_s: Vec<f64> = epochs
        .iter()
        .filter_map(|e| field(e, "train_seconds"))
        .collect();
    let mut epoch_s: Vec<f64> = epochs
        .iter()
        .filter_map(|e| field(e, "epoch_seconds"))
        .collect();
    let mut eval_s: Vec<f64> = epochs
        .iter()
        .filter_map(|e| Some(field(e, "epoch_seconds")? - field(e, "train_seconds")?))
        .collect();
    let last = match epochs.last() {
        Some(l) => l.clone(),
        None if timed_out => serde_json::Value::Null,
        None => bail!("bench: row {row}: no epoch in {}", metrics_path.display()),
    };
    let (train_seconds, eval_seconds, epoch_seconds) = (
        median(&mut train_s),
        median(&mut eval_s),
        median(&mut epoch_s),
    );
    let eval_samples = n_val + n_test;
    let per_s = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    // no finished epoch (a timed-out row): no times
    let some = |v: f64| (!epochs.is_empty()).then_some(v);
    Ok(RowResult {
        task: "events",
        row: row.to_string(),
        engine: if row.starts_with("exact") {
            "exact"
        } else {
            "stepped"
        },
        flags: flags.iter().map(|s| s.to_string()).collect(),
        threads: b.threads,
        epochs: epochs.len(),
        train_samples: n_train,
        eval_samples,
        train_seconds: some(train_seconds),
        eval_seconds: some(eval_seconds),
        epoch_seconds: some(epoch_seconds),
        train_samples_per_s: some(per_s(n_train, train_seconds)),
        eval_samples_per_s: some(per_s(eval_samples, eval_seconds)),
        process_seconds,
        peak_rss_mb,
        hidden_spikes_per_sample: field(&last, "hidden_spikes_per_sample"),
        test_acc: field(&last, "test_acc"),
        data: train.display().to_string(),
        timed_out,
    })
}

/// Parses the run's `data: A train, B validation, C test samples` line.
fn data_counts(log: &str) -> Option<(usize, usize, usize)> {
    let line = log.lines().find_map(|l| l.strip_prefix("data: "))?;
    let mut n = line
        .split(',')
        .map(|part| part.split_whitespace().next()?.parse::<usize>().ok());
    Some((n.next()??, n.next()??, n.next()??))
}

/// How a row's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// Exit status 0.
    Ok,
    /// Another exit status or a signal.
    Failed,
    /// Stopped after the row's time limit.
    TimedOut,
}

/// Waits for `child` (stopping it after `timeout` seconds) and returns how it ended and its
/// peak resident memory (MB).
#[cfg(unix)]
fn wait_with_peak_rss(
    child: std::process::Child,
    timeout: Option<f64>,
) -> Result<(Exit, Option<f64>)> {
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        let flags = if timeout.is_some() && !killed {
            libc::WNOHANG
        } else {
            0
        };
        // SAFETY: waits for our own child, writing into the two locals above; `child` is
        // not waited for again (std's handle holds no other state to release).
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r == pid {
            break;
        }
        if r == 0 {
            if timeout.is_some_and(|t| start.elapsed().as_secs_f64() > t) {
                // SAFETY: signals our own child, which has not been reaped (wait4 returned 0).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = true;
            } else {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            continue;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("bench: waiting for a row's process");
        }
    }
    drop(child);
    let exit = if killed {
        Exit::TimedOut
    } else if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    };
    // Linux reports kilobytes.
    let mb = (usage.ru_maxrss > 0).then(|| usage.ru_maxrss as f64 / 1024.0);
    Ok((exit, mb))
}

/// Waits for `child`; the peak memory is not known on this OS, and there is no time limit.
#[cfg(not(unix))]
fn wait_with_peak_rss(
    mut child: std::process::Child,
    _timeout: Option<f64>,
) -> Result<(Exit, Option<f64>)> {
    let status = child.wait().context("bench: waiting for a row's process")?;
    Ok((
        if status.success() {
            Exit::Ok
        } else {
            Exit::Failed
        },
        None,
    ))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn print_row(r: &RowResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let rss = r
        .peak_rss_mb
        .map_or_else(|| "?".to_string(), |m| format!("{m:.0} MB"));
    if r.timed_out {
        println!(
            "{:<16} timed out after {:.0} s (--row-timeout-s); {} epoch(s) finished",
            r.row, r.process_seconds, r.epochs
        );
        return Ok(());
    }
    println!(
        "{:<16} train {:>5} samples {:>8.2} s {:>8.1} samples/s | eval {:>5} samples {:>7.2} s {:>8.1} samples/s | epoch {:>8.2} s | process {:>8.2} s | peak RSS {:>8} | {:.0} hidden spikes/sample",
        r.row,
        r.train_samples,
        r.train_seconds.unwrap_or(0.0),
        r.train_samples_per_s.unwrap_or(0.0),
        r.eval_samples,
        r.eval_seconds.unwrap_or(0.0),
        r.eval_samples_per_s.unwrap_or(0.0),
        r.epoch_seconds.unwrap_or(0.0),
        r.process_seconds,
        rss,
        r.hidden_spikes_per_sample.unwrap_or(0.0)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_line_is_parsed() {
        let log = "training ...\ndata: 180 train, 20 validation, 60 test samples\ninit: x";
        assert_eq!(data_counts(log), Some((180, 20, 60)));
        assert_eq!(data_counts("data: x train"), None);
    }

    #[test]
    fn head_takes_the_first_samples() {
        let set = SpikeSet {
            samples: vec![vec![], vec![], vec![]],
            labels: vec![0, 1, 2],
        };
        assert_eq!(head(&set, 2).labels, [0, 1]);
        assert_eq!(head(&set, 0).labels, [0, 1, 2]);
        assert_eq!(head(&set, 9).labels, [0, 1, 2]);
    }
}
