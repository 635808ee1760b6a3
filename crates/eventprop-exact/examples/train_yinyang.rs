//! Trains Yin-Yang in exact mode with the default (paper) setup and prints one line per
//! epoch; the files land in the output folder (see `eventprop_exact::train`).
//!
//! `cargo run --release -p eventprop-exact --example train_yinyang -- OUT_DIR [SEED] [EPOCHS]`

use eventprop_exact::train::{train_yinyang, ExactTrainConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        eprintln!("usage: train_yinyang OUT_DIR [SEED] [EPOCHS]");
        std::process::exit(2);
    };
    let mut cfg = ExactTrainConfig::default();
    if let Some(s) = args.get(2) {
        cfg.seed = s.parse().expect("SEED: an integer");
    }
    if let Some(e) = args.get(3) {
        cfg.epochs = e.parse().expect("EPOCHS: an integer");
    }
    let history = match train_yinyang(&cfg, std::path::Path::new(out), &mut |_| {}) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    for m in &history {
        println!(
            "epoch {:3} lr {:.2e} train loss {:.4} acc {:.4} | val acc {:.4} | test loss {:.4} acc {:.4} | {:.1} hidden spikes | {:.2} s",
            m.epoch,
            m.lr,
            m.train_loss,
            m.train_acc,
            m.val_acc.unwrap_or(f64::NAN),
            m.test_loss.unwrap_or(f64::NAN),
            m.test_acc.unwrap_or(f64::NAN),
            m.hidden_spikes_per_sample,
            m.epoch_seconds
        );
    }
    let best = history
        .iter()
        .max_by(|a, b| a.val_acc.partial_cmp(&b.val_acc).expect("finite"))
        .expect("at least one epoch");
    println!(
        "best validation epoch {}: val acc {:.4}, test acc {:.4}; final test acc {:.4}",
        best.epoch,
        best.val_acc.unwrap_or(f64::NAN),
        best.test_acc.unwrap_or(f64::NAN),
        history.last().and_then(|m| m.test_acc).unwrap_or(f64::NAN)
    );
}
