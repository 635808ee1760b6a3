//! Fuzzers of the CLI's `.npy`/`.npz` readers (`src/io.rs`, DESIGN.md "Fuzzing"), which
//! `eventprop neuron --input` and `eventprop exact --weights/--input` read.
//!
//! `io.rs` is compiled into this test (`#[path]`), so most cases run in-process: mutated
//! seeds from `tests/corpus/` (byte flips, truncation, header field edits of `descr`,
//! `fortran_order` and `shape`, zip size and method fields, appended garbage) must give
//! `Ok` or a one-line `Err`, never a panic, and never allocate much more than the file
//! allows. A smaller run goes through the binary: exit status 0 or 1 (never a panic's 101
//! or a signal), and one `error:` line on stderr on failure. The proptest seed is fixed.
//!
//! `cargo test -p eventprop-cli --test fuzz_readers -- --ignored regenerate_corpus`
//! rewrites the corpus.

#[allow(dead_code)]
#[path = "../src/io.rs"]
mod io;

use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use eventprop_testkit::edits::{apply, byte_edit, ByteEdit};
use eventprop_testkit::{no_panic, peak_bytes, runner, Counting, MIB};
use ndarray::{Array1, Array2, Array4, Ix1, Ix2};
use ndarray_npy::WriteNpyExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use zip::CompressionMethod;

// ---------------------------------------------------------------------------------------
// Allocation accounting and the proptest set-up (fixed seed) of `eventprop-testkit`.

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The readers accept a deflated entry of up to 1032 × its compressed size (io.rs).
const DEFLATE_MAX_RATIO: usize = 1032;
const CASES_NPY: u32 = 30_000;
const CASES_NPZ: u32 = 25_000;
const CASES_BINARY: u32 = 1500;

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    eventprop_testkit::corpus(&corpus_dir(""), kind)
}

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// The CLI prints `{err:#}`; it must be one non-empty line.
fn one_line(e: &anyhow::Error) -> Result<(), TestCaseError> {
    let s = format!("{e:#}");
    prop_assert!(
        !s.contains('\n') && !s.is_empty(),
        "error not one line: {s:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Seed inputs.

/// A `.npy` stream (format `version` 1, 2 or 3) with header dict `dict` and `data`.
fn npy_raw(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
    let prefix = if version == 1 { 10 } else { 12 };
    let mut dict = dict.to_string();
    while (prefix + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

fn npy_dict(descr: &str, fortran: &str, shape: &str) -> String {
    format!("{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': ({shape}), }}")
}

fn npy_bytes<A: WriteNpyExt>(a: &A) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_npy(&mut v).unwrap();
    v
}

/// A zip of `.npy` members.
fn zip_bytes(entries: &[(&str, Vec<u8>)], method: CompressionMethod) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        z.start_file(format!("{name}.npy"), options).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// A `(2, T, B, N)` neuron input with a few pulses.
fn neuron_input() -> Array4<f64> {
    Array4::from_shape_fn((2, 6, 2, 3), |(k, t, b, n)| {
        if k == 0 && (t * 7 + b * 3 + n * 5) % 4 == 0 {
            3.0
        } else {
            0.0
        }
    })
}

fn weights() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "w0",
            npy_bytes(&Array2::from_shape_fn((3, 2), |(i, j)| {
                4.0 + (i + 2 * j) as f64
            })),
        ),
        (
            "w1",
            npy_bytes(&Array2::from_shape_fn((2, 3), |(i, j)| {
                3.0 + (i * j) as f64
            })),
        ),
    ]
}

fn spikes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "times",
            npy_bytes(&Array1::from(vec![1e-3, 2e-3, 4e-3, 6e-3])),
        ),
        ("neurons", npy_bytes(&Array1::from(vec![0i64, 1, 0, 1]))),
    ]
}

/// The corpus: `(kind, name, bytes)`. `ok_*` files are read without error, `bad_*` are
/// rejected (npz: some array the commands read is rejected).
fn generated_corpus() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use CompressionMethod::{Deflated, Stored};
    let f8 = |n: usize| vec![0u8; 8 * n];
    let x = neuron_input();
    let valid = npy_bytes(&x);
    let nan = {
        let mut v = x.clone();
        v[[0, 1, 1, 1]] = f64::NAN;
        v[[0, 2, 0, 0]] = f64::INFINITY;
        npy_bytes(&v)
    };
    let npy: Vec<(&str, Vec<u8>)> = vec![
        ("ok_f64_4d.npy", valid.clone()),
        ("ok_f32_4d.npy", npy_bytes(&x.mapv(|v| v as f32))),
        (
            "ok_f64_1d.npy",
            npy_bytes(&Array1::from(vec![1e-5, 2e-5, 3e-5])),
        ),
        ("ok_nan_inf.npy", nan),
        (
            "ok_fortran_order.npy",
            npy_raw(1, &npy_dict("'<f8'", "True", "2, 3, 1, 1"), &f8(6)),
        ),
        (
            "ok_big_endian.npy",
            npy_raw(1, &npy_dict("'>f8'", "False", "3,"), &f8(3)),
        ),
        (
            "ok_version2.npy",
            npy_raw(2, &npy_dict("'<f8'", "False", "2, 1, 1, 1"), &f8(2)),
        ),
        (
            "ok_empty_array.npy",
            npy_raw(1, &npy_dict("'<f8'", "False", "2, 0, 1, 1"), &[]),
        ),
        ("bad_empty.npy", Vec::new()),
        (
            "bad_magic.npy",
            [b"\x93NUMPZ".as_slice(), &valid[6..]].concat(),
        ),
        ("bad_truncated_header.npy", valid[..40].to_vec()),
        ("bad_truncated_data.npy", valid[..valid.len() - 5].to_vec()),
        (
            "bad_garbage_appended.npy",
            [valid.as_slice(), b"garbage!"].concat(),
        ),
        (
            "bad_huge_shape.npy",
            npy_raw(
                1,
                &npy_dict("'<f8'", "False", "100000, 100000, 100000"),
                &f8(4),
            ),
        ),
        (
            "bad_overflow_shape.npy",
            npy_raw(
                1,
                &npy_dict(
                    "'<f8'",
                    "False",
                    "18446744073709551615, 18446744073709551615",
                ),
                &f8(4),
            ),
        ),
        (
            "bad_negative_shape.npy",
            npy_raw(1, &npy_dict("'<f8'", "False", "-1,"), &f8(1)),
        ),
        (
            "bad_int_dtype.npy",
            npy_raw(1, &npy_dict("'<i8'", "False", "2,"), &f8(2)),
        ),
        (
            "bad_structured_dtype.npy",
            npy_raw(1, &npy_dict("[('a', '<f8')]", "False", "2,"), &f8(2)),
        ),
        (
            "bad_unicode_dtype.npy",
            npy_raw(1, &npy_dict("'<U2'", "False", "2,"), &f8(2)),
        ),
        (
            "bad_fortran_order_value.npy",
            npy_raw(1, &npy_dict("'<f8'", "7", "2,"), &f8(2)),
        ),
        ("bad_header_len.npy", {
            let mut v = valid.clone();
            v[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
            v
        }),
        ("bad_header_syntax.npy", header_syntax_error()),
        ("bad_unicode_overflow.npy", unicode_overflow()),
        ("bad_huge_header_len_v2.npy", huge_header_len().to_vec()),
        ("bad_zero_times_huge_shape.npy", zero_times_huge_shape()),
        ("bad_version9.npy", {
            let mut v = valid.clone();
            v[6] = 9;
            v
        }),
    ];
    let w = weights();
    let s = spikes();
    let huge = npy_raw(
        1,
        &npy_dict("'<f8'", "False", "100000, 100000, 100000"),
        &f8(4),
    );
    let npz: Vec<(&str, Vec<u8>)> = vec![
        ("ok_weights.npz", zip_bytes(&w, Stored)),
        ("ok_weights_deflated.npz", zip_bytes(&w, Deflated)),
        ("ok_spikes.npz", zip_bytes(&s, Stored)),
        ("ok_spikes_deflated.npz", zip_bytes(&s, Deflated)),
        ("bad_empty.npz", Vec::new()),
        ("bad_not_zip.npz", valid.clone()),
        ("bad_truncated.npz", {
            let z = zip_bytes(&w, Stored);
            z[..z.len() - 30].to_vec()
        }),
        (
            "bad_huge_shape_weights.npz",
            zip_bytes(&[("w0", huge.clone())], Stored),
        ),
        (
            "bad_huge_shape_spikes_deflated.npz",
            zip_bytes(&[("times", huge), ("neurons", s[1].1.clone())], Deflated),
        ),
        (
            "bad_wrong_dtype_spikes.npz",
            zip_bytes(
                &[("times", s[1].1.clone()), ("neurons", s[0].1.clone())],
                Stored,
            ),
        ),
        ("bad_lying_sizes_weights.npz", {
            let mut z = zip_bytes(&w, Deflated);
            set_zip_fields(&mut z, ZipField::Size, 0xffff_fff0);
            z
        }),
        ("bad_method_weights.npz", {
            let mut z = zip_bytes(&w, Stored);
            set_zip_fields(&mut z, ZipField::Method, 12);
            z
        }),
        ("bad_missing_w0_weights.npz", zip_bytes(&w[1..], Stored)),
        (
            "bad_huge_header_len_weights.npz",
            zip_bytes(&[("w0", huge_header_len().to_vec())], Stored),
        ),
    ];
    npy.into_iter()
        .map(|(n, b)| ("npy", n, b))
        .chain(npz.into_iter().map(|(n, b)| ("npz", n, b)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Regressions: the minimal inputs of what the fuzzers found.

/// A header dict with a syntax error: the parser's message spans six lines.
fn header_syntax_error() -> Vec<u8> {
    npy_raw(
        1,
        "{'descr&: '<f8', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    )
}

/// `<U4611686018427387904`: `4 ×` that overflowed `u64` in the dtype size.
fn unicode_overflow() -> Vec<u8> {
    npy_raw(
        1,
        &npy_dict("'<U4611686018427387904'", "False", "1,"),
        &[0; 8],
    )
}

/// A format-2 prelude declaring a 4 GiB header, and nothing else.
fn huge_header_len() -> [u8; 12] {
    *b"\x93NUMPY\x02\x00\xff\xff\xff\xff"
}

/// The in-process error of `read_float_npy` on `bytes`, and the bytes it held at once.
fn npy_error_of(bytes: &[u8]) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.npy");
    std::fs::write(&p, bytes).unwrap();
    let (r, peak) = peak_bytes(|| io::read_float_npy("input", &p));
    (format!("{:#}", r.unwrap_err()), peak)
}

/// Runs `eventprop neuron --input` on `bytes`; returns the stderr, asserting exit 1.
fn neuron_error_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.npy");
    std::fs::write(&p, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .arg("neuron")
        .arg("--input")
        .arg(&p)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

/// Found by `fuzz_npy_reader`: the header parser's syntax errors are multi-line; the
/// command's error must stay one line.
#[test]
fn npy_header_syntax_error_is_one_line() {
    let (err, _) = npy_error_of(&header_syntax_error());
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("not a valid .npy file"), "{err}");
    let stderr = neuron_error_of(&header_syntax_error());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Found by `fuzz_npz_reader`: `'<U4611686018427387904'` overflowed the item size (a
/// panic, exit 101 from the binary).
#[test]
fn unicode_dtype_with_overflowing_size_is_an_error() {
    let (err, _) = npy_error_of(&unicode_overflow());
    assert!(err.contains("unsupported .npy dtype"), "{err}");
    let stderr = neuron_error_of(&unicode_overflow());
    assert!(stderr.starts_with("error: input: "), "{stderr}");
}

/// Found by `fuzz_npy_reader` / `fuzz_npz_reader`: a format-2 prelude declaring a 4 GiB
/// header made the header parser allocate 4 GiB for a 12-byte file (or zip entry).
#[test]
fn huge_declared_header_length_is_rejected_before_allocating() {
    let (err, peak) = npy_error_of(&huge_header_len());
    assert!(err.contains("ends inside the header"), "{err}");
    assert!(peak < MIB, "held {peak} bytes");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.npz");
    std::fs::write(
        &p,
        zip_bytes(
            &[("w0", huge_header_len().to_vec())],
            CompressionMethod::Stored,
        ),
    )
    .unwrap();
    let (r, peak) = peak_bytes(|| {
        io::Npz::open("--weights", &p).and_then(|mut z| z.array::<f64, Ix2>("w0", "w"))
    });
    let err = format!("{:#}", r.unwrap_err());
    assert!(err.contains("ends inside the header"), "{err}");
    assert!(peak < MIB, "held {peak} bytes");
}

/// Shape `(0, 2**64 - 1)`: zero bytes, but more elements than ndarray can index.
fn zero_times_huge_shape() -> Vec<u8> {
    npy_raw(
        1,
        &npy_dict("'<f8'", "False", "0, 18446744073709551615"),
        &[],
    )
}

/// Found by `fuzz_npz_reader`: shape `(0, 2**64 - 1)` declares 0 bytes, which matched the
/// empty data, and ndarray-npy then panicked (`ShapeError/Overflow` unwrapped).
#[test]
fn zero_length_shape_with_huge_axis_is_an_error() {
    let (err, _) = npy_error_of(&zero_times_huge_shape());
    assert!(err.contains("more elements than fit in memory"), "{err}");
    let stderr = neuron_error_of(&zero_times_huge_shape());
    assert!(stderr.starts_with("error: input: "), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.npz");
    let entries = [("w0", zero_times_huge_shape())];
    std::fs::write(&p, zip_bytes(&entries, CompressionMethod::Stored)).unwrap();
    let r = io::Npz::open("--weights", &p).and_then(|mut z| z.array::<f64, Ix2>("w0", "w"));
    assert!(format!("{:#}", r.unwrap_err()).contains("more elements"));
}

#[test]
#[ignore = "rewrites tests/corpus; run by hand when the seeds change"]
fn regenerate_corpus() {
    for (kind, name, bytes) in generated_corpus() {
        let dir = corpus_dir(kind);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// The readers as the commands use them.

/// `read_float_npy` with its properties checked; `Ok(true)` when it read an array.
fn check_npy(path: &Path, len: usize) -> Result<bool, TestCaseError> {
    let (r, peak) = peak_bytes(|| no_panic("read_float_npy", || io::read_float_npy("input", path)));
    prop_assert!(
        peak <= 4 * len + 4 * MIB,
        "read_float_npy of {len} bytes held {peak} bytes"
    );
    match r? {
        Ok(a) => {
            // The data read is what the file holds (8 or 4 bytes an element).
            let (n, size) = match &a {
                io::FloatArray::F64(a) => (a.len(), 8),
                io::FloatArray::F32(a) => (a.len(), 4),
            };
            prop_assert!(n * size <= len, "{n} elements from {len} bytes");
            Ok(true)
        }
        Err(e) => {
            let e = anyhow::Error::from(e);
            one_line(&e)?;
            prop_assert!(format!("{e:#}").contains("input"), "{e:#}");
            Ok(false)
        }
    }
}

/// Reads every array the commands read from an `.npz` (`exact --weights`: `w0, w1, …` as
/// 2-D f64; `exact --input`: `times` f64 and `neurons` i64); `Ok(true)` when all that the
/// file names read.
fn check_npz(path: &Path, len: usize) -> Result<bool, TestCaseError> {
    let (r, peak) = peak_bytes(|| {
        no_panic("Npz", || -> anyhow::Result<()> {
            let mut npz = io::Npz::open("--weights", path)?;
            let names = npz.names();
            if names.iter().any(|n| n == "times" || n == "neurons") {
                npz.array::<f64, Ix1>("times", "a 1-D float64 array")?;
                npz.array::<i64, Ix1>("neurons", "a 1-D int64 array")?;
            } else {
                npz.array::<f64, Ix2>("w0", "a 2-D float64 array")?;
            }
            for name in &names {
                if name.starts_with('w') {
                    npz.array::<f64, Ix2>(name, "a 2-D float64 array")?;
                }
            }
            Ok(())
        })
    });
    prop_assert!(
        peak <= DEFLATE_MAX_RATIO * len + 4 * MIB,
        "Npz of {len} bytes held {peak} bytes"
    );
    match r? {
        Ok(()) => Ok(true),
        Err(e) => {
            one_line(&e)?;
            prop_assert!(format!("{e:#}").starts_with("--weights"), "{e:#}");
            Ok(false)
        }
    }
}

/// Every corpus file has the outcome its name states (through the library and the binary).
#[test]
fn corpus_outcomes_match_their_names() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name, _) in generated_corpus() {
        assert!(
            corpus_dir(kind).join(name).is_file(),
            "{kind}/{name} missing; run regenerate_corpus"
        );
    }
    for kind in ["npy", "npz"] {
        for (name, bytes) in corpus(kind) {
            let p = dir.path().join(&name);
            std::fs::write(&p, &bytes).unwrap();
            let ok = if kind == "npy" {
                check_npy(&p, bytes.len())
            } else {
                check_npz(&p, bytes.len())
            }
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ok, name.starts_with("ok_"), "{kind}/{name}");
            assert!(ok || name.starts_with("bad_"), "{name}: unknown prefix");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.

/// A `.npy` header rebuilt with edited fields.
#[derive(Debug, Clone)]
struct HeaderEdit {
    version: u8,
    descr: Option<String>,
    fortran: Option<String>,
    shape: Option<String>,
    /// Extra bytes of data beyond what the new header declares (negative: fewer).
    data_delta: i8,
}

fn dim() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..5u64).prop_map(|d| d.to_string()),
        Just("100000".to_string()),
        Just("18446744073709551615".to_string()),
        Just("9223372036854775807".to_string()),
        Just("4294967296".to_string()),
        Just("-1".to_string()),
        any::<u64>().prop_map(|d| d.to_string()),
        "[a-z0-9'.]{0,3}",
    ]
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let descr = prop::sample::select(vec![
        "'<f8'",
        "'<f4'",
        "'>f8'",
        "'>f4'",
        "'=f8'",
        "'|f8'",
        "'<f2'",
        "'<f16'",
        "'<i8'",
        "'|b1'",
        "'<c16'",
        "'<U3'",
        "'<f99999999999999999999'",
        "'<f18446744073709551615'",
        "'<U4611686018427387904'",
        "'O'",
        "'<V8'",
        "[('a', '<f8')]",
        "''",
        "8",
    ])
    .prop_map(str::to_owned);
    let fortran =
        prop::sample::select(vec!["True", "False", "0", "None", "'x'"]).prop_map(str::to_owned);
    let shape = prop_oneof![
        prop::collection::vec(dim(), 0..5).prop_map(|d| {
            if d.len() == 1 {
                format!("{},", d[0])
            } else {
                d.join(", ")
            }
        }),
        "[ -~]{0,12}",
    ];
    (
        prop::sample::select(vec![1u8, 2, 3]),
        prop::option::weighted(0.5, descr),
        prop::option::weighted(0.3, fortran),
        prop::option::weighted(0.6, shape),
        prop_oneof![4 => Just(0i8), 1 => any::<i8>()],
    )
        .prop_map(|(version, descr, fortran, shape, data_delta)| HeaderEdit {
            version,
            descr,
            fortran,
            shape,
            data_delta,
        })
}

/// The header dict and data of a `.npy` stream (versions 1–3), if it parses that far.
fn parse_npy(bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    if bytes.get(..6)? != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match bytes.get(6)? {
        1 => (
            u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?) as usize,
            10usize,
        ),
        _ => (
            u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize,
            12,
        ),
    };
    let dict = std::str::from_utf8(bytes.get(start..start.checked_add(len)?)?).ok()?;
    Some((dict.trim_end().to_string(), bytes[start + len..].to_vec()))
}

/// Replaces the value of `key` in a header dict (a Python literal) with `value`.
fn set_field(dict: &str, key: &str, value: &str) -> String {
    let needle = format!("'{key}':");
    let Some(at) = dict.find(&needle) else {
        return dict.to_string();
    };
    let start = at + needle.len();
    let rest = &dict[start..];
    // The value ends at the next top-level `, '` or `}`.
    let mut depth = 0i32;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth <= 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    format!("{} {value}{}", &dict[..start], &rest[end..])
}

fn edit_header(bytes: &[u8], e: &HeaderEdit) -> Vec<u8> {
    let Some((mut dict, mut data)) = parse_npy(bytes) else {
        return bytes.to_vec();
    };
    if let Some(d) = &e.descr {
        dict = set_field(&dict, "descr", d);
    }
    if let Some(f) = &e.fortran {
        dict = set_field(&dict, "fortran_order", f);
    }
    if let Some(s) = &e.shape {
        dict = set_field(&dict, "shape", &format!("({s})"));
    }
    if e.data_delta > 0 {
        data.extend(std::iter::repeat_n(0x7f, e.data_delta as usize));
    } else {
        data.truncate(
            data.len()
                .saturating_sub(e.data_delta.unsigned_abs() as usize),
        );
    }
    npy_raw(e.version, &dict, &data)
}

/// Fields of every zip local and central directory header.
#[derive(Debug, Clone, Copy)]
enum ZipField {
    Method,
    Size,
    CompressedSize,
    Crc,
    NameLen,
}

/// Overwrites `field` in every local (`PK\3\4`) and central (`PK\1\2`) header of a zip.
fn set_zip_fields(z: &mut [u8], field: ZipField, value: u32) {
    let offsets = |central: bool| -> (usize, usize) {
        // (offset, width) within the header.
        let shift = usize::from(central) * 2;
        match field {
            ZipField::Method => (8 + shift, 2),
            ZipField::Crc => (14 + shift, 4),
            ZipField::CompressedSize => (18 + shift, 4),
            ZipField::Size => (22 + shift, 4),
            ZipField::NameLen => (26 + shift, 2),
        }
    };
    let mut i = 0;
    while i + 4 <= z.len() {
        let central = match &z[i..i + 4] {
            b"PK\x03\x04" => false,
            b"PK\x01\x02" => true,
            _ => {
                i += 1;
                continue;
            }
        };
        let (off, width) = offsets(central);
        if i + off + width <= z.len() {
            z[i + off..i + off + width].copy_from_slice(&value.to_le_bytes()[..width]);
        }
        i += 4;
    }
}

#[derive(Debug, Clone)]
enum NpyMutation {
    Bytes(Vec<ByteEdit>),
    Header(HeaderEdit, Vec<ByteEdit>),
}

fn npy_mutation() -> impl Strategy<Value = NpyMutation> {
    prop_oneof![
        1 => prop::collection::vec(byte_edit(), 1..6).prop_map(NpyMutation::Bytes),
        1 => (header_edit(), prop::collection::vec(byte_edit(), 0..2))
            .prop_map(|(h, b)| NpyMutation::Header(h, b)),
    ]
}

fn mutate_npy(seed: &[u8], m: &NpyMutation) -> Vec<u8> {
    let (mut bytes, edits) = match m {
        NpyMutation::Bytes(e) => (seed.to_vec(), e),
        NpyMutation::Header(h, e) => (edit_header(seed, h), e),
    };
    for e in edits {
        apply(&mut bytes, e);
    }
    bytes
}

#[derive(Debug, Clone)]
enum NpzMutation {
    /// Byte edits of the whole archive.
    Bytes(Vec<ByteEdit>),
    /// Rebuilds the archive (stored or deflated) with one member mutated.
    Member {
        deflate: bool,
        member: Index,
        mutation: NpyMutation,
    },
    /// Overwrites a field of every zip header.
    Field(ZipField, u32),
}

fn npz_mutation() -> impl Strategy<Value = NpzMutation> {
    let field = prop::sample::select(vec![
        ZipField::Method,
        ZipField::Size,
        ZipField::CompressedSize,
        ZipField::Crc,
        ZipField::NameLen,
    ]);
    let value = prop_oneof![
        0..16u32,
        Just(u32::MAX),
        Just(0xffff_fff0),
        Just(1 << 20),
        Just(99),
        any::<u32>()
    ];
    prop_oneof![
        2 => prop::collection::vec(byte_edit(), 1..5).prop_map(NpzMutation::Bytes),
        3 => (any::<bool>(), any::<Index>(), npy_mutation()).prop_map(|(deflate, member, mutation)| {
            NpzMutation::Member {
                deflate,
                member,
                mutation,
            }
        }),
        1 => (field, value).prop_map(|(f, v)| NpzMutation::Field(f, v)),
    ]
}

/// The members of a zip (names without `.npy`), if it reads.
fn members(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).ok()?;
            let name = f.name().strip_suffix(".npy").unwrap_or(f.name()).to_owned();
            let mut v = Vec::new();
            f.read_to_end(&mut v).ok()?;
            Some((name, v))
        })
        .collect()
}

fn mutate_npz(seed: &[u8], m: &NpzMutation) -> Vec<u8> {
    match m {
        NpzMutation::Bytes(edits) => {
            let mut b = seed.to_vec();
            for e in edits {
                apply(&mut b, e);
            }
            b
        }
        NpzMutation::Member {
            deflate,
            member,
            mutation,
        } => match members(seed) {
            Some(mut ms) if !ms.is_empty() => {
                let k = member.index(ms.len());
                ms[k].1 = mutate_npy(&ms[k].1, mutation);
                let entries: Vec<(&str, Vec<u8>)> =
                    ms.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
                let method = if *deflate {
                    CompressionMethod::Deflated
                } else {
                    CompressionMethod::Stored
                };
                zip_bytes(&entries, method)
            }
            _ => seed.to_vec(),
        },
        NpzMutation::Field(f, v) => {
            let mut b = seed.to_vec();
            set_zip_fields(&mut b, *f, *v);
            b
        }
    }
}

fn seeds(kind: &str) -> Vec<Vec<u8>> {
    corpus(kind).into_iter().map(|(_, b)| b).collect()
}

// ---------------------------------------------------------------------------------------
// Fuzzers.

/// `read_float_npy` on mutated `.npy` files, in-process.
#[test]
fn fuzz_npy_reader() {
    let seeds = seeds("npy");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let start = std::time::Instant::now();
    let read = Cell::new(0usize);
    runner(CASES_NPY)
        .run(&(0..seeds.len(), npy_mutation()), |(seed, m)| {
            let bytes = mutate_npy(&seeds[seed], &m);
            std::fs::write(&path, &bytes).unwrap();
            read.set(read.get() + usize::from(check_npy(&path, bytes.len())?));
            Ok(())
        })
        .unwrap();
    let read = read.get();
    eprintln!(
        "fuzz_npy_reader: {CASES_NPY} cases ({read} read) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(read > 0, "no mutated file read");
}

/// `Npz::open` and `Npz::array` on mutated `.npz` files, in-process.
#[test]
fn fuzz_npz_reader() {
    let seeds = seeds("npz");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npz");
    let start = std::time::Instant::now();
    let read = Cell::new(0usize);
    runner(CASES_NPZ)
        .run(&(0..seeds.len(), npz_mutation()), |(seed, m)| {
            let bytes = mutate_npz(&seeds[seed], &m);
            std::fs::write(&path, &bytes).unwrap();
            read.set(read.get() + usize::from(check_npz(&path, bytes.len())?));
            Ok(())
        })
        .unwrap();
    let read = read.get();
    eprintln!(
        "fuzz_npz_reader: {CASES_NPZ} cases ({read} read) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(read > 0, "no mutated file read");
}

/// Runs the binary; exit status 0 or 1, and on 1 exactly one `error:` line on stderr.
fn check_binary(args: &[&std::ffi::OsStr]) -> Result<(), TestCaseError> {
    let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(1) => {
            let lines: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.starts_with("note: "))
                .collect();
            prop_assert_eq!(lines.len(), 1, "stderr: {}", stderr);
            prop_assert!(lines[0].starts_with("error: "), "stderr: {}", stderr);
        }
        other => prop_assert!(
            false,
            "exit {:?} ({}), stderr: {}",
            other,
            out.status,
            stderr
        ),
    }
    Ok(())
}

/// `eventprop neuron --input` and `eventprop exact --weights/--input` on mutated files.
#[test]
fn fuzz_readers_through_the_binary() {
    let npy = seeds("npy");
    let npz = seeds("npz");
    let weights: Vec<&Vec<u8>> = corpus("npz")
        .iter()
        .zip(&npz)
        .filter(|((n, _), _)| n.contains("weights"))
        .map(|(_, b)| b)
        .collect();
    let spikes: Vec<&Vec<u8>> = corpus("npz")
        .iter()
        .zip(&npz)
        .filter(|((n, _), _)| n.contains("spikes"))
        .map(|(_, b)| b)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (x, w, s, out) = (
        dir.path().join("x.npy"),
        dir.path().join("w.npz"),
        dir.path().join("s.npz"),
        dir.path().join("out"),
    );
    let start = std::time::Instant::now();
    runner(CASES_BINARY)
        .run(
            &(
                0..npy.len(),
                npy_mutation(),
                0..weights.len(),
                0..spikes.len(),
                npz_mutation(),
                any::<bool>(),
            ),
            |(i, mx, iw, is, mz, mutate_weights)| {
                std::fs::write(&x, mutate_npy(&npy[i], &mx)).unwrap();
                check_binary(&[
                    "neuron".as_ref(),
                    "--input".as_ref(),
                    x.as_os_str(),
                    "--out".as_ref(),
                    out.as_os_str(),
                ])?;
                let (wb, sb) = if mutate_weights {
                    (mutate_npz(weights[iw], &mz), spikes[is].clone())
                } else {
                    (weights[iw].clone(), mutate_npz(spikes[is], &mz))
                };
                std::fs::write(&w, wb).unwrap();
                std::fs::write(&s, sb).unwrap();
                check_binary(&[
                    "exact".as_ref(),
                    "--weights".as_ref(),
                    w.as_os_str(),
                    "--input".as_ref(),
                    s.as_os_str(),
                    "--t-max".as_ref(),
                    "0.01".as_ref(),
                    "--out".as_ref(),
                    out.as_os_str(),
                ])
            },
        )
        .unwrap();
    eprintln!(
        "fuzz_readers_through_the_binary: {CASES_BINARY} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
