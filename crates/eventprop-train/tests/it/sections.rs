//! The config's sections (`[optim]`, `[network]`, `[stepped]`): configs and run folders
//! written before the sections existed (the settings at the top level) load to the same
//! config, a key given in both places is refused, and each section builds its component.

use eventprop_train::config::{EngineKind, TrainConfig, MOVED_KEYS};

fn load(text: &str) -> eventprop_train::Result<TrainConfig> {
    TrainConfig::layered(&[("test.toml", text.parse().unwrap())])
}

/// The flat layout of the configs written before the sections (e.g. a run folder's
/// `config.toml` of an earlier release) and the sectioned one give equal configs.
#[test]
fn flat_configs_of_earlier_releases_load_into_the_sections() {
    let flat = "engine = \"exact\"\nlr = 0.004\nlr_step = 3\nweight_clip = 2.5\n\
                hidden = [30, 20]\ntau_mem = 0.01\nreadout_init_std = 0.2\n\
                rate_reg = 0.0\n";
    let sectioned = "engine = \"exact\"\n[optim]\nlr = 0.004\nlr_step = 3\nweight_clip = 2.5\n\
                     [network]\nhidden = [30, 20]\ntau_mem = 0.01\nreadout_init_std = 0.2\n\
                     [stepped]\nrate_reg = 0.0\n";
    let a = load(flat).unwrap();
    let b = load(sectioned).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.optim.lr, 0.004);
    assert_eq!(a.optim.weight_clip, Some(2.5));
    assert_eq!(a.network.hidden, vec![30, 20]);
    assert_ne!(a, TrainConfig::preset(EngineKind::Exact));
    // Dotted keys (the command line's form) reach the same place.
    let dotted = load("engine = \"exact\"\n\"optim.lr\" = 0.004\n").unwrap();
    assert_eq!(dotted.optim.lr, 0.004);
}

/// Every moved key is accepted at the top level and lands in its section.
#[test]
fn every_moved_key_lands_in_its_section() {
    let preset = toml::Table::try_from(TrainConfig::preset(EngineKind::Stepped)).unwrap();
    for (key, section) in MOVED_KEYS {
        // The preset's value (weight_clip is absent there: a value of its own).
        let value = preset[*section]
            .get(*key)
            .cloned()
            .unwrap_or(toml::Value::Float(2.0));
        let mut layer = toml::Table::new();
        layer.insert(key.to_string(), value.clone());
        let c = TrainConfig::layered(&[("old", layer)]).unwrap_or_else(|e| panic!("{key}: {e}"));
        let back = toml::Table::try_from(&c).unwrap();
        assert_eq!(back[*section][*key], value, "{key}");
        assert!(!back.contains_key(*key), "{key}");
    }
}

/// The settings in a config written now are in the sections, none at the top level.
#[test]
fn a_written_config_has_the_sections() {
    let text = toml::to_string(&TrainConfig::preset(EngineKind::Stepped)).unwrap();
    let t: toml::Table = text.parse().unwrap();
    for (key, section) in MOVED_KEYS {
        assert!(!t.contains_key(*key), "{key} at the top level");
        assert!(
            t[*section].get(*key).is_some() || *key == "weight_clip",
            "{section}.{key}"
        );
    }
    assert_eq!(
        load(&text).unwrap(),
        TrainConfig::preset(EngineKind::Stepped)
    );
}

/// A key in both places of one layer is ambiguous: refused, naming both.
#[test]
fn a_key_in_both_places_is_refused() {
    let e = load("lr = 0.1\n[optim]\nlr = 0.2\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lr is given twice") && e.contains("optim.lr"),
        "{e}"
    );
    // In different layers the later one wins, as for every key.
    let c = TrainConfig::layered(&[
        ("a", "lr = 0.1\n".parse().unwrap()),
        ("b", "[optim]\nlr = 0.2\n".parse().unwrap()),
    ])
    .unwrap();
    assert_eq!(c.optim.lr, 0.2);
    // Unknown keys inside a section are named with their full path.
    let e = load("[optim]\nlearning_rate = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown key `optim.learning_rate`"), "{e}");
}

/// Each section builds its component alone, and names its keys in errors.
#[test]
fn sections_build_their_components() {
    let c = TrainConfig::preset(EngineKind::Stepped);
    let adam = c.optim.adam().unwrap();
    assert_eq!(adam.lr, c.optim.lr);
    assert_eq!(
        c.optim.schedule().unwrap().lr(2),
        c.optim.lr * c.optim.lr_gamma
    );
    let mut bad = c.optim.clone();
    bad.beta2 = 1.0;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("optim.beta2:"));
    let spec = c.network.spec(5, 3, false, Default::default());
    assert_eq!(spec, c.network());
    let mut bad = c.stepped;
    bad.rate_reg = f64::NAN;
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("stepped.rate_reg:"));
}

/// The presets of every task and engine, as the config wrote them before the presets moved
/// into the engines' registrations (struct literals in the config then, TOML layers in
/// each engine file now): `tests/data/presets/<task>_<engine>.toml`, written by the
/// earlier code. The move changed no value. Changed on purpose since: the `[events]`
/// delay-line keys (every preset), and the event presets' loss (`sum_exp`, not on the
/// chip), learning rate (5e-3) and lower rate target (1 spike, strength 1e-3), chosen over
/// the generated task suite (docs/measurements.md, "Event defaults over the task suite"),
/// and the chip's modelled resources (`[chip] neurons`, `input_rows`, `speedup`: event
/// data on the chip, docs/hil.md) with the chip's event preset of 128 hidden neurons (the
/// most a hidden layer may have to feed the readout through the modelled synapse rows).
#[test]
fn presets_are_those_of_the_struct_literals_they_replace() {
    use eventprop_train::config::Task;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/presets");
    for &engine in EngineKind::ALL {
        for task in [Task::Yinyang, Task::Events] {
            let file = dir.join(format!("{}_{}.toml", task.name(), engine.name()));
            let want = std::fs::read_to_string(&file).unwrap();
            let got = toml::to_string(&TrainConfig::preset_for(task, engine)).unwrap();
            assert_eq!(got, want, "{}", file.display());
        }
    }
}

/// The loss defaults of every engine (the registrations' overrides of the common ones),
/// as before they moved: chip max-over-time `reg = 4e-3`, exact first-spike the EventProp
/// paper's values with the silent-label term, everything else common.
#[test]
fn loss_defaults_per_engine() {
    use eventprop_train::loss::LossKind;
    let got = |kind: &str, e: EngineKind| format!("{:?}", LossKind::defaults(kind, e).unwrap());
    let common_fs = "FirstSpike { tau0: 1e-6, tau1: 2e-5, alpha: 0.0, silent_label_gamma: 0.0 }";
    assert_eq!(got("first_spike", EngineKind::Stepped), common_fs);
    assert_eq!(got("time", EngineKind::Chip), common_fs);
    assert_eq!(
        got("first_spike", EngineKind::Exact),
        "FirstSpike { tau0: 0.0005, tau1: 0.0064, alpha: 0.003, silent_label_gamma: 30.0 }"
    );
    assert_eq!(
        got("max_over_time", EngineKind::Chip),
        "MaxOverTime { reg: 0.004 }"
    );
    for e in [EngineKind::Stepped, EngineKind::Exact] {
        assert_eq!(got("max_over_time", e), "MaxOverTime { reg: 0.0004 }");
    }
    for &e in EngineKind::ALL {
        assert_eq!(got("sum", e), "Sum");
        assert_eq!(got("sum_exp", e), "SumExp { tau_w: None }");
        assert!(LossKind::defaults("hinge", e).is_err());
    }
}

/// Engine names round-trip through configs, and an unknown one lists the known ones.
#[test]
fn engine_names_come_from_the_registrations() {
    for &e in EngineKind::ALL {
        assert_eq!(e.name(), e.registration().name);
        assert_eq!(e.name().parse::<EngineKind>().unwrap(), e);
        let c = load(&format!("engine = \"{e}\"\n")).unwrap();
        assert_eq!(c.engine, e);
    }
    let e = load("engine = \"gpu\"\n").unwrap_err().to_string();
    assert!(
        e.contains("expected one of `stepped`, `exact`, `chip`, got `gpu`"),
        "{e}"
    );
}

/// Every section is validated whatever the task and engine read: a Yin-Yang stepped config
/// carrying a broken `[events]`, `[exact]` or `[augment]` value is refused naming the key
/// (they used to be stored in the run folder unchecked).
#[test]
fn every_section_is_checked_whatever_the_task_reads() {
    for (text, key) in [
        ("[events]\ndt = nan\n", "events.dt"),
        ("[events]\ndelay_line = 0\n", "events.delay_line"),
        ("[events]\nval_fraction = -1.0\n", "events.val_fraction"),
        ("[exact]\ngrazing_floor = -1.0\n", "exact.grazing_floor"),
        (
            "[exact]\nmax_spikes_per_neuron = 0\n",
            "exact.max_spikes_per_neuron",
        ),
        ("[chip.mock]\ncadc_period = -1.0\n", "chip.cadc_period"),
        // hidden neurons that would fire at every step without input
        ("[network]\nleak = 1e300\n", "network.threshold"),
        ("[network]\nthreshold = -1.0\n", "network.threshold"),
        ("[network]\nreset = 1.0\n", "network.reset"),
        ("[network]\ntau_mem = nan\n", "network.tau_mem"),
    ] {
        let e = load(text)
            .and_then(|c| c.validate_settings())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{key}: expected")), "{text}: {e}");
    }
}

/// Augmentation shifts at or beyond the window / the channels are allowed (a preset may
/// meet smaller data than it was made for) but warned about, with the share of draws that
/// empty a training sample: a time shift uniform in [-S, S] with S = 2 × the 38 µs window
/// moves everything out when |Δ| >= 38 µs, half the draws; a channel shift uniform in
/// [-N, N] with N = 7 over 5 channels when |s| >= 5: 6 of 15 values (40 %).
#[test]
fn augmentation_beyond_the_data_is_warned_about_with_its_share() {
    let w = load("[augment]\ntime_shift = 7.6e-5\nchannel_shift = 7\n")
        .unwrap()
        .augment_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("augment.time_shift = 0.000076 s is not below the window")
            && w[0].contains(": 50 % of the draws"),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with("augment.channel_shift = 7 is not below the 5 input channels: 40 %"),
        "{}",
        w[1]
    );
    // just below: no warning
    let w = load("[augment]\ntime_shift = 3.7e-5\nchannel_shift = 4\n")
        .unwrap()
        .augment_warnings();
    assert!(w.is_empty(), "{w:?}");
}
