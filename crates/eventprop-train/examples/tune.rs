//! Tuning helper: `cargo run --release -p eventprop-train --example tune -- 'toml overrides'`
//! trains Yin-Yang with the preset (of the snippet's `engine`, default stepped) overridden by
//! the TOML snippet and prints each epoch.
use eventprop_train::{TrainConfig, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let snippet = std::env::args().nth(1).unwrap_or_default();
    let config = TrainConfig::layered(&[("snippet", snippet.parse()?)])?;
    let mut t = Trainer::new(config)?;
    while !t.finished() {
        let m = t.run_epoch(&mut |_| {})?;
        println!(
            "epoch {:2} loss {:.4} acc {:.4} val {:.4} test {:.4} spikes/sample {:.1} {:.3}s",
            m.epoch,
            m.train_loss,
            m.train_acc,
            m.val_acc.unwrap_or(f64::NAN),
            m.test_acc.unwrap_or(f64::NAN),
            m.hidden_spikes_per_sample,
            m.epoch_seconds
        );
    }
    Ok(())
}
