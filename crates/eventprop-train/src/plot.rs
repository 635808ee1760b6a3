//! Loss and accuracy curves as a PNG (plotters, with an embedded DejaVu Sans font so that
//! no system font is needed).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;

/// DejaVu Sans (Bitstream Vera license, see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid TrueType: registration cannot fail on it.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Image size in pixels.
pub const SIZE: (u32, u32) = (1000, 420);

type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn draw(
    root: DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    metrics: &[EpochMetrics],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    let pts = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
        metrics
            .iter()
            .filter_map(|m| f(m).filter(|v| v.is_finite()).map(|v| (m.epoch as f64, v)))
            .collect()
    };
    let x_max = metrics.iter().map(|m| m.epoch).max().unwrap_or(1).max(1) as f64;
    let panels: [(&str, Vec<Series<'_>>, bool); 2] = [
        (
            "loss",
            vec![
                ("train", pts(&|m| Some(m.train_loss)), BLUE),
                ("validation", pts(&|m| m.val_loss), GREEN),
                ("test", pts(&|m| m.test_loss), RED),
            ],
            false,
        ),
        (
            "accuracy",
            vec![
                ("train", pts(&|m| Some(m.train_acc)), BLUE),
                ("validation", pts(&|m| m.val_acc), GREEN),
                ("test", pts(&|m| m.test_acc), RED),
            ],
            true,
        ),
    ];
    for (area, (title, series, is_acc)) in [left, right].into_iter().zip(panels) {
        let (lo, hi) = if is_acc {
            (0.0, 1.0)
        } else {
            let all = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
            let hi = all.fold(0.0f64, f64::max);
            (0.0, if hi > 0.0 { hi * 1.05 } else { 1.0 })
        };
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..x_max + 0.5, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, data, color) in series {
            if data.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            chart
                .draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(if is_acc {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// Renders loss (left) and accuracy (right) over epochs into a PNG at `path`, atomically
/// (rendered to a temporary `.png` in the same directory, then renamed).
///
/// # Errors
/// [`Error::Format`] when rendering fails, [`Error::Io`] when the file cannot be written.
pub fn plot_metrics(path: &Path, metrics: &[EpochMetrics]) -> Result<()> {
    ensure_font();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".plot.tmp.{}.png", std::process::id()));
    let drawn = draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area(), metrics);
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::format(path, format!("plot: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_with_text_and_curves() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("curves.png");
        let m: Vec<EpochMetrics> = (1..=3)
            .map(|e| EpochMetrics {
                epoch: e,
                lr: 1e-3,
                train_loss: 1.0 / e as f64,
                train_acc: 0.3 * e as f64,
                val_loss: Some(1.1 / e as f64),
                val_acc: Some(0.28 * e as f64),
                test_loss: None,
                test_acc: None,
                epoch_seconds: 0.1,
                train_seconds: 0.08,
                hidden_spikes_per_sample: 10.0,
                chip: None,
                augment: None,
                warnings: Vec::new(),
            })
            .collect();
        plot_metrics(&p, &m).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        // PNG signature (RFC 2083 §3.1).
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(
            bytes.len() > 5000,
            "a plot with text is not a near-empty image"
        );
    }
}
