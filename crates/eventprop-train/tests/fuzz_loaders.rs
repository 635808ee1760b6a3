//! Fuzzers of the training crate's loaders (DESIGN.md, "Fuzzing"): the safetensors
//! checkpoint reader ([`checkpoint::load`]), [`Trainer::load`] on top of it, and the TOML
//! config layering ([`TrainConfig::layered`], [`TrainConfig::from_toml_file`]).
//!
//! Each fuzzer mutates the seed inputs of `tests/corpus/` (and freshly written valid ones)
//! with a fixed proptest seed, so a run is deterministic and bounded (`CASES_*`). The
//! properties: every input gives `Ok` or `Err`, never a panic; a loader never allocates
//! much more than the file it reads (a global allocator counts this thread's bytes); every
//! `Ok` config's `validate()` returns without panicking or allocating.
//!
//! `cargo test -p eventprop-train --test fuzz_loaders -- --ignored regenerate_corpus`
//! rewrites the generated corpus files.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use eventprop_testkit::edits::{apply, byte_edit_with_u64 as byte_edit, ByteEdit};
use eventprop_testkit::{no_panic, peak_bytes, runner, Counting, MIB};
use eventprop_train::checkpoint::{self, Checkpoint, Tensor, TensorData};
use eventprop_train::{EngineKind, Error, TrainConfig, Trainer};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::Value as Json;

// ---------------------------------------------------------------------------------------
// Allocation accounting and the proptest set-up (fixed seed) of `eventprop-testkit`.

#[global_allocator]
static GLOBAL: Counting = Counting;

const CASES_CHECKPOINT: u32 = 30_000;
const CASES_TRAINER: u32 = 15_000;
const CASES_CONFIG: u32 = 150_000;
const CASES_CONFIG_FILE: u32 = 40_000;

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    eventprop_testkit::corpus(&corpus_dir(""), kind)
}

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// An error message must be one line (the CLI prints it as such).
fn one_line(e: &Error) -> Result<(), TestCaseError> {
    let s = e.to_string();
    prop_assert!(!s.contains('\n'), "multi-line error: {s}");
    prop_assert!(!s.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Seed inputs.

fn small(engine: EngineKind) -> TrainConfig {
    TrainConfig {
        train_size: 30,
        val_size: 10,
        test_size: 10,
        eval_batch_size: 10,
        batch_size: 10,
        epochs: 2,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![3],
            ..TrainConfig::preset(engine).network.clone()
        },
        ..TrainConfig::preset(engine)
    }
}

fn trained(engine: EngineKind, epochs: usize) -> Trainer {
    let mut t = Trainer::new(small(engine)).unwrap();
    for _ in 0..epochs {
        t.run_epoch(&mut |_| {}).unwrap();
    }
    t
}

fn plain_checkpoint() -> Checkpoint {
    let mut c = Checkpoint {
        metadata: r#"{"note":"plain"}"#.into(),
        ..Default::default()
    };
    c.tensors.insert(
        "a".into(),
        Tensor {
            shape: vec![2, 2],
            data: TensorData::F64(vec![1.0, -0.5, f64::MIN_POSITIVE, 3.0]),
        },
    );
    c.tensors.insert(
        "b".into(),
        Tensor {
            shape: vec![3],
            data: TensorData::F32(vec![0.25, -7.0, 1e30]),
        },
    );
    c
}

fn checkpoint_bytes(c: &Checkpoint) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.safetensors");
    checkpoint::save(&p, c).unwrap();
    std::fs::read(p).unwrap()
}

/// Splits a safetensors file into its header JSON and data.
fn split(bytes: &[u8]) -> (Json, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// Joins a header (re-serialised, padded to 8 bytes) and data.
fn join(header: &Json, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// Rewrites the `eventprop` metadata JSON string of a checkpoint's header.
fn edit_meta(bytes: &[u8], f: impl FnOnce(&mut Json)) -> Vec<u8> {
    let (mut header, data) = split(bytes);
    let meta = header["__metadata__"]["eventprop"].as_str().unwrap();
    let mut meta: Json = serde_json::from_str(meta).unwrap();
    f(&mut meta);
    header["__metadata__"]["eventprop"] = Json::String(meta.to_string());
    join(&header, &data)
}

/// The generated corpus: `(kind, name, bytes)`. Names say what the loaders must do:
/// `ok_*` loads (as a Trainer for `trainer_*` seeds), `raw_*` is a valid safetensors file
/// that `Trainer::load` rejects, `bad_*` is rejected by `checkpoint::load`. Configs:
/// `ok_*` layer and validate, `invalid_*` layer but fail validation, `bad_*` do not layer.
fn generated_corpus() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let stepped = trained(EngineKind::Stepped, 1);
    let stepped_bytes = checkpoint_bytes(&stepped.to_checkpoint());
    let exact_bytes = checkpoint_bytes(&trained(EngineKind::Exact, 0).to_checkpoint());
    let plain = checkpoint_bytes(&plain_checkpoint());

    let mut huge_shape = split(&plain);
    huge_shape.0["a"]["shape"] = serde_json::json!([1u64 << 40, 1u64 << 40, 16]);
    let mut overflow_shape = split(&plain);
    overflow_shape.0["a"]["shape"] = serde_json::json!([u64::MAX, u64::MAX]);
    let mut i64_dtype = split(&plain);
    i64_dtype.0["a"]["dtype"] = Json::String("I64".into());
    let mut no_meta = split(&plain);
    no_meta.0.as_object_mut().unwrap().remove("__metadata__");
    let mut huge_header_len = plain.clone();
    huge_header_len[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let mut big_header_len = plain.clone();
    big_header_len[..8].copy_from_slice(&99_999_999u64.to_le_bytes());

    let nan_weight = {
        let mut t = stepped.to_checkpoint();
        let w = t.tensors.get_mut("weight.0").unwrap();
        if let TensorData::F64(v) = &mut w.data {
            v[1] = f64::NAN;
        }
        checkpoint_bytes(&t)
    };
    let wrong_shape = {
        let mut t = stepped.to_checkpoint();
        let w = t.tensors.get_mut("weight.0").unwrap();
        w.shape.reverse();
        checkpoint_bytes(&t)
    };

    let mut out = vec![
        ("checkpoint", "ok_plain.safetensors", plain.clone()),
        (
            "checkpoint",
            "ok_trainer_stepped.safetensors",
            stepped_bytes.clone(),
        ),
        (
            "checkpoint",
            "ok_trainer_exact.safetensors",
            exact_bytes.clone(),
        ),
        ("checkpoint", "raw_nan_weight.safetensors", nan_weight),
        (
            "checkpoint",
            "raw_wrong_weight_shape.safetensors",
            wrong_shape,
        ),
        (
            "checkpoint",
            "raw_meta_not_json.safetensors",
            join(
                &{
                    let mut h = split(&stepped_bytes).0;
                    h["__metadata__"]["eventprop"] = Json::String("{\"format\": ".into());
                    h
                },
                &split(&stepped_bytes).1,
            ),
        ),
        (
            "checkpoint",
            "raw_old_exact_format.safetensors",
            edit_meta(&exact_bytes, |m| {
                m["format"] = Json::String("eventprop-exact-yinyang/1".into())
            }),
        ),
        (
            "checkpoint",
            "raw_nan_lr.safetensors",
            // JSON has no NaN; a string where a float belongs.
            edit_meta(&stepped_bytes, |m| {
                m["config"]["lr"] = Json::String("nan".into())
            }),
        ),
        (
            "checkpoint",
            "raw_unknown_config_key.safetensors",
            edit_meta(&stepped_bytes, |m| m["config"]["bogus"] = Json::from(1)),
        ),
        (
            "checkpoint",
            "raw_zero_batch.safetensors",
            edit_meta(&stepped_bytes, |m| {
                m["config"]["batch_size"] = Json::from(0)
            }),
        ),
        (
            "checkpoint",
            "bad_truncated.safetensors",
            stepped_bytes[..stepped_bytes.len() - 7].to_vec(),
        ),
        (
            "checkpoint",
            "bad_header_only.safetensors",
            plain[..20].to_vec(),
        ),
        ("checkpoint", "bad_empty.safetensors", Vec::new()),
        (
            "checkpoint",
            "bad_huge_header_len.safetensors",
            huge_header_len,
        ),
        (
            "checkpoint",
            "bad_big_header_len.safetensors",
            big_header_len,
        ),
        (
            "checkpoint",
            "bad_huge_shape.safetensors",
            join(&huge_shape.0, &huge_shape.1),
        ),
        (
            "checkpoint",
            "bad_overflow_shape.safetensors",
            join(&overflow_shape.0, &overflow_shape.1),
        ),
        (
            "checkpoint",
            "bad_i64_dtype.safetensors",
            join(&i64_dtype.0, &i64_dtype.1),
        ),
        (
            "checkpoint",
            "bad_no_metadata.safetensors",
            join(&no_meta.0, &no_meta.1),
        ),
        (
            "checkpoint",
            "bad_garbage_appended.safetensors",
            [plain.as_slice(), b"\0garbage"].concat(),
        ),
    ];
    let configs: [(&str, &str); 14] = [
        ("ok_empty.toml", ""),
        (
            "ok_stepped.toml",
            "epochs = 3\nhidden = [10, 5]\nlr = 2e-3\nweight_clip = 4.0\n\n[encoding]\ndt = 5e-7\n",
        ),
        (
            "ok_exact.toml",
            "engine = \"exact\"\nhidden = [20]\n\n[loss]\ntau0 = 1e-3\n\n[exact]\nmax_spikes_per_neuron = 8\n",
        ),
        (
            "ok_dotted.toml",
            "encoding.t_sim = 1e-4\nloss.kind = \"first_spike\"\nloss.tau1 = 3e-5\n",
        ),
        ("invalid_nan_lr.toml", "lr = nan\n"),
        ("invalid_inf_clip.toml", "weight_clip = inf\n"),
        ("invalid_zero_hidden.toml", "hidden = [0]\n"),
        ("invalid_dt.toml", "[encoding]\ndt = -1.0\n"),
        ("bad_unknown_key.toml", "[encoding]\nbogus = 1\n"),
        ("bad_type.toml", "epochs = \"ten\"\n"),
        ("bad_negative_size.toml", "batch_size = -4\n"),
        ("bad_engine.toml", "engine = \"analog\"\n"),
        ("bad_loss_kind.toml", "[loss]\nkind = 7\n"),
        ("bad_syntax.toml", "[encoding\ndt = = 1\n"),
    ];
    out.extend(
        configs
            .into_iter()
            .map(|(n, t)| ("config", n, t.as_bytes().to_vec())),
    );
    out
}

#[test]
#[ignore = "rewrites tests/corpus; run by hand when the formats change"]
fn regenerate_corpus() {
    for (kind, name, bytes) in generated_corpus() {
        let dir = corpus_dir(kind);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every corpus file has the outcome its name states.
#[test]
fn corpus_outcomes_match_their_names() {
    for (name, bytes) in corpus("checkpoint") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(&name);
        std::fs::write(&p, &bytes).unwrap();
        let raw = checkpoint::load(&p);
        let trainer = Trainer::load(&p);
        if name.starts_with("ok_trainer_") {
            let t = trainer.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(t.config().validate().is_ok(), "{name}");
        } else if name.starts_with("ok_") || name.starts_with("raw_") {
            raw.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(trainer.is_err(), "{name} loaded as a trainer");
        } else {
            assert!(name.starts_with("bad_"), "{name}: unknown prefix");
            assert!(matches!(raw, Err(Error::Format { .. })), "{name}: {raw:?}");
            assert!(trainer.is_err(), "{name}");
        }
    }
    for (name, bytes) in corpus("config") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(&name);
        std::fs::write(&p, &bytes).unwrap();
        let c = TrainConfig::from_toml_file(&p);
        if name.starts_with("ok_") {
            let c = c.unwrap_or_else(|e| panic!("{name}: {e}"));
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("invalid_") {
            let c = c.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.validate().is_err(), "{name} validated");
        } else {
            assert!(name.starts_with("bad_"), "{name}: unknown prefix");
            assert!(c.is_err(), "{name} layered");
        }
    }
}

/// Every file [`generated_corpus`] names is stored.
#[test]
fn corpus_is_complete() {
    for (kind, name, _) in generated_corpus() {
        assert!(
            corpus_dir(kind).join(name).is_file(),
            "{kind}/{name} missing; run regenerate_corpus"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.

/// A JSON value to put where another was: numbers at the edges, wrong types.
fn json_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        (0..5u64).prop_map(Json::from),
        prop_oneof![
            Just(0.0),
            Just(-1.0),
            Just(1e308),
            Just(-1e-320),
            any::<f64>()
        ]
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        Just(Json::Null),
        Just(Json::Bool(true)),
        "[a-z_./0-9]{0,12}".prop_map(Json::String),
        prop::collection::vec(0..6u64, 0..4).prop_map(Json::from),
        Just(serde_json::json!([u64::MAX, 2])),
        Just(serde_json::json!({})),
    ]
}

/// A structured edit of a safetensors header (`path` picks a node by indices into the
/// objects/arrays on the way down).
#[derive(Debug, Clone)]
struct JsonEdit {
    path: Vec<Index>,
    action: JsonAction,
}

#[derive(Debug, Clone)]
enum JsonAction {
    Replace(Json),
    Remove,
    Insert(String, Json),
}

fn json_edit(keys: &'static [&'static str]) -> impl Strategy<Value = JsonEdit> {
    let key = prop_oneof![
        4 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ];
    (
        prop::collection::vec(any::<Index>(), 0..5),
        prop_oneof![
            5 => json_value().prop_map(JsonAction::Replace),
            1 => Just(JsonAction::Remove),
            2 => (key, json_value()).prop_map(|(k, v)| JsonAction::Insert(k, v)),
        ],
    )
        .prop_map(|(path, action)| JsonEdit { path, action })
}

fn apply_json(root: &mut Json, edit: &JsonEdit) {
    apply_json_at(root, &edit.path, &edit.action);
}

fn apply_json_at(node: &mut Json, path: &[Index], action: &JsonAction) {
    if let Some((i, rest)) = path.split_first() {
        match node {
            Json::Object(m) if !m.is_empty() => {
                let k = i.index(m.len());
                return apply_json_at(m.values_mut().nth(k).unwrap(), rest, action);
            }
            Json::Array(a) if !a.is_empty() => {
                let k = i.index(a.len());
                return apply_json_at(&mut a[k], rest, action);
            }
            _ => {}
        }
    }
    match action {
        JsonAction::Replace(v) => *node = v.clone(),
        JsonAction::Remove => match node {
            Json::Object(m) => {
                let k = m.keys().next().cloned();
                if let Some(k) = k {
                    m.remove(&k);
                }
            }
            Json::Array(a) => {
                a.pop();
            }
            _ => *node = Json::Null,
        },
        JsonAction::Insert(k, v) => {
            if let Json::Object(m) = node {
                m.insert(k.clone(), v.clone());
            } else {
                *node = v.clone();
            }
        }
    }
}

const HEADER_KEYS: &[&str] = &[
    "dtype",
    "shape",
    "data_offsets",
    "__metadata__",
    "eventprop",
    "weight.0",
];

/// Keys of the `eventprop` metadata: the checkpoint format's and every config key.
const META_KEYS: &[&str] = &[
    "format",
    "engine",
    "config",
    "epochs_done",
    "adam_steps",
    "history",
    "hidden",
    "lr",
    "eps",
    "beta1",
    "beta2",
    "loss",
    "kind",
    "encoding",
    "dt",
    "t_sim",
    "t_late",
    "exact",
    "max_spikes_per_neuron",
    "weight_clip",
    "discretization",
    "tau_mem",
    "tau_syn",
    "threshold",
    "lr_step",
    "lr_gamma",
    "batch_size",
    "epochs",
];

/// How a seed file is mutated.
#[derive(Debug, Clone)]
enum Mutation {
    Bytes(Vec<ByteEdit>),
    Header(Vec<JsonEdit>),
    Meta(Vec<JsonEdit>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => prop::collection::vec(byte_edit(), 1..6).prop_map(Mutation::Bytes),
        2 => prop::collection::vec(json_edit(HEADER_KEYS), 1..4).prop_map(Mutation::Header),
        3 => prop::collection::vec(json_edit(META_KEYS), 1..4).prop_map(Mutation::Meta),
    ]
}

/// Applies `m` to a seed; structured edits of a seed that is no safetensors file (or
/// whose metadata is no JSON) fall back to the unchanged bytes.
fn mutate(seed: &[u8], m: &Mutation) -> Vec<u8> {
    let parse = || -> Option<(Json, Vec<u8>)> {
        let n = u64::from_le_bytes(seed.get(..8)?.try_into().ok()?) as usize;
        let header = serde_json::from_slice(seed.get(8..8usize.checked_add(n)?)?).ok()?;
        Some((header, seed[8 + n..].to_vec()))
    };
    match m {
        Mutation::Bytes(edits) => {
            let mut b = seed.to_vec();
            for e in edits {
                apply(&mut b, e);
            }
            b
        }
        Mutation::Header(edits) => match parse() {
            Some((mut h, data)) => {
                for e in edits {
                    apply_json(&mut h, e);
                }
                join(&h, &data)
            }
            None => seed.to_vec(),
        },
        Mutation::Meta(edits) => {
            let Some((mut h, data)) = parse() else {
                return seed.to_vec();
            };
            let Some(mut meta) = h["__metadata__"]["eventprop"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Json>(s).ok())
            else {
                return seed.to_vec();
            };
            for e in edits {
                apply_json(&mut meta, e);
            }
            h["__metadata__"]["eventprop"] = Json::String(meta.to_string());
            join(&h, &data)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inputs the fuzzers skip because they are valid but costly, not because they fail:
// `Trainer::load` generates the data sets, and sizes up to the memory limit (16 GiB ≈ 85 M
// samples) are legitimate but too slow for a fuzz loop. (Huge sizes are refused by the
// memory estimate: `trainer_load_rejects_huge_data_set_sizes`.)

/// Whether loading `c` would generate more than 100,000 samples.
fn known_gap(c: &TrainConfig) -> bool {
    let sizes = [c.train_size, c.val_size, c.test_size];
    sizes.iter().any(|&n| n > 100_000)
}

/// The config in a checkpoint's metadata, as `Trainer::load` layers it (if it does).
fn checkpoint_config(bytes: &[u8]) -> Option<TrainConfig> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: Json = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    let meta: Json = serde_json::from_str(header["__metadata__"]["eventprop"].as_str()?).ok()?;
    let mut cfg = meta.get("config")?.clone();
    if let Some(o) = cfg.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    let table: toml::Table = serde_json::from_value(cfg).ok()?;
    TrainConfig::layered(&[("checkpoint", table)]).ok()
}

// ---------------------------------------------------------------------------------------
// Fuzzers.

/// Seeds: the stored corpus plus checkpoints written by the current code.
fn checkpoint_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = corpus("checkpoint").into_iter().map(|(_, b)| b).collect();
    seeds.push(checkpoint_bytes(&plain_checkpoint()));
    seeds.push(checkpoint_bytes(
        &trained(EngineKind::Stepped, 1).to_checkpoint(),
    ));
    seeds.push(checkpoint_bytes(
        &trained(EngineKind::Exact, 0).to_checkpoint(),
    ));
    seeds
}

/// `checkpoint::load` on mutated files: `Ok` or a one-line `Err`, never a panic, and never
/// more than 4 × the file plus 4 MiB of memory at once; an `Ok` checkpoint is consistent.
#[test]
fn fuzz_checkpoint_load() {
    let seeds = checkpoint_seeds();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.safetensors");
    let start = std::time::Instant::now();
    runner(CASES_CHECKPOINT)
        .run(&(0..seeds.len(), mutation()), |(seed, m)| {
            let bytes = mutate(&seeds[seed], &m);
            std::fs::write(&path, &bytes).unwrap();
            let (result, peak) =
                peak_bytes(|| no_panic("checkpoint::load", || checkpoint::load(&path)));
            let result = result?;
            prop_assert!(
                peak <= 4 * bytes.len() + 4 * MIB,
                "checkpoint::load of {} bytes held {peak} bytes",
                bytes.len()
            );
            match result {
                Ok(c) => {
                    for (name, t) in &c.tensors {
                        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                        prop_assert_eq!(n, Some(t.data.to_f64().len()), "tensor {}", name);
                    }
                }
                Err(e) => {
                    prop_assert!(
                        matches!(e, Error::Format { .. } | Error::Io { .. }),
                        "{e:?}"
                    );
                    one_line(&e)?;
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_checkpoint_load: {CASES_CHECKPOINT} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// `Trainer::load` on mutated checkpoints: `Ok` or a one-line `Err`, never a panic; an `Ok`
/// trainer's config validates, and loading holds no more than 16 MiB beyond the file.
#[test]
fn fuzz_trainer_load() {
    let seeds: Vec<Vec<u8>> = checkpoint_seeds()
        .into_iter()
        .filter(|s| s.len() > 1000)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.safetensors");
    let start = std::time::Instant::now();
    let loaded = Cell::new(0usize);
    runner(CASES_TRAINER)
        .run(&(0..seeds.len(), mutation()), |(seed, m)| {
            let bytes = mutate(&seeds[seed], &m);
            if checkpoint_config(&bytes).is_some_and(|c| known_gap(&c)) {
                return Ok(());
            }
            std::fs::write(&path, &bytes).unwrap();
            let (result, peak) = peak_bytes(|| no_panic("Trainer::load", || Trainer::load(&path)));
            prop_assert!(
                peak <= 4 * bytes.len() + 16 * MIB,
                "Trainer::load of {} bytes held {peak} bytes",
                bytes.len()
            );
            match result? {
                Ok(t) => {
                    loaded.set(loaded.get() + 1);
                    let v = no_panic("validate", || t.config().validate())?;
                    prop_assert!(v.is_ok(), "loaded config does not validate: {v:?}");
                }
                Err(e) => one_line(&e)?,
            }
            Ok(())
        })
        .unwrap();
    let loaded = loaded.get();
    eprintln!(
        "fuzz_trainer_load: {CASES_TRAINER} cases ({loaded} loaded) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // The mutations must not be so destructive that nothing loads.
    assert!(loaded > 0, "no mutated checkpoint loaded");
}

/// A checkpoint's data-set sizes are used to generate the data on load; a huge one must be
/// an error, not a `Vec::with_capacity` overflow or an allocation of terabytes.
#[test]
fn trainer_load_rejects_huge_data_set_sizes() {
    let bytes = checkpoint_bytes(&trained(EngineKind::Stepped, 0).to_checkpoint());
    let bytes = edit_meta(&bytes, |m| {
        m["config"]["train_size"] = Json::from(1u64 << 62);
    });
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.safetensors");
    std::fs::write(&p, bytes).unwrap();
    let (r, peak) = peak_bytes(|| {
        std::panic::catch_unwind(|| Trainer::load(&p).map(|_| ()).map_err(|e| e.to_string()))
    });
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    assert!(peak < 64 * MIB, "{peak}");
}

/// Found by `fuzz_config_layered`: `encoding.t_bias = 9223372036854775807` makes
/// `Encoding::validate` compute `usize::MAX + 1` (a panic here; in release it wraps and
/// the config validates with an input spike at step `usize::MAX`).
#[test]
fn validate_rejects_a_huge_t_bias_without_panicking() {
    let layer: toml::Table = "encoding.t_bias = 9223372036854775807".parse().unwrap();
    let c = TrainConfig::layered(&[("f", layer)]).unwrap();
    let v = std::panic::catch_unwind(|| c.validate().map_err(|e| e.to_string()));
    assert!(matches!(v, Ok(Err(_))), "{v:?}");
}

// Config layering.

/// Every key path of the presets (`lr`, `encoding.dt`, `loss.tau0`, …) and table names.
fn config_keys() -> Vec<String> {
    let mut keys = vec![
        "loss.kind".to_string(),
        "weight_clip".into(),
        "bogus".into(),
    ];
    for engine in [EngineKind::Stepped, EngineKind::Exact] {
        let t = toml::Table::try_from(TrainConfig::preset(engine)).unwrap();
        for (k, v) in &t {
            keys.push(k.clone());
            if let toml::Value::Table(sub) = v {
                keys.extend(sub.keys().map(|s| format!("{k}.{s}")));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

fn toml_leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        prop_oneof![
            0..5i64,
            Just(-1),
            Just(i64::MAX),
            Just(i64::MIN),
            any::<i64>()
        ]
        .prop_map(toml::Value::Integer),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e-300),
            Just(1e300),
            Just(5e-7),
            Just(2e-3),
            any::<f64>(),
        ]
        .prop_map(toml::Value::Float),
        prop::sample::select(vec![
            "stepped",
            "exact",
            "max_over_time",
            "first_spike",
            "seed",
            "corrected",
            "",
            "x"
        ])
        .prop_map(|s| toml::Value::String(s.into())),
        any::<bool>().prop_map(toml::Value::Boolean),
        prop::collection::vec(prop_oneof![0..4i64, Just(i64::MAX), Just(-1)], 0..4)
            .prop_map(|v| toml::Value::Array(v.into_iter().map(toml::Value::Integer).collect())),
    ]
}

fn toml_value(keys: Vec<String>) -> impl Strategy<Value = toml::Value> {
    toml_leaf().prop_recursive(2, 12, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(toml::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(keys.clone()).prop_map(|k| k
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_string()),
                inner,
                0..3
            )
            .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

fn toml_table(keys: Vec<String>) -> impl Strategy<Value = toml::Table> {
    prop::collection::btree_map(prop::sample::select(keys.clone()), toml_value(keys), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

/// Runs `TrainConfig::layered` and, for an `Ok`, `validate()`: no panic, one-line errors,
/// bounded memory, and an `Ok` config survives a TOML round trip as a layer.
fn check_layers(layers: &[(&str, toml::Table)]) -> Result<(), TestCaseError> {
    let (r, peak) = peak_bytes(|| no_panic("layered", || TrainConfig::layered(layers)));
    prop_assert!(peak < 4 * MIB, "layered held {peak} bytes");
    match r? {
        Ok(c) if known_gap(&c) => {}
        Ok(c) => {
            let (v, peak) = peak_bytes(|| no_panic("validate", || c.validate()));
            prop_assert!(peak < 4 * MIB, "validate held {peak} bytes");
            if let Err(e) = v? {
                one_line(&e)?;
            }
            let t = no_panic("serialise", || toml::Table::try_from(&c))?
                .map_err(|e| TestCaseError::fail(format!("serialise: {e}")))?;
            let mut again = TrainConfig::layered(&[("again", t)])
                .map_err(|e| TestCaseError::fail(format!("round trip: {e}")))?;
            // Under the data rule, a config whose `[init]` holds no chosen values names
            // `network.hidden_init_std` (and the readout's) explicitly once serialised, which
            // pins them (`TrainConfig::layered`); a run's `config.toml` holds the calibrated
            // values, so it is stable. Everything else must survive the round trip.
            if c.init.rule == eventprop_train::init::InitRule::Data {
                again.init.hidden_std.clone_from(&c.init.hidden_std);
                again.init.readout_mean = c.init.readout_mean;
                again.init.readout_std = c.init.readout_std;
            }
            // NaN != NaN: compare the serialised forms.
            prop_assert_eq!(
                format!("{again:?}"),
                format!("{c:?}"),
                "layered config changes on a round trip"
            );
        }
        Err(e) => one_line(&e)?,
    }
    Ok(())
}

/// `TrainConfig::layered` over arbitrary tables of known and unknown keys with values of
/// every type (two layers: the second overrides the first).
#[test]
fn fuzz_config_layered() {
    let keys = config_keys();
    let start = std::time::Instant::now();
    runner(CASES_CONFIG)
        .run(&(toml_table(keys.clone()), toml_table(keys)), |(a, b)| {
            check_layers(&[("file.toml", a), ("flags", b)])
        })
        .unwrap();
    eprintln!(
        "fuzz_config_layered: {CASES_CONFIG} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// `TrainConfig::from_toml_file` on byte-mutated config texts (the corpus, and every
/// preset written as TOML).
#[test]
fn fuzz_config_file() {
    let mut seeds: Vec<Vec<u8>> = corpus("config").into_iter().map(|(_, b)| b).collect();
    for engine in [EngineKind::Stepped, EngineKind::Exact] {
        seeds.push(
            toml::to_string(&TrainConfig::preset(engine))
                .unwrap()
                .into_bytes(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let start = std::time::Instant::now();
    runner(CASES_CONFIG_FILE)
        .run(
            &(0..seeds.len(), prop::collection::vec(byte_edit(), 1..5)),
            |(seed, edits)| {
                let mut bytes = seeds[seed].clone();
                for e in &edits {
                    apply(&mut bytes, e);
                }
                std::fs::write(&path, &bytes).unwrap();
                let (r, peak) = peak_bytes(|| {
                    no_panic("from_toml_file", || TrainConfig::from_toml_file(&path))
                });
                prop_assert!(peak < 4 * MIB, "from_toml_file held {peak} bytes");
                match r? {
                    Ok(c) if known_gap(&c) => {}
                    Ok(c) => {
                        let (v, _) = peak_bytes(|| no_panic("validate", || c.validate()));
                        if let Err(e) = v? {
                            one_line(&e)?;
                        }
                    }
                    Err(e) => one_line(&e)?,
                }
                Ok(())
            },
        )
        .unwrap();
    eprintln!(
        "fuzz_config_file: {CASES_CONFIG_FILE} cases in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
