//! Per-epoch metrics and their JSON / CSV files (written atomically).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use eventprop_data::fsio::write_atomic;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate used in this epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's batches (before each update).
    pub train_loss: f64,
    /// Training accuracy over the epoch (before each update).
    pub train_acc: f64,
    /// Validation loss after the epoch, if a validation set was evaluated.
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub val_acc: Option<f64>,
    /// Test loss after the epoch, if a test set was evaluated.
    pub test_loss: Option<f64>,
    /// Test accuracy after the epoch.
    pub test_acc: Option<f64>,
    /// Wall-clock seconds of the epoch (training and evaluation).
    pub epoch_seconds: f64,
    /// Wall-clock seconds of the epoch's training pass alone: forward, loss, backward and
    /// update of every batch, without the validation and test evaluation (0 in metrics
    /// written before this field existed).
    #[serde(default)]
    pub train_seconds: f64,
    /// Mean number of hidden spikes per training sample.
    pub hidden_spikes_per_sample: f64,
    /// Recording statistics of the epoch's training batches (chip engine only; in
    /// `metrics.json`, not in the CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<crate::engine::ChipStats>,
    /// What augmentation did to the epoch's training samples (runs with `[augment]` on
    /// only; in `metrics.json`, not in the CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<eventprop_data::augment::AugmentStats>,
    /// The spike-activity watchdog's warnings of this epoch (a silent or saturated hidden
    /// layer, with the fix it suggests; see `trainer::activity_warnings`), also printed as
    /// `warning: ...` lines (absent when there were none; in `metrics.json`, not in the
    /// CSV).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The CSV header, in column order.
pub const CSV_HEADER: &str = "epoch,lr,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,epoch_seconds,train_seconds,hidden_spikes_per_sample";

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// The metrics as CSV text (header + one line per epoch; empty cells for absent values).
pub fn to_csv(metrics: &[EpochMetrics]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for m in metrics {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            m.epoch,
            m.lr,
            m.train_loss,
            m.train_acc,
            opt(m.val_loss),
            opt(m.val_acc),
            opt(m.test_loss),
            opt(m.test_acc),
            m.epoch_seconds,
            m.train_seconds,
            m.hidden_spikes_per_sample
        );
    }
    s
}

/// Writes `metrics.json` and `metrics.csv` into `dir`, each atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write(dir: &Path, metrics: &[EpochMetrics]) -> Result<()> {
    let json = serde_json::to_string_pretty(metrics).expect("metrics serialise");
    write_atomic(&dir.join("metrics.json"), json.as_bytes())?;
    Ok(write_atomic(
        &dir.join("metrics.csv"),
        to_csv(metrics).as_bytes(),
    )?)
}

/// Reads a `metrics.json` written by [`write()`].
///
/// # Errors
/// [`Error::Io`] or [`Error::Format`] naming the file.
pub fn read_json(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<EpochMetrics> {
        vec![EpochMetrics {
            epoch: 1,
            lr: 2e-3,
            train_loss: 0.9,
            train_acc: 0.5,
            val_loss: Some(0.8),
            val_acc: Some(0.6),
            test_loss: None,
            test_acc: None,
            epoch_seconds: 0.25,
            train_seconds: 0.2,
            hidden_spikes_per_sample: 12.5,
            chip: None,
            augment: None,
            warnings: Vec::new(),
        }]
    }

    #[test]
    fn json_round_trips_and_csv_has_one_row_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        assert_eq!(
            read_json(&dir.path().join("metrics.json")).unwrap(),
            sample()
        );
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "1,0.002,0.9,0.5,0.8,0.6,,,0.25,0.2,12.5");
        assert_eq!(lines.len(), 2);
    }
}
