//! Fuzzer of the NIR reader and import ([`Graph::read`], [`network_from_graph`]): graphs of
//! small networks written by [`Graph::write`] (chains of 1 and 2 hidden layers, integrator
//! and spiking outputs, a recurrent cycle and per-neuron parameters), with byte-level edits, a fixed proptest seed
//! and case count. Every input gives `Ok` or a one-line `Err` naming the file or node,
//! never a panic, and the reader holds a bounded amount of memory (a file can declare
//! datasets far larger than itself).

use std::path::Path;

use eventprop_core::model::Lif;
use eventprop_core::spec::{Init, Learn, NetworkSpec, Readout};
use eventprop_nir::{network_from_graph, network_graph, Graph};
use eventprop_testkit::{fuzz_loader, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Cases per run (the whole fuzzer takes a few seconds).
const CASES: u32 = 2000;

fn lif() -> Lif {
    Lif {
        leak: 0.0,
        reset: 0.0,
        threshold: 1.0,
        tau_syn: 5e-3,
        tau_mem: 20e-3,
    }
}

/// The seed files: a 5-8-3 network with an integrator readout, a 4-6-5-2 one with a
/// spiking output, and a 3-4-2 one with a recurrent hidden layer (a cycle in the graph) and
/// per-neuron time constants and thresholds.
fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let specs = [
        NetworkSpec {
            n_in: 5,
            hidden: vec![8],
            n_out: 3,
            lif: lif(),
            readout: Readout::Integrator {
                tau_syn: 5e-3,
                tau_mem: 20e-3,
            },
            learn: Learn::default(),
        },
        NetworkSpec {
            n_in: 4,
            hidden: vec![6, 5],
            n_out: 2,
            lif: lif(),
            readout: Readout::Spiking(lif()),
            learn: Learn::default(),
        },
        NetworkSpec {
            n_in: 3,
            hidden: vec![4],
            n_out: 2,
            lif: lif(),
            readout: Readout::Spiking(lif()),
            learn: Learn {
                recurrent: true,
                delays: false,
                taus: true,
                threshold: true,
            },
        },
    ];
    specs
        .iter()
        .enumerate()
        .map(|(k, spec)| {
            let inits = vec![
                Init {
                    mean: 0.0,
                    std: 1.0
                };
                spec.hidden.len() + 1
            ];
            let mut weights = spec.init_weights(&inits, k as u64).unwrap();
            // per-neuron values for the trained time constants and thresholds
            for t in weights.iter_mut().skip(spec.layout().n_weights()) {
                for (i, v) in t.iter_mut().enumerate() {
                    *v += 0.125 * i as f64;
                }
            }
            let g = network_graph(spec, &weights).unwrap();
            let path = dir.join(format!("seed{k}.nir"));
            g.write(&path).unwrap();
            let back = network_from_graph(&Graph::read(&path).unwrap(), Some(spec)).unwrap();
            assert_eq!(&back.spec, spec);
            // the weights bit for bit, the parameters the engines use bit for bit (the
            // `ln τ` tensors may differ by an ulp where `exp` maps both to the same τ)
            let n = spec.layout().n_weights();
            assert_eq!(back.tensors[..n], weights[..n], "the seed round-trips");
            assert_eq!(
                spec.neuron_params(&back.tensors),
                spec.neuron_params(&weights)
            );
            std::fs::read(&path).unwrap()
        })
        .collect()
}

#[test]
fn mutated_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let path = dir.path().join("case");
    fuzz_loader(
        "Graph::read / network_from_graph",
        &seeds,
        &path,
        CASES,
        |p| Graph::read(p).and_then(|g| network_from_graph(&g, None).map(drop)),
    );
}
