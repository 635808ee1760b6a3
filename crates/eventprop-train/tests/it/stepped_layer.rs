//! The time-stepped layer with recurrent weights, delays and per-neuron parameters
//! (`eventprop_train::stepped_layer`) against the exact event-based engine on the same
//! network: as `dt → 0` every gradient (feed-forward and recurrent weights, delays,
//! `tau_mem`, `tau_syn`, `threshold`, `leak`, `reset`) converges to the exact one
//! (first order in `dt`). Loss: the sum of the output spike times.

use eventprop_exact::{loss, Lif, Network, NeuronParams, SolverConfig, Spike};
use eventprop_train::stepped_layer::SteppedLayer;
use ndarray::{array, Array2};

const T_MAX: f64 = 0.05;

struct Net {
    w: Vec<Array2<f64>>,
    r: Vec<Option<Array2<f64>>>,
    d: Vec<Option<Array2<f64>>>,
    p: Vec<NeuronParams>,
}

fn params(tau_mem: &[f64], tau_syn: &[f64], threshold: &[f64], leak: &[f64]) -> NeuronParams {
    NeuronParams {
        leak: leak.to_vec(),
        reset: leak.iter().map(|l| l - 0.1).collect(),
        threshold: threshold.to_vec(),
        tau_syn: tau_syn.to_vec(),
        tau_mem: tau_mem.to_vec(),
    }
}

/// 3 inputs → 4 recurrent, delayed hidden neurons → 2 delayed outputs, per-neuron
/// parameters (one hidden neuron with tau_syn = tau_mem); hand-picked so that every
/// neuron fires 1–3 times and no spike grazes.
fn net(s0: f64, s1: f64) -> Net {
    let mut n = Net {
        w: vec![
            array![
                [9.0, 4.0, 2.0],
                [3.0, 8.0, 5.0],
                [6.0, 1.0, 7.0],
                [2.0, 6.0, 6.0]
            ],
            array![[4.0, 3.0, 5.0, 2.0], [2.0, 5.0, 3.0, 4.0]],
        ],
        r: vec![
            Some(array![
                [0.0, 0.5, -0.4, 0.3],
                [0.4, 0.0, 0.3, -0.5],
                [-0.3, 0.4, 0.0, 0.4],
                [0.5, -0.4, 0.3, 0.0]
            ]),
            None,
        ],
        d: vec![
            Some(array![
                [1e-3, 0.0, 2e-3],
                [0.5e-3, 1.5e-3, 0.0],
                [2e-3, 1e-3, 0.5e-3],
                [0.0, 2.5e-3, 1e-3]
            ]),
            Some(array![
                [1e-3, 0.0, 2e-3, 3e-3],
                [0.5e-3, 1.5e-3, 0.0, 2.5e-3]
            ]),
        ],
        p: vec![
            params(
                &[15e-3, 20e-3, 25e-3, 8e-3],
                &[5e-3, 4e-3, 6e-3, 8e-3],
                &[1.0, 1.1, 0.9, 1.05],
                &[0.0, 0.05, -0.05, 0.0],
            ),
            params(&[20e-3, 18e-3], &[5e-3, 6e-3], &[1.0, 0.95], &[0.0, 0.02]),
        ],
    };
    n.w[0] *= s0;
    n.w[1] *= s1;
    n
}

/// Weight scales for 1–3 spikes per neuron.
const S0: f64 = 0.4;
const S1: f64 = 0.35;

fn input() -> Vec<Spike> {
    [(3e-3, 1), (1e-3, 0), (2e-3, 2), (6e-3, 0), (8e-3, 1)]
        .iter()
        .map(|&(time, neuron)| Spike { time, neuron })
        .collect()
}

/// All gradients as named flat vectors.
type Named = Vec<(&'static str, Vec<f64>)>;

fn flatten(w: &[Array2<f64>], r: &Array2<f64>, d: &[Array2<f64>], p: &[NeuronParams]) -> Named {
    let cat = |v: &[&Array2<f64>]| v.iter().flat_map(|a| a.iter().copied()).collect::<Vec<_>>();
    let mut out = vec![
        ("w", cat(&w.iter().collect::<Vec<_>>())),
        ("r", r.iter().copied().collect()),
        ("d", cat(&d.iter().collect::<Vec<_>>())),
    ];
    for (i, name) in ["leak", "reset", "threshold", "tau_syn", "tau_mem"]
        .into_iter()
        .enumerate()
    {
        out.push((
            name,
            p.iter().flat_map(|x| x.fields()[i].1.to_vec()).collect(),
        ));
    }
    out
}

fn exact(n: &Net) -> (Vec<usize>, Named) {
    let mut net = Network::new(n.w.clone(), vec![Lif::default(); 2]).unwrap();
    for k in 0..2 {
        net = net.with_neuron_params(k, n.p[k].clone()).unwrap();
        if let Some(r) = &n.r[k] {
            net = net.with_recurrent(k, r.clone()).unwrap();
        }
        if let Some(d) = &n.d[k] {
            net = net.with_delays(k, d.clone()).unwrap();
        }
    }
    let cfg = SolverConfig {
        parameter_gradients: true,
        ..Default::default()
    };
    let t = net.forward(&input(), T_MAX, &cfg).unwrap();
    let g = t
        .backward(&net, &loss::spike_time_sum(t.output()).dl_dt, &cfg)
        .unwrap();
    let d: Vec<Array2<f64>> = g.delays.iter().map(|d| d.clone().unwrap()).collect();
    (
        t.spike_counts()[1..].to_vec(),
        flatten(
            &g.weights,
            g.recurrent[0].as_ref().unwrap(),
            &d,
            g.params.as_ref().unwrap(),
        ),
    )
}

fn stepped(n: &Net, dt: f64) -> (Vec<usize>, Named) {
    let steps = (T_MAX / dt).round() as usize + 1;
    let mut spikes = vec![vec![Vec::new(); steps]];
    for s in input() {
        spikes[0][(s.time / dt).round() as usize].push(s.neuron);
    }
    let layers: Vec<SteppedLayer> = (0..2)
        .map(|k| SteppedLayer {
            w: n.w[k].view(),
            r: n.r[k].as_ref().map(|r| r.view()),
            delays: n.d[k].as_ref().map(|d| d.view()),
            params: &n.p[k],
            dt,
        })
        .collect();
    let mut runs = Vec::new();
    for (k, l) in layers.iter().enumerate() {
        let run = l.forward(&spikes[k]).unwrap();
        spikes.push(run.spikes.clone());
        runs.push(run);
    }
    // L = Σ output spike times: grad_spikes = -1 at output spike steps (docs/spec.md §3).
    let mut gs = Array2::zeros((steps, 2));
    for (t, s) in spikes[2].iter().enumerate() {
        for &q in s {
            gs[[t, q as usize]] = -1.0;
        }
    }
    let g1 = layers[1].backward(&spikes[1], &runs[1], gs.view()).unwrap();
    let g0 = layers[0]
        .backward(&spikes[0], &runs[0], g1.input.view())
        .unwrap();
    let counts = spikes[1..]
        .iter()
        .map(|l| l.iter().map(Vec::len).sum())
        .collect();
    (
        counts,
        flatten(
            &[g0.w, g1.w],
            g0.r.as_ref().unwrap(),
            &[g0.delays.unwrap(), g1.delays.unwrap()],
            &[g0.params, g1.params],
        ),
    )
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

#[test]
fn every_gradient_converges_to_the_exact_one_as_dt_shrinks() {
    let n = net(S0, S1);
    let (counts, ex) = exact(&n);
    eprintln!("exact spike counts {counts:?}");
    assert!(counts.iter().all(|&c| c >= 2), "{counts:?}");
    let dts = [1e-4, 1e-5, 1e-6, 1e-7];
    let mut table = Vec::new();
    for dt in dts {
        let (c, st) = stepped(&n, dt);
        assert_eq!(c, counts, "dt {dt}: spike counts");
        let errs: Vec<f64> = st.iter().zip(&ex).map(|(s, e)| rel(&s.1, &e.1)).collect();
        eprintln!(
            "dt {dt:e}: {}",
            ex.iter()
                .zip(&errs)
                .map(|(e, r)| format!("{} {r:.2e}", e.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
        table.push(errs);
    }
    for (i, (name, _)) in ex.iter().enumerate() {
        let (coarse, fine) = (table[0][i], table[3][i]);
        // First order: 1000× smaller dt, at least 20× smaller error; and small at 0.1 µs.
        assert!(fine <= 5e-3, "{name}: {fine:e} at dt = 1e-7");
        assert!(fine * 20.0 <= coarse, "{name}: {coarse:e} -> {fine:e}");
    }
}

#[test]
fn without_recurrence_delays_or_per_neuron_values_it_is_the_seed_function() {
    // The seed's neuron (Corrected) and synapse from eventprop-core on the same layer:
    // spikes identical, weight and input gradients equal to rounding (1e-12 relative; the
    // synapse sums its inputs in another order).
    use eventprop_core::{
        synapse_backward, synapse_forward, Discretization, EventPropNeuron, LifParams,
    };
    use ndarray::Array3;
    let dt = 1e-5;
    let steps = (T_MAX / dt).round() as usize + 1;
    let w = net(S0, S1).w[0].clone();
    let lif = Lif::default();
    let p = NeuronParams::uniform(&lif, 4);
    let mut spikes = vec![Vec::new(); steps];
    let mut x = Array3::<f64>::zeros((steps, 1, 3));
    for s in input() {
        let t = (s.time / dt).round() as usize;
        spikes[t].push(s.neuron);
        x[[t, 0, s.neuron as usize]] = 1.0;
    }
    for v in &mut spikes {
        v.sort_unstable();
    }
    let layer = SteppedLayer {
        w: w.view(),
        r: None,
        delays: None,
        params: &p,
        dt,
    };
    let run = layer.forward(&spikes).unwrap();
    let seed = EventPropNeuron {
        params: LifParams::scalar(lif.leak, lif.reset, lif.threshold, lif.tau_syn, lif.tau_mem),
        dt,
        discretization: Discretization::Corrected,
    };
    let y = synapse_forward(x.view(), w.view()).unwrap();
    let ctx = seed.forward(y.view(), None).unwrap();
    let z = &ctx.output().spikes;
    let mut n_spikes = 0;
    for t in 0..steps {
        for q in 0..4 {
            let fired = run.spikes[t].contains(&(q as u32));
            assert_eq!(fired, z[[t, 0, q]] != 0.0, "step {t} neuron {q}");
            n_spikes += usize::from(fired);
        }
    }
    assert!(n_spikes >= 4, "{n_spikes} spikes");
    // Loss: Σ spike times → grad_spikes = -1 at spike steps.
    let gs3 = z.mapv(|v| -v);
    let gs = gs3.index_axis(ndarray::Axis(1), 0).to_owned();
    let g = layer.backward(&spikes, &run, gs.view()).unwrap();
    let gc = ctx.backward(gs3.view(), None, None).unwrap();
    let sg = synapse_backward(x.view(), w.view(), gc.grad_input.view(), true).unwrap();
    let close = |a: &Array2<f64>, b: &Array2<f64>| {
        let scale = b.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * scale)
    };
    assert!(close(&g.w, &sg.weight), "{} vs {}", g.w, sg.weight);
    // The input gradient is only formed at the input spikes (the layer below reads it
    // only there); the synapse forms it densely.
    let mut gi = sg.input.unwrap().index_axis(ndarray::Axis(1), 0).to_owned();
    let mut at_spikes = Array2::zeros(gi.dim());
    for (t, s) in spikes.iter().enumerate() {
        for &j in s {
            at_spikes[[t, j as usize]] = 1.0;
        }
    }
    gi *= &at_spikes;
    assert!(gi.iter().any(|&v| v != 0.0));
    assert!(close(&g.input, &gi));
}
