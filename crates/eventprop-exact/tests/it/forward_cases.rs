//! Closed-form and edge cases of the event-based forward, properties of the adjoint, and
//! determinism of the batched API.

use eventprop_exact::dynamics::phi;
use eventprop_exact::{
    first_spike_batch, loss, Error, FirstSpikeCe, Lif, Network, SolverConfig, Spike,
};
use ndarray::{array, Array2};
use rand::{Rng, SeedableRng};

fn one_neuron(w: f64, p: Lif) -> Network {
    Network::new(vec![array![[w]]], vec![p]).unwrap()
}

/// The weight whose PSP peak exactly reaches the threshold: the peak of `a w phi(a, b, s)`
/// is at `s* = ln(b/a)/(b-a)` (`1/a` for `a = b`), so `w_crit = theta / (a phi(a, b, s*))`.
fn w_crit(p: &Lif) -> f64 {
    let (a, b) = (1.0 / p.tau_mem, 1.0 / p.tau_syn);
    let s = if a == b {
        1.0 / a
    } else {
        (b / a).ln() / (b - a)
    };
    (p.threshold - p.leak) / (a * phi(a, b, s))
}

#[test]
fn threshold_edge_no_spike_below_exactly_one_above() {
    for (tau_syn, tau_mem) in [(5e-3, 20e-3), (5e-3, 5e-3), (20e-3, 5e-3)] {
        let p = Lif {
            tau_syn,
            tau_mem,
            ..Default::default()
        };
        let w = w_crit(&p);
        let input = [Spike {
            time: 1e-3,
            neuron: 0,
        }];
        let cfg = SolverConfig::default();
        let below = one_neuron(0.999 * w, p).forward(&input, 0.2, &cfg).unwrap();
        assert!(below.output().is_empty(), "0.999 w_crit must stay silent");
        // 1.001 w_crit: exactly one spike (after the reset the remaining current is below
        // w_crit, so it cannot fire again).
        let above = one_neuron(1.001 * w, p).forward(&input, 0.2, &cfg).unwrap();
        assert_eq!(
            above.output().len(),
            1,
            "tau_syn {tau_syn} tau_mem {tau_mem}"
        );
    }
}

#[test]
fn spike_time_solves_the_equal_tau_closed_form() {
    // tau_mem = tau_syn = tau: u(s) = w (s/tau) e^{-s/tau} (docs/spec.md §4 with u0 = 0, I0 = w).
    let tau = 6e-3;
    let p = Lif {
        tau_syn: tau,
        tau_mem: tau,
        ..Default::default()
    };
    let w = 5.0;
    let t0 = 2e-3;
    let trace = one_neuron(w, p)
        .forward(
            &[Spike {
                time: t0,
                neuron: 0,
            }],
            0.1,
            &SolverConfig::default(),
        )
        .unwrap();
    let t = trace.output()[0].time - t0;
    let u = w * (t / tau) * (-t / tau).exp();
    assert!((u - 1.0).abs() < 1e-13, "u(t_k) = {u}");
    // The first crossing: before it the closed form stays below threshold.
    for q in 1..1000 {
        let s = t * q as f64 / 1000.0;
        assert!(w * (s / tau) * (-s / tau).exp() < 1.0 + 1e-12);
    }
}

#[test]
fn inputs_after_t_max_are_ignored_and_spikes_stop_at_t_max() {
    let p = Lif::default();
    let net = one_neuron(20.0, p);
    let cfg = SolverConfig::default();
    let full = net
        .forward(
            &[Spike {
                time: 1e-3,
                neuron: 0,
            }],
            0.1,
            &cfg,
        )
        .unwrap();
    let t_cut = full.output()[1].time + 1e-6;
    let late = [
        Spike {
            time: 1e-3,
            neuron: 0,
        },
        Spike {
            time: 0.5,
            neuron: 0,
        },
    ];
    let cut = net.forward(&late, t_cut, &cfg).unwrap();
    assert_eq!(cut.output().len(), 2, "only the spikes before t_max");
    // Same spikes; the root solve's bracket ends at t_max, so times agree to rounding.
    for (x, y) in cut.output().iter().zip(full.output()) {
        assert_eq!(x.neuron, y.neuron);
        assert!((x.time - y.time).abs() <= 4.0 * f64::EPSILON * y.time);
    }
}

#[test]
fn spike_cap_is_a_typed_error() {
    let net = one_neuron(500.0, Lif::default());
    let cfg = SolverConfig {
        max_spikes_per_neuron: 3,
        ..Default::default()
    };
    let err = net
        .forward(
            &[Spike {
                time: 0.0,
                neuron: 0,
            }],
            0.1,
            &cfg,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManySpikes {
                layer: 1,
                neuron: 0,
                cap: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_typed_errors() {
    let net = one_neuron(1.0, Lif::default());
    let cfg = SolverConfig::default();
    let e = net
        .forward(
            &[Spike {
                time: -1.0,
                neuron: 0,
            }],
            0.1,
            &cfg,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "input spike 0: expected a finite time >= 0, got -1"
    );
    let e = net
        .forward(
            &[Spike {
                time: 0.0,
                neuron: 1,
            }],
            0.1,
            &cfg,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "input spike 0: expected a neuron index < 1, got 1"
    );
    let e = net.forward(&[], f64::NAN, &cfg).unwrap_err();
    assert_eq!(e.to_string(), "t_max: expected a finite value > 0, got NaN");
}

#[test]
fn silent_neuron_has_zero_weight_gradient() {
    // Neuron 1 receives only tiny weights and never fires; its row of dL/dW is exactly 0
    // (no spike, no jump: its adjoint stays 0), and so is its column in the next layer.
    let p = Lif::default();
    let net = Network::new(
        vec![array![[8.0, 7.0], [0.01, 0.01]], array![[9.0, 5.0]]],
        vec![p, p],
    )
    .unwrap();
    let input = [
        Spike {
            time: 1e-3,
            neuron: 0,
        },
        Spike {
            time: 2e-3,
            neuron: 1,
        },
    ];
    let cfg = SolverConfig::default();
    let trace = net.forward(&input, 0.05, &cfg).unwrap();
    assert!(trace.spikes(1).iter().all(|s| s.neuron == 0));
    assert!(!trace.output().is_empty());
    let g = trace
        .backward(&net, &loss::spike_time_sum(trace.output()).dl_dt, &cfg)
        .unwrap();
    assert_eq!(g.weights[0].row(1).to_vec(), vec![0.0, 0.0]);
    assert_eq!(g.weights[1][[0, 1]], 0.0);
    assert!(g.weights[0][[0, 0]] != 0.0);
}

#[test]
fn input_order_does_not_matter() {
    let p = Lif::default();
    let net = Network::new(vec![array![[8.0, 7.0], [3.0, 9.0]]], vec![p]).unwrap();
    let a = [
        Spike {
            time: 1e-3,
            neuron: 0,
        },
        Spike {
            time: 2e-3,
            neuron: 1,
        },
    ];
    let b = [a[1], a[0]];
    let cfg = SolverConfig::default();
    let ta = net.forward(&a, 0.05, &cfg).unwrap();
    let tb = net.forward(&b, 0.05, &cfg).unwrap();
    assert_eq!(ta.output(), tb.output());
    let ga = ta
        .backward(&net, &loss::spike_time_sum(ta.output()).dl_dt, &cfg)
        .unwrap();
    let gb = tb
        .backward(&net, &loss::spike_time_sum(tb.output()).dl_dt, &cfg)
        .unwrap();
    assert_eq!(ga.weights, gb.weights);
    // Input-time gradients follow the caller's order.
    assert_eq!(ga.input_times, vec![gb.input_times[1], gb.input_times[0]]);
}

#[test]
fn batch_is_bit_identical_across_thread_counts() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let p = Lif::default();
    let w0 = Array2::from_shape_fn((30, 5), |_| rng.random_range(0.0..3.0));
    let w1 = Array2::from_shape_fn((3, 30), |_| rng.random_range(0.0..1.5));
    let net = Network::new(vec![w0, w1], vec![p, p]).unwrap();
    let inputs: Vec<Vec<Spike>> = (0..40)
        .map(|_| {
            (0..5)
                .map(|j| Spike {
                    time: rng.random_range(0.0..0.03),
                    neuron: j,
                })
                .collect()
        })
        .collect();
    let labels: Vec<usize> = (0..40).map(|i| i % 3).collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                first_spike_batch(
                    &net,
                    &inputs,
                    &labels,
                    &FirstSpikeCe::default(),
                    0.06,
                    &SolverConfig::default(),
                    true,
                )
                .unwrap()
            })
    };
    let (one, two) = (run(1), run(3));
    assert_eq!(one, two);
    assert!(one
        .grads
        .unwrap()
        .weights
        .iter()
        .any(|g| g.iter().any(|&v| v != 0.0)));
}

/// A 5-30-20-3 network whose output neurons fire repeatedly (large readout weights), with
/// delays and per-neuron parameters in the hidden layers; `recurrent_out` adds recurrent
/// weights to the output layer.
fn busy_output_network(rng: &mut rand_chacha::ChaCha8Rng, recurrent_out: bool) -> Network {
    let p = Lif::default();
    let w0 = Array2::from_shape_fn((30, 5), |_| rng.random_range(0.0..3.0));
    let w1 = Array2::from_shape_fn((20, 30), |_| rng.random_range(-0.5..1.5));
    let w2 = Array2::from_shape_fn((3, 20), |_| rng.random_range(0.0..3.0));
    let d0 = Array2::from_shape_fn((30, 5), |_| rng.random_range(0.0..2e-3));
    let tau_mem: Vec<f64> = (0..20).map(|_| rng.random_range(10e-3..30e-3)).collect();
    let mut np = eventprop_exact::NeuronParams::uniform(&p, 20);
    np.tau_mem = tau_mem;
    let mut net = Network::new(vec![w0, w1, w2], vec![p, p, p])
        .unwrap()
        .with_delays(0, d0)
        .unwrap()
        .with_neuron_params(1, np)
        .unwrap();
    if recurrent_out {
        let r = Array2::from_shape_fn((3, 3), |(i, j)| if i == j { 0.0 } else { -0.3 });
        net = net.with_recurrent(2, r).unwrap();
    }
    net
}

#[test]
fn first_output_spike_only_keeps_losses_and_gradients_bit_identical() {
    // Under the first-spike loss the output adjoint is exactly zero after each output
    // neuron's first spike, so stopping the output neurons there changes nothing but the
    // output trace (SolverConfig::first_output_spike_only).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let net = busy_output_network(&mut rng, false);
    let full_cfg = SolverConfig {
        parameter_gradients: true,
        ..Default::default()
    };
    let first_cfg = SolverConfig {
        first_output_spike_only: true,
        ..full_cfg
    };
    let loss = FirstSpikeCe {
        silent_label_gamma: 30.0,
        ..Default::default()
    };
    let (mut repeated, mut silent_label) = (0, 0);
    for sample in 0..40 {
        let input: Vec<Spike> = (0..5)
            .map(|j| Spike {
                time: rng.random_range(0.0..0.03),
                neuron: j,
            })
            .collect();
        let label = sample % 3;
        let full = net.forward(&input, 0.06, &full_cfg).unwrap();
        let first = net.forward(&input, 0.06, &first_cfg).unwrap();
        for k in 0..=2 {
            assert_eq!(full.spikes(k), first.spikes(k), "layer {k}");
        }
        let mut want: Vec<Spike> = (0..3)
            .filter_map(|n| full.output().iter().find(|s| s.neuron == n).copied())
            .collect();
        eventprop_exact::sort_spikes(&mut want);
        assert_eq!(first.output(), want.as_slice());
        repeated += usize::from(full.output().len() > want.len());
        silent_label += usize::from(!want.iter().any(|s| s.neuron as usize == label));
        let (lf, gf) = loss.sample(&net, &full, label, &full_cfg).unwrap();
        let (l1, g1) = loss.sample(&net, &first, label, &first_cfg).unwrap();
        assert_eq!(lf.value.to_bits(), l1.value.to_bits());
        assert_eq!(lf.prediction, l1.prediction);
        assert_eq!(gf.weights, g1.weights);
        assert_eq!(gf.delays, g1.delays);
        assert_eq!(gf.params, g1.params);
        assert_eq!(gf.input_times, g1.input_times);
        assert_eq!(gf.spike_times[..2], g1.spike_times[..2]);
    }
    // The outputs did fire more than once (what the option skips), and the silent-label
    // membrane term was exercised.
    assert!(
        repeated >= 10 && silent_label > 0,
        "{repeated} {silent_label}"
    );

    // A recurrent output layer's later spikes reach its other neurons: the option is
    // ignored there.
    let net = busy_output_network(&mut rng, true);
    let input = [Spike {
        time: 1e-3,
        neuron: 0,
    }];
    let full = net.forward(&input, 0.06, &full_cfg).unwrap();
    let first = net.forward(&input, 0.06, &first_cfg).unwrap();
    assert_eq!(full.output(), first.output());
}

/// The lockstep forward of a feed-forward layer without delays (all neurons carried through
/// each interval between arrivals together) against the neuron-by-neuron forward, which a
/// layer with delays takes: with zero delays both see the same arrivals, so the traces must
/// be equal bit for bit — spikes, currents and statistics — with per-neuron thresholds,
/// leaks and resets, simultaneous input spikes, the first-spike-only output, and the same
/// error (the lowest-numbered neuron, its offending spike) over the spike cap; and the
/// adjoint (weight, parameter, input- and spike-time gradients) of both.
#[test]
fn lockstep_layers_equal_the_neuron_by_neuron_forward_bit_for_bit() {
    use eventprop_exact::NeuronParams;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(41);
    let (n_in, n_hid, n_out) = (30, 48, 5);
    let mut with_gradient = 0;
    for case in 0..6 {
        let w0 = Array2::from_shape_fn((n_hid, n_in), |_| rng.random_range(-0.3..0.6));
        let w1 = Array2::from_shape_fn((n_out, n_hid), |_| rng.random_range(-0.3..0.3));
        let lif = Lif {
            tau_syn: 5e-3,
            tau_mem: if case % 2 == 0 { 20e-3 } else { 5e-3 },
            ..Default::default()
        };
        let mut p = NeuronParams::uniform(&lif, n_hid);
        for n in 0..n_hid {
            p.threshold[n] = rng.random_range(0.6..1.4);
            p.leak[n] = rng.random_range(-0.1..0.1);
            p.reset[n] = p.leak[n] - rng.random_range(0.0..0.2);
        }
        let lockstep = Network::new(vec![w0.clone(), w1.clone()], vec![lif, lif])
            .unwrap()
            .with_neuron_params(0, p)
            .unwrap();
        let by_neuron = lockstep
            .clone()
            .with_delays(0, Array2::zeros((n_hid, n_in)))
            .unwrap()
            .with_delays(1, Array2::zeros((n_out, n_hid)))
            .unwrap();
        // 600 input spikes in 50 ms, on a 0.1 ms grid (so some coincide)
        let mut input: Vec<Spike> = (0..600)
            .map(|_| Spike {
                time: (rng.random_range(0..500) as f64) * 1e-4,
                neuron: rng.random_range(0..n_in as u32),
            })
            .collect();
        input.sort_by(|a, b| a.time.total_cmp(&b.time));
        let mut cfg = SolverConfig {
            first_output_spike_only: case >= 3,
            ..SolverConfig::default()
        };
        let a = lockstep.forward(&input, 0.06, &cfg).unwrap();
        let b = by_neuron.forward(&input, 0.06, &cfg).unwrap();
        assert!(
            a.spikes(1).len() > 50,
            "case {case}: hidden spikes {}",
            a.spikes(1).len()
        );
        for k in 0..=2 {
            assert_eq!(
                a.layer(k).spikes(),
                b.layer(k).spikes(),
                "case {case} layer {k}"
            );
            let bits = |t: &[f64]| t.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a.layer(k).currents()), bits(b.layer(k).currents()));
        }
        assert_eq!(format!("{:?}", a.stats()), format!("{:?}", b.stats()));
        // the adjoint too: the layers without delays reuse the forward's interval
        // propagators, the delayed ones compute each
        let with_params = SolverConfig {
            parameter_gradients: true,
            ..cfg
        };
        let dl = loss::spike_time_sum(a.output()).dl_dt;
        let ga = a.backward(&lockstep, &dl, &with_params).unwrap();
        let gb = b.backward(&by_neuron, &dl, &with_params).unwrap();
        if ga.weights[0].iter().any(|&g| g != 0.0) {
            with_gradient += 1;
        }
        assert_eq!(ga.weights, gb.weights, "case {case}");
        assert_eq!(ga.params, gb.params);
        assert_eq!(ga.input_times, gb.input_times);
        assert_eq!(ga.spike_times, gb.spike_times);
        // a cap below what the busiest neurons fire: the same error from both
        cfg.max_spikes_per_neuron = 2;
        let ea = lockstep.forward(&input, 0.06, &cfg).unwrap_err();
        let eb = by_neuron.forward(&input, 0.06, &cfg).unwrap_err();
        assert!(matches!(ea, Error::TooManySpikes { .. }), "{ea}");
        assert_eq!(ea.to_string(), eb.to_string());
    }
    // the cases whose outputs spike (5 of 6) have hidden-weight gradients
    assert!(with_gradient >= 4, "{with_gradient}");
}

/// A hidden layer without neurons (which `Network::new` accepts): the lockstep forward and
/// the adjoint's shared propagators have no neuron to take the rates from, so the layer
/// must run (silently) instead of indexing its first neuron.
#[test]
fn a_layer_without_neurons_runs_both_ways() {
    let net = Network::new(
        vec![Array2::zeros((0, 2)), Array2::zeros((1, 0))],
        vec![Lif::default(), Lif::default()],
    )
    .unwrap();
    let input = [Spike {
        time: 1e-3,
        neuron: 0,
    }];
    let cfg = SolverConfig::default();
    let trace = net.forward(&input, 0.01, &cfg).unwrap();
    assert!(trace.spikes(1).is_empty() && trace.output().is_empty());
    let g = trace
        .backward(&net, &loss::spike_time_sum(trace.output()).dl_dt, &cfg)
        .unwrap();
    assert_eq!(g.weights[0].dim(), (0, 2));
    assert_eq!(g.input_times, vec![0.0]);
}
