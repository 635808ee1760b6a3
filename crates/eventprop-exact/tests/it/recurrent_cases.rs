//! Degenerate and limiting cases of recurrent layers and delays, stated and counted:
//! zero recurrent weights and zero delays reduce to the feed-forward network, equal-time
//! spikes of a recurrent layer and a spike exactly at an arrival are counted in
//! [`ForwardStats`], and their gradients stay finite.

use eventprop_exact::{loss, ForwardStats, Lif, Network, SolverConfig, Spike};
use ndarray::{array, Array2};

fn input() -> Vec<Spike> {
    [(1e-3, 0), (2e-3, 1), (4e-3, 2), (6e-3, 0), (9e-3, 1)]
        .iter()
        .map(|&(time, neuron)| Spike { time, neuron })
        .collect()
}

fn ff() -> Network {
    let w0 = array![
        [9.0, 6.0, 2.0],
        [3.0, 8.0, 7.0],
        [6.0, -2.0, 9.0],
        [5.0, 5.0, 5.0]
    ];
    let w1 = array![[6.0, 5.0, 4.0, 3.0], [2.0, 6.0, 3.0, 6.0]];
    Network::new(vec![w0, w1], vec![Lif::default(); 2]).unwrap()
}

const CFG: SolverConfig = SolverConfig {
    max_spikes_per_neuron: 1000,
    grazing_floor: 1e-9,
    parameter_gradients: true,
    first_output_spike_only: false,
};

#[test]
fn zero_recurrent_weights_match_the_feed_forward_network() {
    let plain = ff();
    let rec = plain
        .clone()
        .with_recurrent(0, Array2::zeros((4, 4)))
        .unwrap();
    let (a, b) = (
        plain.forward(&input(), 0.05, &CFG).unwrap(),
        rec.forward(&input(), 0.05, &CFG).unwrap(),
    );
    assert_eq!(a.spike_counts(), b.spike_counts());
    assert!(a.spike_counts()[1] > 0 && a.spike_counts()[2] > 0);
    // The recurrent path predicts crossings over [t, t_max] instead of up to the next
    // arrival, so the Newton iterations differ: equal to rounding, not bit for bit.
    for k in 1..3 {
        for (x, y) in a.spikes(k).iter().zip(b.spikes(k)) {
            assert_eq!(x.neuron, y.neuron);
            assert!((x.time - y.time).abs() <= 1e-15, "{} vs {}", x.time, y.time);
        }
    }
    let la = loss::spike_time_sum(a.output());
    let lb = loss::spike_time_sum(b.output());
    let ga = a.backward(&plain, &la.dl_dt, &CFG).unwrap();
    let gb = b.backward(&rec, &lb.dl_dt, &CFG).unwrap();
    for (x, y) in ga.weights.iter().zip(&gb.weights) {
        assert!((x - y)
            .iter()
            .all(|d| d.abs() <= 1e-9 * (1.0 + x.iter().fold(0.0_f64, |m, v| m.max(v.abs())))));
    }
    assert!(gb.recurrent[0].as_ref().unwrap().iter().any(|v| *v != 0.0));
    assert_eq!(b.stats(), ForwardStats::default());
}

#[test]
fn zero_delays_match_no_delays_exactly() {
    let plain = ff();
    let delayed = plain
        .clone()
        .with_delays(0, Array2::zeros((4, 3)))
        .unwrap()
        .with_delays(1, Array2::zeros((2, 4)))
        .unwrap();
    let a = plain.forward(&input(), 0.05, &CFG).unwrap();
    let b = delayed.forward(&input(), 0.05, &CFG).unwrap();
    assert_eq!(a, b);
    let l = loss::spike_time_sum(a.output());
    let ga = a.backward(&plain, &l.dl_dt, &CFG).unwrap();
    let gb = b.backward(&delayed, &l.dl_dt, &CFG).unwrap();
    assert_eq!(ga.weights, gb.weights);
    assert_eq!(ga.params, gb.params);
    assert_eq!(ga.input_times, gb.input_times);
    // At zero delay, dL/dd[n, j] summed over j's spikes equals the part of dL/dt_j that
    // flows through n: summed over n and j it is the total of the input-time gradients.
    let total_d: f64 = gb.delays[0].as_ref().unwrap().sum();
    let total_t: f64 = gb.input_times.iter().sum();
    assert!((total_d - total_t).abs() <= 1e-12 * total_t.abs().max(1.0));
}

#[test]
fn simultaneous_spikes_of_a_recurrent_layer_are_counted() {
    // Two identical neurons with identical inputs cross at the same time.
    let w0 = array![[12.0], [12.0]];
    let net = Network::new(vec![w0], vec![Lif::default()])
        .unwrap()
        .with_recurrent(0, array![[0.0, 0.5], [0.5, 0.0]])
        .unwrap();
    let t = net
        .forward(
            &[Spike {
                time: 1e-3,
                neuron: 0,
            }],
            0.05,
            &CFG,
        )
        .unwrap();
    let s = t.output();
    assert!(s.len() >= 2 && s[0].time == s[1].time, "{s:?}");
    assert!(t.stats().simultaneous_spikes >= 1);
    let l = loss::spike_time_sum(s);
    let g = t.backward(&net, &l.dl_dt, &CFG).unwrap();
    assert!(g.weights[0].iter().all(|v| v.is_finite()));
    assert!(g.recurrent[0]
        .as_ref()
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn a_spike_exactly_at_an_arrival_is_counted_and_taken_first() {
    // Input 1 is strongly inhibitory; its spike is placed at the crossing time of the
    // neuron driven by input 0. The crossing is searched on [last event, arrival], so its
    // last bits depend on the bracket: the first arrival, stepping up by one ulp from the
    // crossing, that still sees the crossing before its jump.
    let net = Network::new(vec![array![[12.0, -50.0]]], vec![Lif::default()]).unwrap();
    let drive = Spike {
        time: 1e-3,
        neuron: 0,
    };
    let t_k = net.forward(&[drive], 0.05, &CFG).unwrap().output()[0].time;
    let mut candidate = t_k;
    let mut hit = None;
    for _ in 0..4 {
        let both = [
            drive,
            Spike {
                time: candidate,
                neuron: 1,
            },
        ];
        let t = net.forward(&both, 0.05, &CFG).unwrap();
        if !t.output().is_empty() {
            hit = Some(t);
            break;
        }
        candidate = candidate.next_up();
    }
    let t = hit.expect("the crossing is taken before the jump within 4 ulps");
    assert_eq!(
        t.output().len(),
        1,
        "the inhibition after the spike silences it"
    );
    assert!(candidate - t.output()[0].time <= 4.0 * f64::EPSILON * candidate);
    assert_eq!(t.stats().spikes_at_arrivals, 1);
    let l = loss::spike_time_sum(t.output());
    let g = t.backward(&net, &l.dl_dt, &CFG).unwrap();
    assert!(g.weights[0].iter().all(|v| v.is_finite()));
}
