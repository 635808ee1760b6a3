//! Hostile inputs of the second reliability round: each ends in one line naming the input,
//! its value and the bound (exit 1), never a panic, a hang or an out-of-memory kill.

use std::path::Path;

use crate::common::{one_line_error, run};

/// `chip calibrate --chip mock` with a `--chip-config` of `body`: the one-line error.
fn chip_config_error(dir: &Path, body: &str) -> String {
    let cfg = dir.join("chip.toml");
    std::fs::write(&cfg, body).unwrap();
    one_line_error(
        &run(
            dir,
            &[
                "chip",
                "calibrate",
                "--chip",
                "mock",
                "--chip-config",
                cfg.to_str().unwrap(),
                "--out",
                dir.join("cal.json").to_str().unwrap(),
            ],
        ),
        1,
    )
}

#[test]
fn chip_periods_and_clock_out_of_bounds_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (body, key, bound) in [
        ("cadc_period = 1e-300\n", "chip.cadc_period", "expected >= "),
        ("cadc_period = 1e-12\n", "chip.cadc_period", "expected >= "),
        ("noise_dt = 1e-300\n", "chip.noise_dt", "expected >= "),
        ("noise_dt = 1e-12\n", "chip.noise_dt", "expected >= "),
        (
            "clock_hz = 1e300\n",
            "chip.clock_hz",
            "expected in [1e3, 1e12] Hz",
        ),
        (
            "clock_hz = 10.0\n",
            "chip.clock_hz",
            "expected in [1e3, 1e12] Hz",
        ),
        ("clock_hz = 1e4\n", "chip.clock_hz", "expected >= 1/dt"),
        (
            "cadc_period = 1e-3\n",
            "chip.cadc_period",
            "<= the simulated window",
        ),
        (
            "noise_dt = 1e-3\n",
            "chip.noise_dt",
            "<= the simulated window",
        ),
        ("weight_gain = 1e300\n", "chip.weight_gain", "expected <= "),
        ("noise_std = 1e300\n", "chip.noise_std", "expected in [0, "),
        (
            "refractory = 1e300\n",
            "chip.refractory",
            "expected in [0, ",
        ),
        (
            "threshold_offset = -1e300\n",
            "chip.threshold_offset",
            "expected in [",
        ),
    ] {
        let e = chip_config_error(d, body);
        assert!(e.contains(key) && e.contains(bound), "{body}: {e}");
        assert!(e.contains("got "), "{body}: {e}");
    }
}
