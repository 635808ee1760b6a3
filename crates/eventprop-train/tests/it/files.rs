//! Data files: round trips of the feature (`.npz`, CSV) and event (`.npz`) readers, one
//! test per bad-file error message, the `[data]` config keys, and training on files
//! written from the generator equals training on the generator.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use eventprop_data::Error as DataError;
use eventprop_train::files::{read_events, read_features, read_yinyang};
use eventprop_train::{yinyang, Error, TrainConfig, Trainer};
use ndarray::{arr1, arr2, Array1, Array2};
use ndarray_npy::{NpzWriter, WritableElement};

/// One array to write into an `.npz`.
enum A {
    F64(Array2<f64>),
    F32(Array2<f32>),
    V64(Array1<f64>),
    I64(Array1<i64>),
    U8(Array1<u8>),
    I32(Array1<i32>),
}

fn add<T: WritableElement, D: ndarray::Dimension>(
    w: &mut NpzWriter<File>,
    name: &str,
    a: &ndarray::Array<T, D>,
) {
    w.add_array(name, a).unwrap();
}

fn npz(dir: &Path, file: &str, arrays: &[(&str, A)]) -> PathBuf {
    let path = dir.join(file);
    let mut w = NpzWriter::new(File::create(&path).unwrap());
    for (name, a) in arrays {
        match a {
            A::F64(a) => add(&mut w, name, a),
            A::F32(a) => add(&mut w, name, a),
            A::V64(a) => add(&mut w, name, a),
            A::I64(a) => add(&mut w, name, a),
            A::U8(a) => add(&mut w, name, a),
            A::I32(a) => add(&mut w, name, a),
        }
    }
    w.finish().unwrap();
    path
}

fn text(dir: &Path, file: &str, content: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, content).unwrap();
    path
}

/// Asserts a one-line `Error::Format` naming `path` whose message contains every part.
fn bad<T: std::fmt::Debug>(r: Result<T, DataError>, path: &Path, parts: &[&str]) {
    let e = r.expect_err("expected an error");
    assert!(matches!(e, DataError::Format { .. }), "{e:?}");
    let msg = e.to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    for p in parts {
        assert!(msg.contains(p), "`{p}` not in: {msg}");
    }
}

fn xy() -> (Array2<f64>, Array1<i64>) {
    (
        arr2(&[
            [0.1, 0.2, 0.9, 0.8],
            [0.5, 0.25, 0.5, 0.75],
            [0.0, 1.0, 1.0, 0.0],
        ]),
        arr1(&[0, 2, 1]),
    )
}

#[test]
fn npz_features_round_trip_in_every_dtype() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = xy();
    let p = npz(
        d.path(),
        "a.npz",
        &[("x", A::F64(x.clone())), ("y", A::I64(y.clone()))],
    );
    let f = read_features(&p, 3).unwrap();
    assert_eq!(f.values, x);
    assert_eq!(f.labels, vec![0, 2, 1]);
    // float32 features (exact in f64), uint8 / int32 / whole-float labels.
    let x32 = x.mapv(|v| v as f32);
    for (i, labels) in [
        A::U8(y.mapv(|v| v as u8)),
        A::I32(y.mapv(|v| v as i32)),
        A::V64(y.mapv(|v| v as f64)),
    ]
    .into_iter()
    .enumerate()
    {
        let p = npz(
            d.path(),
            &format!("b{i}.npz"),
            &[("x", A::F32(x32.clone())), ("y", labels)],
        );
        let f = read_features(&p, 3).unwrap();
        assert_eq!(f.values, x32.mapv(f64::from));
        assert_eq!(f.labels, vec![0, 2, 1]);
    }
    let ds = read_yinyang(&p).unwrap();
    assert_eq!(ds.features[1], [0.5, 0.25, 0.5, 0.75]);
    assert_eq!(ds.labels, vec![0, 2, 1]);
}

#[test]
fn csv_features_round_trip_with_header_comments_and_blank_lines() {
    let d = tempfile::tempdir().unwrap();
    let p = text(
        d.path(),
        "a.csv",
        "# Yin-Yang\nx,y,1-x,1-y,label\n0.1,0.2,0.9,0.8,0\n\n 0.5 , 0.25,0.5,0.75, 2 # a dot\n0,1,1,0,1.0\n",
    );
    let f = read_features(&p, 3).unwrap();
    assert_eq!(f.values, xy().0);
    assert_eq!(f.labels, vec![0, 2, 1]);
    let p = text(d.path(), "b.csv", "1.5,-2,0\n3e-1,4,1\n");
    let f = read_features(&p, 2).unwrap();
    assert_eq!(f.values, arr2(&[[1.5, -2.0], [0.3, 4.0]]));
    assert_eq!(f.labels, vec![0, 1]);
    assert_eq!(
        read_yinyang(&text(d.path(), "c.csv", "0.1,0.2,0.9,0.8,2\n"))
            .unwrap()
            .labels,
        vec![2]
    );
}

#[test]
fn npz_feature_errors_name_the_file_and_the_array() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let (x, y) = xy();
    let p = npz(dp, "no_y.npz", &[("x", A::F64(x.clone()))]);
    bad(
        read_features(&p, 3),
        &p,
        &["`y`", "missing array", "the file holds: x"],
    );
    let p = npz(dp, "no_x.npz", &[("y", A::I64(y.clone()))]);
    bad(read_features(&p, 3), &p, &["`x`", "missing array"]);
    let p = npz(
        dp,
        "short.npz",
        &[("x", A::F64(x.clone())), ("y", A::I64(arr1(&[0, 1])))],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`y`", "2 labels", "one per row of `x` (3)"],
    );
    let mut xn = x.clone();
    xn[[1, 2]] = f64::NAN;
    let p = npz(
        dp,
        "nan.npz",
        &[("x", A::F64(xn)), ("y", A::I64(y.clone()))],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`x`", "sample 1, feature 2 is NaN"],
    );
    let mut xi = x.clone();
    xi[[2, 0]] = f64::INFINITY;
    let p = npz(
        dp,
        "inf.npz",
        &[("x", A::F64(xi)), ("y", A::I64(y.clone()))],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`x`", "sample 2, feature 0 is inf"],
    );
    let p = npz(
        dp,
        "neg.npz",
        &[("x", A::F64(x.clone())), ("y", A::I64(arr1(&[0, -1, 1])))],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`y`", "sample 1 has label -1, expected 0..3"],
    );
    let p = npz(
        dp,
        "big.npz",
        &[("x", A::F64(x.clone())), ("y", A::I64(arr1(&[0, 1, 3])))],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`y`", "sample 2 has label 3, expected 0..3"],
    );
    let p = npz(
        dp,
        "frac.npz",
        &[
            ("x", A::F64(x.clone())),
            ("y", A::V64(arr1(&[0.0, 1.5, 1.0]))),
        ],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`y`", "entry 1 is 1.5, expected an integer"],
    );
    let p = npz(
        dp,
        "x1d.npz",
        &[
            ("x", A::V64(arr1(&[0.1, 0.2, 0.3]))),
            ("y", A::I64(y.clone())),
        ],
    );
    bad(
        read_features(&p, 3),
        &p,
        &["`x`", "expected a 2-D array, got shape (3)"],
    );
    let p = npz(
        dp,
        "xint.npz",
        &[("x", A::I64(arr1(&[1]))), ("y", A::I64(arr1(&[0])))],
    );
    bad(read_features(&p, 3), &p, &["`x`", "expected a 2-D array"]);
    let p = npz(
        dp,
        "empty_set.npz",
        &[
            ("x", A::F64(Array2::zeros((0, 4)))),
            ("y", A::I64(arr1(&[]))),
        ],
    );
    bad(read_features(&p, 3), &p, &["`y`", "no samples"]);
    let p = text(dp, "empty.npz", "");
    bad(read_features(&p, 3), &p, &["empty file (0 bytes)"]);
    let p = text(dp, "text.npz", "not a zip archive at all");
    bad(read_features(&p, 3), &p, &["not a .npz (zip) archive"]);
    let p = text(dp, "a.h5", "x");
    bad(
        read_features(&p, 3),
        &p,
        &["unknown data file type", "`.npz`", "`.csv`"],
    );
    // Yin-Yang: four features in [0, 1].
    let p = npz(
        dp,
        "f5.npz",
        &[
            ("x", A::F64(Array2::zeros((3, 5)))),
            ("y", A::I64(y.clone())),
        ],
    );
    bad(
        read_yinyang(&p),
        &p,
        &["`x`", "5 features per sample, Yin-Yang expects 4"],
    );
    let mut xo = x.clone();
    xo[[0, 3]] = 1.5;
    let p = npz(dp, "range.npz", &[("x", A::F64(xo)), ("y", A::I64(y))]);
    bad(
        read_yinyang(&p),
        &p,
        &["`x`", "sample 0, feature 3 is 1.5", "[0, 1]"],
    );
}

/// A stored zip entry `x.npy` whose header declares a float64 array of `shape` and holds
/// `data_bytes` bytes of data.
fn forged_npz(path: &Path, shape: &str, data_bytes: usize) {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(&header);
    npy.extend(std::iter::repeat_n(0u8, data_bytes));
    let mut w = zip::ZipWriter::new(File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("x.npy", opts).unwrap();
    w.write_all(&npy).unwrap();
    w.finish().unwrap();
}

#[test]
fn declared_sizes_are_checked_before_allocating() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.npz");
    forged_npz(&p, "(100000, 100000)", 16);
    bad(
        read_features(&p, 3),
        &p,
        &[
            "`x`",
            "truncated or corrupt .npy",
            "shape (100000, 100000)",
            "80000000000 bytes",
            "16 bytes",
        ],
    );
    let p = d.path().join("overflow.npz");
    forged_npz(&p, "(4294967296, 4294967296, 4294967296)", 8);
    bad(
        read_features(&p, 3),
        &p,
        &["`x`", "more bytes than fit in memory"],
    );
}

#[test]
fn csv_errors_name_the_file_and_the_line() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "ragged.csv",
            "0.1,0.2,0\n0.3,0\n",
            &["line 2: 2 columns, expected 3 (as on line 1)"],
        ),
        (
            "word.csv",
            "a,b,label\n0.1,0.2,0\n0.3,abc,1\n",
            &["line 3, column 2: `abc` is not a number"],
        ),
        (
            "nan.csv",
            "0.1,NaN,0\n",
            &["line 1, column 2: feature is NaN"],
        ),
        (
            "inf.csv",
            "# c\n0.1,0.2,0\n-inf,0.2,0\n",
            &["line 3, column 1: feature is -inf"],
        ),
        (
            "neg.csv",
            "0.1,0.2,-1\n",
            &["line 1, column 3 (label): -1, expected 0..3"],
        ),
        (
            "big.csv",
            "0.1,0.2,3\n",
            &["line 1, column 3 (label): 3, expected 0..3"],
        ),
        (
            "frac.csv",
            "0.1,0.2,0.5\n",
            &["line 1, column 3 (label): `0.5` is not an integer"],
        ),
        (
            "one.csv",
            "0.1\n0.2\n",
            &["line 1: 1 column, expected feature columns then a label"],
        ),
        (
            "header.csv",
            "a,b,c,label\n0.1,0.2,0\n",
            &["line 2: 3 columns, but the header (line 1) names 4"],
        ),
        (
            "only_header.csv",
            "# nothing\nx,y,label\n\n",
            &["no samples"],
        ),
        ("empty.csv", "", &["empty file (0 bytes)"]),
    ];
    for (file, content, parts) in cases {
        let p = text(dp, file, content);
        bad(read_features(&p, 3), &p, parts);
    }
    let p = text(dp, "f2.csv", "0.1,0.2,0\n");
    bad(
        read_yinyang(&p),
        &p,
        &["columns: 2 features per sample, Yin-Yang expects 4"],
    );
    let p = dp.join("latin1.csv");
    std::fs::write(&p, b"0.1,0.2,0\n\xff,0.2,0\n").unwrap();
    bad(read_features(&p, 3), &p, &["line 2: not UTF-8 text"]);
}

fn events(dir: &Path, file: &str, arrays: Vec<(&str, A)>) -> PathBuf {
    npz(dir, file, &arrays)
}

/// Named arrays of an `.npz`.
type Arrays = Vec<(&'static str, A)>;

fn base_events() -> Vec<(&'static str, A)> {
    vec![
        ("times", A::V64(arr1(&[0.5e-3, 0.1e-3, 2e-3, 1e-3, 0.0]))),
        ("units", A::I32(arr1(&[3, 0, 1, 1, 6]))),
        ("labels", A::I64(arr1(&[1, 0, 2]))),
    ]
}

fn with(mut v: Vec<(&'static str, A)>, name: &'static str, a: A) -> Vec<(&'static str, A)> {
    v.retain(|(n, _)| *n != name);
    v.push((name, a));
    v
}

#[test]
fn events_round_trip_with_offsets_or_sample_index() {
    let d = tempfile::tempdir().unwrap();
    let p = events(
        d.path(),
        "off.npz",
        with(base_events(), "offsets", A::I64(arr1(&[0, 2, 2, 5]))),
    );
    let s = read_events(&p, 7, 3).unwrap();
    assert_eq!(s.labels, vec![1, 0, 2]);
    let t = |set: &eventprop_train::data::SpikeSet, i: usize| -> Vec<(f64, u32)> {
        set.samples[i].iter().map(|s| (s.time, s.neuron)).collect()
    };
    assert_eq!(t(&s, 0), vec![(0.5e-3, 3), (0.1e-3, 0)]);
    assert!(s.samples[1].is_empty());
    assert_eq!(t(&s, 2), vec![(2e-3, 1), (1e-3, 1), (0.0, 6)]);
    // The same set as a per-event sample index, events interleaved; uint8 units.
    let p = events(
        d.path(),
        "idx.npz",
        vec![
            ("times", A::V64(arr1(&[2e-3, 0.5e-3, 1e-3, 0.1e-3, 0.0]))),
            ("units", A::U8(arr1(&[1, 3, 1, 0, 6]))),
            ("labels", A::I64(arr1(&[1, 0, 2]))),
            ("sample", A::I64(arr1(&[2, 0, 2, 0, 2]))),
        ],
    );
    assert_eq!(read_events(&p, 7, 3).unwrap(), s);
    // a bound on the declared events: 5 fit, 4 do not (refused before reading the arrays)
    use eventprop_train::files::read_events_bounded;
    assert_eq!(read_events_bounded(&p, 7, 3, Some(5)).unwrap(), s);
    let e = read_events_bounded(&p, 7, 3, Some(4))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("memory: expected at most 4 events in ")
            && e.ends_with("got 5 events declared by `times`"),
        "{e}"
    );
}

#[test]
fn event_errors_name_the_file_and_the_array() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path();
    let off = |v: &[i64]| A::I64(arr1(v));
    let good = || with(base_events(), "offsets", off(&[0, 2, 2, 5]));
    let times = |v: &[f64]| A::V64(arr1(v));
    let cases: Vec<(&str, Arrays, usize, Vec<&str>)> = vec![
        (
            "no_labels.npz",
            good().into_iter().filter(|(n, _)| *n != "labels").collect(),
            7,
            vec![
                "`labels`",
                "missing array",
                "the file holds: offsets, times, units",
            ],
        ),
        (
            "no_times.npz",
            good().into_iter().filter(|(n, _)| *n != "times").collect(),
            7,
            vec!["`times`", "missing array"],
        ),
        (
            "units_len.npz",
            with(good(), "units", A::I32(arr1(&[0, 1]))),
            7,
            vec!["`units`: 2 entries, expected one per event (5"],
        ),
        (
            "nan.npz",
            with(good(), "times", times(&[0.0, f64::NAN, 0.0, 0.0, 0.0])),
            7,
            vec!["`times`: event 1 is NaN (not finite"],
        ),
        (
            "inf.npz",
            with(good(), "times", times(&[0.0, 0.0, 0.0, f64::INFINITY, 0.0])),
            7,
            vec!["`times`: event 3 is inf"],
        ),
        (
            "negative.npz",
            with(good(), "times", times(&[0.0, 0.0, -1e-3, 0.0, 0.0])),
            7,
            vec!["`times`: event 2 is -0.001 (negative"],
        ),
        (
            "unit_big.npz",
            good(),
            6,
            vec!["`units`: event 4 has unit 6, expected 0..6"],
        ),
        (
            "unit_neg.npz",
            with(good(), "units", A::I32(arr1(&[0, -2, 0, 0, 0]))),
            7,
            vec!["`units`: event 1 has unit -2"],
        ),
        (
            "label.npz",
            with(good(), "labels", A::I64(arr1(&[1, 3, 0]))),
            7,
            vec!["`labels`: sample 1 has label 3, expected 0..3"],
        ),
        (
            "label_neg.npz",
            with(good(), "labels", A::I64(arr1(&[-1, 0, 0]))),
            7,
            vec!["`labels`: sample 0 has label -1"],
        ),
        (
            "no_samples.npz",
            with(
                with(good(), "labels", A::I64(arr1(&[]))),
                "offsets",
                off(&[0]),
            ),
            7,
            vec!["`labels`: no samples"],
        ),
        (
            "both.npz",
            with(good(), "sample", off(&[0, 0, 0, 0, 0])),
            7,
            vec!["both `offsets` and `sample`"],
        ),
        (
            "neither.npz",
            base_events(),
            7,
            vec!["neither `offsets`", "nor `sample`"],
        ),
        (
            "off_len.npz",
            with(good(), "offsets", off(&[0, 2, 5])),
            7,
            vec!["`offsets`: 3 entries, expected samples + 1 = 4"],
        ),
        (
            "off_start.npz",
            with(good(), "offsets", off(&[1, 2, 2, 5])),
            7,
            vec!["`offsets`: starts at 1, expected 0"],
        ),
        (
            "off_order.npz",
            with(good(), "offsets", off(&[0, 3, 2, 5])),
            7,
            vec!["`offsets`: not non-decreasing: entry 2 is 2 after 3"],
        ),
        (
            "off_end.npz",
            with(good(), "offsets", off(&[0, 2, 2, 4])),
            7,
            vec!["`offsets`: ends at 4, expected the event count 5"],
        ),
        (
            "off_float.npz",
            with(good(), "offsets", A::V64(arr1(&[0.0, 2.0, 2.0, 5.0]))),
            7,
            vec!["`offsets`: expected an integer array, got dtype"],
        ),
        (
            "idx_len.npz",
            with(base_events(), "sample", off(&[0, 1])),
            7,
            vec!["`sample`: 2 entries, expected one per event (5"],
        ),
        (
            "idx_range.npz",
            with(base_events(), "sample", off(&[0, 1, 3, 0, 0])),
            7,
            vec!["`sample`: event 2 belongs to sample 3, expected 0..3"],
        ),
        (
            "times_2d.npz",
            with(good(), "times", A::F64(Array2::zeros((5, 1)))),
            7,
            vec!["`times`: expected a 1-D array, got shape (5, 1)"],
        ),
    ];
    for (file, arrays, channels, parts) in cases {
        let p = events(dp, file, arrays);
        bad(read_events(&p, channels, 3), &p, &parts);
    }
    let p = text(dp, "ev.csv", "0,1\n");
    bad(read_events(&p, 2, 2), &p, &["unknown event file type"]);
    let p = text(dp, "empty_ev.npz", "");
    bad(read_events(&p, 2, 2), &p, &["empty file (0 bytes)"]);
}

/// Writes a Yin-Yang set in the published format: `x` (S, 4) float64, `y` (S,) int64.
fn write_yinyang(path: &Path, d: &yinyang::Dataset) {
    let x = Array2::from_shape_fn((d.len(), 4), |(i, j)| d.features[i][j]);
    let y = Array1::from_iter(d.labels.iter().map(|&l| l as i64));
    let mut w = NpzWriter::new(File::create(path).unwrap());
    w.add_array("x", &x).unwrap();
    w.add_array("y", &y).unwrap();
    w.finish().unwrap();
}

fn small() -> TrainConfig {
    TrainConfig {
        train_size: 120,
        val_size: 40,
        test_size: 50,
        batch_size: 20,
        epochs: 1,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![20],
            ..TrainConfig::default().network.clone()
        },
        ..TrainConfig::default()
    }
}

#[test]
fn config_data_keys_layer_serialise_and_hold_out_validation() {
    let d = tempfile::tempdir().unwrap();
    let cfg = small();
    let s = cfg.splits().unwrap();
    let train = d.path().join("train.npz");
    write_yinyang(&train, &s.train);
    let table: toml::Table = format!("[data]\ntrain = {:?}\n", train.display().to_string())
        .parse()
        .unwrap();
    let c = TrainConfig::layered(&[("file", table)]).unwrap();
    assert_eq!(c.data.train.as_deref(), Some(train.as_path()));
    assert_eq!(c.data.validation, None);
    // Round trip through the serialised form (what run folders and checkpoints store).
    let text = toml::to_string(&c).unwrap();
    let back = TrainConfig::layered(&[("again", text.parse().unwrap())]).unwrap();
    assert_eq!(back, c);
    // Validation: the last val_size samples of the train file.
    let c = TrainConfig {
        val_size: 30,
        data: c.data.clone(),
        ..small()
    };
    let got = c.splits().unwrap();
    assert_eq!(got.train.features[..], s.train.features[..90]);
    assert_eq!(got.validation.features[..], s.train.features[90..]);
    assert_eq!(got.validation.labels[..], s.train.labels[90..]);
    assert!(got.test == s.test, "test: the generator's split");
    let e = TrainConfig {
        val_size: 120,
        ..c.clone()
    }
    .splits()
    .unwrap_err();
    assert!(e.to_string().contains("val_size: expected < 120"), "{e}");
    let e =
        TrainConfig::layered(&[("flags", "data.trian = \"a.npz\"".parse().unwrap())]).unwrap_err();
    assert!(e.to_string().contains("unknown key `data.trian`"), "{e}");
    // A missing file is an I/O error naming it.
    let missing = d.path().join("missing.npz");
    let c = TrainConfig {
        data: eventprop_train::config::DataFiles {
            test: Some(missing.clone()),
            ..Default::default()
        },
        ..small()
    };
    let e = Trainer::new(c).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("missing.npz"),
        "{e}"
    );
}

#[test]
fn training_on_files_written_from_the_generator_equals_training_on_the_generator() {
    let d = tempfile::tempdir().unwrap();
    let cfg = small();
    let s = cfg.splits().unwrap();
    let paths: Vec<PathBuf> = ["train.npz", "val.npz", "test.npz"]
        .iter()
        .map(|f| d.path().join(f))
        .collect();
    write_yinyang(&paths[0], &s.train);
    write_yinyang(&paths[1], &s.validation);
    write_yinyang(&paths[2], &s.test);
    let mut files = cfg.clone();
    files.data.train = Some(paths[0].clone());
    files.data.validation = Some(paths[1].clone());
    files.data.test = Some(paths[2].clone());
    // Sizes come from the files.
    files.train_size = 7;
    files.test_size = 3;
    let mut a = Trainer::new(cfg).unwrap();
    let mut b = Trainer::new(files).unwrap();
    assert_eq!(a.data().train, b.data().train);
    let ma = a.run_epoch(&mut |_| {}).unwrap();
    let mb = b.run_epoch(&mut |_| {}).unwrap();
    assert_eq!(a.weights(), b.weights());
    assert_eq!(
        (ma.train_loss, ma.val_acc, ma.test_acc),
        (mb.train_loss, mb.val_acc, mb.test_acc)
    );
    // Resume: the paths are in the checkpoint's config.
    let ck = d.path().join("ck.safetensors");
    b.save(&ck).unwrap();
    let r = Trainer::load(&ck).unwrap();
    assert_eq!(r.config().data, b.config().data);
    assert_eq!(r.data().test, b.data().test);
    // Evaluating the file-backed checkpoint needs no data files.
    std::fs::remove_file(&paths[0]).unwrap();
    assert!(Trainer::load(&ck).is_err());
    let e = Trainer::load_for_eval(&ck).unwrap();
    assert_eq!(
        e.evaluate(&b.data().test).unwrap().accuracy,
        mb.test_acc.unwrap()
    );
}

/// A resumed run reads the files it started with: the paths are stored absolute, each
/// file's fingerprint is in the config, and a changed file is refused (naming the key, the
/// file and both fingerprints) unless the change is allowed, which records the new one.
#[test]
fn resume_refuses_changed_data_unless_allowed() {
    use eventprop_train::trainer::DataChange;
    let d = tempfile::tempdir().unwrap();
    let mut cfg = TrainConfig {
        train_size: 40,
        val_size: 10,
        test_size: 10,
        ..TrainConfig::default()
    };
    let s = cfg.splits().unwrap();
    let train = d.path().join("train.npz");
    write_yinyang(&train, &s.train);
    // a path through `..`: stored in canonical form
    std::fs::create_dir(d.path().join("sub")).unwrap();
    cfg.data.train = Some(d.path().join("sub/../train.npz"));
    let b = Trainer::new(cfg).unwrap();
    let stored = b.config().data.train.clone().unwrap();
    assert_eq!(stored, std::fs::canonicalize(&train).unwrap());
    let fp = b.config().data.fingerprints["train"].clone();
    assert!(fp.contains(" B, h64 "), "{fp}");
    let ck = d.path().join("ck.safetensors");
    b.save(&ck).unwrap();
    Trainer::load(&ck).unwrap();
    // the same file regenerated shorter: refused
    let shorter = yinyang::Dataset {
        features: s.train.features[..30].to_vec(),
        labels: s.train.labels[..30].to_vec(),
    };
    write_yinyang(&train, &shorter);
    let e = Trainer::load(&ck).unwrap_err().to_string();
    assert!(
        e.starts_with("data.train: expected the data the run started with (")
            && e.contains(&fp)
            && e.contains("pass --allow-data-change"),
        "{e}"
    );
    let r = Trainer::load_with_data(&ck, DataChange::Allow).unwrap();
    // 30 samples, 10 of them held out for validation
    assert_eq!(r.data().train.len(), 20);
    assert_ne!(r.config().data.fingerprints["train"], fp);
}
