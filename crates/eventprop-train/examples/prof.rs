//! Times the pieces of one training batch (forward, loss, backward) at the default size.
use eventprop_train::train::{TrainConfig, Trainer};
use eventprop_train::{loss, yinyang};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Trainer::new(TrainConfig::default())?;
    let idx: Vec<usize> = (0..50).collect();
    let x = yinyang::encode_batch::<f64>(&t.data.train, &idx, &t.config.encoding);
    let labels: Vec<usize> = idx.iter().map(|&i| t.data.train.labels[i]).collect();
    let (mut tf, mut tl, mut tb) = (0.0, 0.0, 0.0);
    for _ in 0..100 {
        let s = Instant::now();
        let trace = t.net.forward(x.view())?;
        tf += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let out = loss::max_over_time(trace.output.view(), &labels, 4e-4);
        tl += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let g = t.net.backward(&trace, out.grad.view(), None)?;
        tb += s.elapsed().as_secs_f64();
        std::hint::black_box(g);
    }
    println!(
        "per batch: forward {:.3} ms, loss {:.3} ms, backward {:.3} ms",
        tf * 10.0,
        tl * 10.0,
        tb * 10.0
    );
    Ok(())
}
