//! Times the pieces of one training batch (forward, loss, backward) at the default size,
//! in f64 and f32: `cargo run --release -p eventprop-train --example prof`.
use eventprop_core::Real;
use eventprop_train::data::rasterize;
use eventprop_train::network::SteppedNetwork;
use eventprop_train::{loss, yinyang, TrainConfig};
use std::time::Instant;

fn time<F: Real>() -> Result<(), Box<dyn std::error::Error>> {
    let c = TrainConfig::default();
    let net = SteppedNetwork {
        spec: c.network(),
        dt: c.encoding.dt,
        discretization: c.stepped.discretization,
    };
    let weights: Vec<ndarray::Array2<F>> = net
        .spec
        .init_weights(&c.inits(), 0)?
        .iter()
        .map(|w| w.mapv(F::of))
        .collect();
    let data = yinyang::generate(50, 0);
    let set = yinyang::encode(&data, &c.encoding);
    let inputs: Vec<&[_]> = set.samples.iter().map(Vec::as_slice).collect();
    let x = rasterize(
        &inputs,
        yinyang::N_INPUTS,
        c.encoding.steps(),
        c.encoding.dt,
    )
    .0
    .mapv(F::of);
    let (mut tf, mut tl, mut tb) = (0.0, 0.0, 0.0);
    let reps = 200;
    for _ in 0..reps {
        let s = Instant::now();
        let trace = net.forward(&weights, x.view())?;
        tf += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let out = loss::max_over_time(trace.output.view(), &data.labels, 4e-4)?;
        tl += s.elapsed().as_secs_f64();
        let s = Instant::now();
        let g = net.backward(&weights, &trace, out.grad.view(), None)?;
        tb += s.elapsed().as_secs_f64();
        std::hint::black_box(g);
    }
    let ms = 1e3 / reps as f64;
    println!(
        "{}: per batch of 50: forward {:.3} ms, loss {:.3} ms, backward {:.3} ms; {:.0} samples/s (forward + backward)",
        F::NAME,
        tf * ms,
        tl * ms,
        tb * ms,
        50.0 * reps as f64 / (tf + tl + tb)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    time::<f64>()?;
    time::<f32>()
}
