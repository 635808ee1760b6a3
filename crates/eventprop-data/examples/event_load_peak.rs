//! Measures the event `.npz` loader's peak memory per event (docs/measurements.md):
//! `event_load_peak write FILE EVENTS [sample]` writes a file of `EVENTS` events in 1000
//! samples (`offsets` layout, or a `sample` index per event), `event_load_peak read FILE`
//! reads it and prints the process's peak resident memory (Linux `VmHWM`) before and after
//! and the bytes per event. Run each in its own process.

use std::path::Path;

use eventprop_data::files::{read_events, write_events};
use eventprop_data::{Spike, SpikeSet};

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = Path::new(&args[2]);
    match args[1].as_str() {
        "write" => {
            let n: usize = args[3].parse().expect("EVENTS");
            let per = n / 1000;
            let set = SpikeSet {
                samples: (0..1000)
                    .map(|b| {
                        (0..per)
                            .map(|k| Spike {
                                time: k as f64 * 1e-6,
                                neuron: ((k * 7 + b) % 700) as u32,
                            })
                            .collect()
                    })
                    .collect(),
                labels: (0..1000).map(|b| b % 10).collect(),
            };
            write_events(path, &set).expect("written");
        }
        _ => {
            let before = peak_kib();
            let set = read_events(path, 700, 10).expect("read");
            let after = peak_kib();
            let events: usize = set.samples.iter().map(Vec::len).sum();
            println!(
                "events {events}: peak {before} KiB before, {after} KiB after reading: {:.1} B per event",
                (after - before) as f64 * 1024.0 / events as f64
            );
        }
    }
}
