//! The SHD/SSC HDF5 reader on the small files of `tests/data/shd`, written by h5py with
//! `make_fixtures.py` there (the literals below are the ones that script writes).

use std::path::{Path, PathBuf};

use eventprop_data::events::read_event_file;
use eventprop_data::shd::read_shd;
use eventprop_data::Error;
use eventprop_data::Spike;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/shd")
        .join(name)
}

fn spikes(times: &[f64], units: &[u32]) -> Vec<Spike> {
    times
        .iter()
        .zip(units)
        .map(|(&time, &neuron)| Spike { time, neuron })
        .collect()
}

/// `TIMES`, `UNITS` and `LABELS` of make_fixtures.py (all times are exact in float32).
fn expected(last_unit_of_first: u32) -> (Vec<Vec<Spike>>, Vec<usize>) {
    (
        vec![
            spikes(&[0.5, 0.25, 0.75], &[3, 0, last_unit_of_first]),
            Vec::new(),
            spikes(&[0.125, 1.0], &[7, 7]),
        ],
        vec![0, 19, 5],
    )
}

#[test]
fn reads_float32_times_and_uint16_units() {
    let set = read_shd(&fixture("f32_u16.h5"), 700, 20).unwrap();
    let (samples, labels) = expected(699);
    assert_eq!(set.samples, samples);
    assert_eq!(set.labels, labels);
}

#[test]
fn reads_big_endian_float64_times_uint32_units_int64_labels() {
    let set = read_shd(&fixture("f64be_u32.h5"), 700, 20).unwrap();
    let (samples, labels) = expected(699);
    assert_eq!(set.samples, samples);
    assert_eq!(set.labels, labels);
}

#[test]
fn reads_gzip_chunked_datasets() {
    let set = read_shd(&fixture("gzip_f64_u8.h5"), 256, 20).unwrap();
    let (samples, labels) = expected(255);
    assert_eq!(set.samples, samples);
    assert_eq!(set.labels, labels);
}

#[test]
fn event_files_dispatch_on_the_extension() {
    let set = read_event_file(&fixture("f32_u16.h5"), None, None).unwrap();
    assert_eq!(set.len(), 3);
    let err = read_event_file(Path::new("data.txt"), None, None).unwrap_err();
    assert!(err.to_string().contains("unknown event file type"), "{err}");
}

/// Each bad file: the one-line error names the file and the field.
#[test]
fn bad_files_give_one_line_errors_naming_file_and_field() {
    let cases = [
        ("missing_labels.h5", "`labels`"),
        ("missing_units.h5", "`spikes/units`"),
        ("sample_count_mismatch.h5", "`spikes/units`: 2 samples"),
        (
            "event_count_mismatch.h5",
            "sample 0 has 2 units for 3 spike times",
        ),
        ("nan_time.h5", "`spikes/times`: sample 0, spike 1 is at NaN"),
        (
            "negative_time.h5",
            "`spikes/times`: sample 0, spike 1 is at -0.25",
        ),
        (
            "label_out_of_range.h5",
            "`labels`: sample 1 has label 20, expected 0..20",
        ),
        (
            "unit_out_of_range.h5",
            "sample 0, spike 2 has unit 700, expected 0..700",
        ),
        ("signed_negative_unit.h5", "sample 0, spike 1 has unit -1"),
        ("times_not_ragged.h5", "expected variable-length sequences"),
        ("float_units.h5", "expected integers"),
        ("not_hdf5.h5", "not a readable HDF5 file"),
    ];
    for (name, want) in cases {
        let err = read_shd(&fixture(name), 700, 20).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(name), "{name}: {msg}");
        assert!(msg.contains(want), "{name}: expected `{want}` in: {msg}");
        assert!(!msg.contains('\n'), "{name}: {msg}");
    }
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let err = read_shd(&fixture("no_such_file.h5"), 700, 20).unwrap_err();
    assert!(err.to_string().contains("no_such_file.h5"), "{err}");
}
