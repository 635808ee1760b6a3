//! Figures of a trained network as PNG files, as pure functions of their data: the
//! predicted class over a 2-D input square ([`class_map_png`], the Yin-Yang figure), spike
//! rasters ([`raster_png`]) and a confusion matrix ([`confusion_png`], with
//! [`confusion_matrix`] to count one).
//!
//! Each figure is drawn with plotters into an in-memory RGB buffer (with the embedded
//! DejaVu Sans font of [`crate::plot`]), encoded as PNG with the `png` crate and written
//! with [`write_atomic`], so a reader never sees a half-written file and a failed write
//! leaves no temporary file. Arguments are checked first: bad input is an
//! [`Error::Invalid`] naming the argument, never a panic.

use std::path::Path;

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::plot::ensure_font;
use eventprop_data::fsio::write_atomic;

/// A test point of a [`class_map_png`]: its input coordinates, true and predicted class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// First input coordinate.
    pub x: f64,
    /// Second input coordinate.
    pub y: f64,
    /// The true class.
    pub label: usize,
    /// The class the network predicted.
    pub predicted: usize,
}

/// One panel of a [`raster_png`]: the spikes of one sample, layer by layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RasterPanel {
    /// Shown above the panel (e.g. the sample's class).
    pub title: String,
    /// The layers, drawn from the bottom up: the first (the input) at the bottom.
    pub layers: Vec<RasterLayer>,
}

/// The spikes of one layer in a [`RasterPanel`].
#[derive(Debug, Clone, PartialEq)]
pub struct RasterLayer {
    /// Shown at the top left of the layer's strip (e.g. `input`, `hidden 1`).
    pub name: String,
    /// The number of neurons (the height of the strip); events name neurons below it.
    pub n_neurons: usize,
    /// The spikes as `(time in seconds, neuron index)`.
    pub events: Vec<(f64, u32)>,
}

/// The most panels of one [`raster_png`] (the image grows with their number).
pub const MAX_PANELS: usize = 64;
/// The most layers of one [`RasterPanel`] (each needs a strip of the panel's height).
pub const MAX_LAYERS: usize = 8;
/// The most classes of one [`confusion_png`].
pub const MAX_CLASSES: usize = 1000;
/// The largest class-map grid side ([`class_map_png`]).
pub const MAX_GRID: usize = 1000;

const FONT: &str = "sans-serif";

/// Class colours: matplotlib's tab10, then the light tab20 tones; repeated beyond 20.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `c` mixed with white (`w` = the share of white).
fn lighten(c: RGBColor, w: f64) -> RGBColor {
    let m = |v: u8| (f64::from(v) * (1.0 - w) + 255.0 * w).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Drawn = std::result::Result<(), String>;

fn de(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A text style of `size` pixels anchored at `pos`.
fn text(size: u32, pos: Pos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(pos)
}

/// Draws into a white `size` image with `draw`, then encodes and writes it to `path`.
fn render(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<()> {
    ensure_font();
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(de)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(de))
            .map_err(|e| Error::format(path, format!("plot: {e}")))?;
    }
    let bytes = encode_png(size.0, size.1, &buf)
        .map_err(|e| Error::format(path, format!("PNG encoding: {e}")))?;
    Ok(write_atomic(path, &bytes)?)
}

/// The fraction `num / den` as a percentage with one decimal.
fn percent(num: usize, den: usize) -> String {
    format!("{:.1}%", 100.0 * num as f64 / den as f64)
}

/// `s` cut (with `…`) so that it is at most `max_px` wide in `style` on `area`.
fn fit(area: &Area<'_>, s: &str, style: &TextStyle<'_>, max_px: u32) -> String {
    let width = |t: &str| area.estimate_text_size(t, style).map_or(0, |(w, _)| w);
    if width(s) <= max_px {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    for n in (0..chars.len()).rev() {
        let t: String = chars[..n].iter().chain(['…'].iter()).collect();
        if width(&t) <= max_px {
            return t;
        }
    }
    String::new()
}

// ---------------------------------------------------------------------------------------
// Class map

/// Renders the predicted class over a 2-D input square with test points on top, as a PNG at
/// `path` (the standard Yin-Yang figure).
///
/// * `grid[[row, col]]` is the predicted class of the cell at column `col` (from `x0`) and
///   row `row` (from `y0`, the bottom), over `extent = [x0, x1, y0, y1]`; cells are drawn in
///   a light tone of the class colour.
/// * `points` are drawn as dots in the colour of their true label; a misclassified point
///   (`predicted != label`) gets a black ring. Points outside `extent` are not drawn but
///   count in the accuracy.
/// * `class_names[k]` names class `k` in the legend; the title gets the accuracy over
///   `points`.
///
/// # Errors
/// [`Error::Invalid`] naming the argument for an empty grid (or one larger than
/// [`MAX_GRID`] a side), an extent that is not finite with `x0 < x1`, `y0 < y1`, no class
/// names, no points, a non-finite point, or a class (in `grid` or `points`) without a name;
/// [`Error::Format`] when rendering fails, [`Error::Io`] when the file cannot be written.
pub fn class_map_png(
    path: &Path,
    grid: &Array2<usize>,
    extent: [f64; 4],
    points: &[Point],
    class_names: &[&str],
    title: &str,
) -> Result<()> {
    let (rows, cols) = grid.dim();
    if rows == 0 || cols == 0 || rows > MAX_GRID || cols > MAX_GRID {
        return Err(Error::invalid(
            "grid",
            format!("between 1×1 and {MAX_GRID}×{MAX_GRID} cells"),
            format!("{rows}×{cols}"),
        ));
    }
    let [x0, x1, y0, y1] = extent;
    if !(extent.iter().all(|v| v.is_finite()) && x0 < x1 && y0 < y1) {
        return Err(Error::invalid(
            "extent",
            "finite [x0, x1, y0, y1] with x0 < x1 and y0 < y1",
            format!("{extent:?}"),
        ));
    }
    let n_classes = class_names.len();
    if n_classes == 0 {
        return Err(Error::invalid("class_names", "at least one name", "none"));
    }
    if let Some(((r, c), k)) = grid.indexed_iter().find(|(_, &k)| k >= n_classes) {
        return Err(Error::invalid(
            "grid",
            format!("classes below {n_classes} (the number of class names)"),
            format!("class {k} at [{r}, {c}]"),
        ));
    }
    if points.is_empty() {
        return Err(Error::invalid("points", "at least one point", "none"));
    }
    for (i, p) in points.iter().enumerate() {
        if !(p.x.is_finite() && p.y.is_finite()) {
            return Err(Error::invalid(
                "points",
                "finite coordinates",
                format!("point {i} at ({}, {})", p.x, p.y),
            ));
        }
        if p.label >= n_classes || p.predicted >= n_classes {
            return Err(Error::invalid(
                "points",
                format!("label and predicted below {n_classes} (the number of class names)"),
                format!(
                    "point {i} with label {}, predicted {}",
                    p.label, p.predicted
                ),
            ));
        }
    }
    let correct = points.iter().filter(|p| p.label == p.predicted).count();
    let caption = format!(
        "{title} — accuracy {} ({correct} of {} points)",
        percent(correct, points.len()),
        points.len()
    );
    const SIZE: (u32, u32) = (880, 720);
    const LEGEND_W: u32 = 190;
    render(path, SIZE, |root| {
        let (head, body) = root.split_vertically(44);
        head.draw(&Text::new(
            caption.clone(),
            (SIZE.0 as i32 / 2, 24),
            text(22, Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(de)?;
        let (left, legend) = body.split_horizontally(SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&left)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT, 14))
            .draw()
            .map_err(de)?;
        let (dx, dy) = ((x1 - x0) / cols as f64, (y1 - y0) / rows as f64);
        chart
            .draw_series(grid.indexed_iter().map(|((r, c), &k)| {
                let (cx, cy) = (x0 + c as f64 * dx, y0 + r as f64 * dy);
                Rectangle::new(
                    [(cx, cy), (cx + dx, cy + dy)],
                    lighten(color(k), 0.65).filled(),
                )
            }))
            .map_err(de)?;
        let inside = |p: &&Point| (x0..=x1).contains(&p.x) && (y0..=y1).contains(&p.y);
        chart
            .draw_series(
                points
                    .iter()
                    .filter(inside)
                    .map(|p| Circle::new((p.x, p.y), 3, color(p.label).filled())),
            )
            .map_err(de)?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(inside)
                    .filter(|p| p.label != p.predicted)
                    .map(|p| Circle::new((p.x, p.y), 6, BLACK.stroke_width(2))),
            )
            .map_err(de)?;
        // The legend, drawn by hand in the right strip.
        let style = text(15, Pos::new(HPos::Left, VPos::Center));
        let small = text(13, Pos::new(HPos::Left, VPos::Center));
        let line = 24;
        let mut y = 30;
        let max_rows = ((SIZE.1 as i32 - 140) / line).max(1) as usize;
        for (k, name) in class_names.iter().enumerate().take(max_rows) {
            let c = color(k);
            legend
                .draw(&Rectangle::new(
                    [(8, y - 9), (26, y + 9)],
                    lighten(c, 0.65).filled(),
                ))
                .map_err(de)?;
            legend
                .draw(&Circle::new((17, y), 4, c.filled()))
                .map_err(de)?;
            let name = fit(&legend, name, &style, LEGEND_W - 44);
            legend
                .draw(&Text::new(name, (34, y), style.clone()))
                .map_err(de)?;
            y += line;
        }
        if n_classes > max_rows {
            let more = format!("… {} more", n_classes - max_rows);
            legend
                .draw(&Text::new(more, (34, y), style.clone()))
                .map_err(de)?;
            y += line;
        }
        y += line / 2;
        legend
            .draw(&Circle::new((17, y), 6, BLACK.stroke_width(2)))
            .map_err(de)?;
        legend
            .draw(&Text::new("misclassified", (34, y), style.clone()))
            .map_err(de)?;
        y += line + line / 2;
        for s in ["cells: predicted class", "dots: true class"] {
            legend
                .draw(&Text::new(s, (8, y), small.clone()))
                .map_err(de)?;
            y += line - 4;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Raster

/// Renders spike rasters as a PNG at `path`: one panel per entry of `panels` (e.g. one
/// sample per class) in a grid of rows and columns, each with its layers stacked from the
/// bottom up (the first layer, the input, at the bottom), a dot per spike at (time in ms,
/// neuron index) over `0..t_max` seconds. Spikes after `t_max` or before 0 are not drawn.
///
/// # Errors
/// [`Error::Invalid`] naming the argument for no panels (or more than [`MAX_PANELS`]), a
/// `t_max` that is not finite and positive, a panel without layers (or more than
/// [`MAX_LAYERS`]), a layer without
/// neurons, a non-finite spike time or a spike of a neuron beyond the layer's size;
/// [`Error::Format`] when rendering fails, [`Error::Io`] when the file cannot be written.
pub fn raster_png(path: &Path, panels: &[RasterPanel], t_max: f64, title: &str) -> Result<()> {
    if panels.is_empty() || panels.len() > MAX_PANELS {
        return Err(Error::invalid(
            "panels",
            format!("between 1 and {MAX_PANELS} panels"),
            panels.len(),
        ));
    }
    if !(t_max.is_finite() && t_max > 0.0) {
        return Err(Error::invalid(
            "t_max",
            "a finite time > 0 (seconds)",
            t_max,
        ));
    }
    for (p, panel) in panels.iter().enumerate() {
        if panel.layers.is_empty() || panel.layers.len() > MAX_LAYERS {
            return Err(Error::invalid(
                "panels",
                format!("between 1 and {MAX_LAYERS} layers per panel"),
                format!(
                    "panel {p} ('{}') with {} layers",
                    panel.title,
                    panel.layers.len()
                ),
            ));
        }
        for (l, layer) in panel.layers.iter().enumerate() {
            if layer.n_neurons == 0 {
                return Err(Error::invalid(
                    "panels",
                    "at least one neuron per layer",
                    format!(
                        "panel {p} ('{}'), layer {l} ('{}') with 0 neurons",
                        panel.title, layer.name
                    ),
                ));
            }
            let bad = layer
                .events
                .iter()
                .enumerate()
                .find(|(_, &(t, n))| !t.is_finite() || n as usize >= layer.n_neurons);
            if let Some((k, &(t, n))) = bad {
                return Err(Error::invalid(
                    "panels",
                    format!(
                        "spikes at finite times of neurons below the layer size {}",
                        layer.n_neurons
                    ),
                    format!(
                        "panel {p} ('{}'), layer {l} ('{}'), spike {k}: neuron {n} at t = {t}",
                        panel.title, layer.name
                    ),
                ));
            }
        }
    }
    const PANEL: (u32, u32) = (360, 290);
    const TITLE_H: u32 = 44;
    let n = panels.len();
    let cols = ((n as f64 * 1.5).sqrt().ceil() as usize).clamp(1, n);
    let rows = n.div_ceil(cols);
    let size = (PANEL.0 * cols as u32, TITLE_H + PANEL.1 * rows as u32);
    let t_ms = t_max * 1e3;
    render(path, size, |root| {
        let (head, body) = root.split_vertically(TITLE_H);
        head.draw(&Text::new(
            title.to_string(),
            (size.0 as i32 / 2, TITLE_H as i32 / 2),
            text(22, Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(de)?;
        let xs: Vec<u32> = (1..cols).map(|c| c as u32 * PANEL.0).collect();
        let ys: Vec<u32> = (1..rows).map(|r| r as u32 * PANEL.1).collect();
        let cells = body.split_by_breakpoints(xs, ys);
        for (panel, cell) in panels.iter().zip(&cells) {
            draw_panel(cell, panel, t_ms)?;
        }
        Ok(())
    })
}

fn draw_panel(cell: &Area<'_>, panel: &RasterPanel, t_ms: f64) -> Drawn {
    const X_LABELS: u32 = 40;
    const NAME_H: u32 = 15;
    let cell = cell.margin(4, 4, 6, 10);
    let inner = cell.titled(&panel.title, (FONT, 16)).map_err(de)?;
    let (_, h) = inner.dim_in_pixel();
    // Strip heights: proportional to the layer size, but each at least a third of the
    // largest (an input of 2 neurons stays visible next to 200 hidden ones); each strip
    // has a line for its name on top, the bottom one also the time axis.
    let max_n = panel.layers.iter().map(|l| l.n_neurons).max().unwrap_or(1) as f64;
    let weights: Vec<f64> = panel
        .layers
        .iter()
        .rev()
        .map(|l| (l.n_neurons as f64).max(max_n / 3.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let plot_h = h.saturating_sub(X_LABELS) as f64;
    let mut breaks = Vec::new();
    let mut acc = 0.0;
    for w in &weights[..weights.len() - 1] {
        acc += w;
        breaks.push((plot_h * acc / total).round() as u32);
    }
    let strips = inner.split_by_breakpoints(Vec::<u32>::new(), breaks);
    let n_layers = panel.layers.len();
    for (i, (layer, strip)) in panel.layers.iter().rev().zip(&strips).enumerate() {
        let bottom = i + 1 == n_layers;
        let ymax = layer.n_neurons as f64 - 0.5;
        let (_, strip_h) = strip.dim_in_pixel();
        let y_ticks = (strip_h.saturating_sub(NAME_H) / 22).clamp(2, 5) as usize;
        let mut chart = ChartBuilder::on(strip)
            .margin_top(NAME_H)
            .x_label_area_size(if bottom { X_LABELS } else { 0 })
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..t_ms, -0.5..ymax)
            .map_err(de)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .label_style((FONT, 12))
            .y_labels(y_ticks.min(layer.n_neurons))
            .y_label_formatter(&|v| format!("{}", v.round()))
            .x_labels(5)
            .x_label_formatter(&|v| format!("{v}"));
        if bottom {
            mesh.x_desc("time (ms)");
        }
        mesh.draw().map_err(de)?;
        let c = color(n_layers - 1 - i);
        let r = if layer.n_neurons > 100 { 1 } else { 2 };
        chart
            .draw_series(
                layer
                    .events
                    .iter()
                    .map(|&(t, n)| (t * 1e3, f64::from(n)))
                    .filter(|&(t, _)| (0.0..=t_ms).contains(&t))
                    .map(|p| Circle::new(p, r, c.filled())),
            )
            .map_err(de)?;
        // Frame of the strip, its name on the line above.
        let area = chart.plotting_area();
        area.draw(&Rectangle::new(
            [(0.0, -0.5), (t_ms, ymax)],
            RGBColor(160, 160, 160).stroke_width(1),
        ))
        .map_err(de)?;
        let name = format!("{} ({} neurons)", layer.name, layer.n_neurons);
        let style = text(12, Pos::new(HPos::Left, VPos::Bottom));
        let (w, _) = area.dim_in_pixel();
        let name = fit(strip, &name, &style, w);
        let x = area.get_base_pixel().0 - strip.get_base_pixel().0;
        strip
            .draw(&Text::new(name, (x, NAME_H as i32 - 2), style))
            .map_err(de)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Confusion matrix

/// Counts `matrix[[true, predicted]]` over `labels` and `predicted` (equal lengths), for
/// `n_classes` classes.
///
/// # Errors
/// [`Error::Invalid`] naming the argument for `n_classes == 0` (or above
/// [`MAX_CLASSES`]), no labels, lengths that differ, or a class `>= n_classes`.
pub fn confusion_matrix(
    labels: &[usize],
    predicted: &[usize],
    n_classes: usize,
) -> Result<Array2<usize>> {
    if n_classes == 0 || n_classes > MAX_CLASSES {
        return Err(Error::invalid(
            "n_classes",
            format!("between 1 and {MAX_CLASSES}"),
            n_classes,
        ));
    }
    if labels.is_empty() {
        return Err(Error::invalid("labels", "at least one label", "none"));
    }
    if predicted.len() != labels.len() {
        return Err(Error::invalid(
            "predicted",
            format!("as many predictions as labels ({})", labels.len()),
            predicted.len(),
        ));
    }
    let mut m = Array2::zeros((n_classes, n_classes));
    for (i, (&t, &p)) in labels.iter().zip(predicted).enumerate() {
        if t >= n_classes {
            return Err(Error::invalid(
                "labels",
                format!("classes below n_classes = {n_classes}"),
                format!("{t} at index {i}"),
            ));
        }
        if p >= n_classes {
            return Err(Error::invalid(
                "predicted",
                format!("classes below n_classes = {n_classes}"),
                format!("{p} at index {i}"),
            ));
        }
        m[[t, p]] += 1;
    }
    Ok(m)
}

/// Renders a confusion matrix (`matrix[[true, predicted]]`, counts) as a heat map PNG at
/// `path`: each row normalised by its total (white = 0 to dark blue = 1, with a colour bar),
/// the counts written in the cells when there are at most 20 classes, the true class down
/// the left, the predicted class along the bottom (named by `class_names` or by index), and
/// the overall accuracy (trace / total) in the title.
///
/// # Errors
/// [`Error::Invalid`] naming the argument for a matrix that is empty, not square, larger
/// than [`MAX_CLASSES`] or all zero, or `class_names` of another length than its side;
/// [`Error::Format`] when rendering fails, [`Error::Io`] when the file cannot be written.
pub fn confusion_png(
    path: &Path,
    matrix: &Array2<usize>,
    class_names: Option<&[String]>,
    title: &str,
) -> Result<()> {
    let (r, c) = matrix.dim();
    if r == 0 || r != c || r > MAX_CLASSES {
        return Err(Error::invalid(
            "matrix",
            format!("a square matrix of 1 to {MAX_CLASSES} classes"),
            format!("{r}×{c}"),
        ));
    }
    let n = r;
    if let Some(names) = class_names {
        if names.len() != n {
            return Err(Error::invalid(
                "class_names",
                format!("{n} names (the matrix side)"),
                names.len(),
            ));
        }
    }
    let total = matrix
        .iter()
        .try_fold(0usize, |a, &v| a.checked_add(v))
        .ok_or_else(|| Error::invalid("matrix", "a total count that fits usize", "overflow"))?;
    if total == 0 {
        return Err(Error::invalid("matrix", "at least one count", "all zero"));
    }
    let correct: usize = (0..n).map(|i| matrix[[i, i]]).sum();
    let row_sums: Vec<usize> = matrix.rows().into_iter().map(|r| r.sum()).collect();
    let names: Vec<String> = match class_names {
        Some(v) => v.to_vec(),
        None => (0..n).map(|i| i.to_string()).collect(),
    };
    let caption = format!(
        "{title} — accuracy {} ({correct} of {total})",
        percent(correct, total)
    );
    let cell = (640 / n as u32).clamp(4, 120);
    let side = cell * n as u32;
    let (left, top, bottom, right) = (170u32, 60u32, 80u32, 110u32);
    let size = ((left + side + right).max(520), top + side + bottom);
    let (gx, gy) = (left as i32, top as i32);
    let cell_i = cell as i32;
    let heat = |f: f64| {
        let (lo, hi) = ((255.0, 255.0, 255.0), (8.0, 48.0, 107.0));
        let m = |a: f64, b: f64| (a + (b - a) * f.clamp(0.0, 1.0)).round() as u8;
        RGBColor(m(lo.0, hi.0), m(lo.1, hi.1), m(lo.2, hi.2))
    };
    render(path, size, |root| {
        root.draw(&Text::new(
            caption.clone(),
            (size.0 as i32 / 2, 26),
            text(20, Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(de)?;
        // Cells and counts.
        let count_size = (cell / 3).clamp(8, 16);
        let count_style = text(count_size, Pos::new(HPos::Center, VPos::Center));
        for ((t, p), &v) in matrix.indexed_iter() {
            let f = if row_sums[t] == 0 {
                0.0
            } else {
                v as f64 / row_sums[t] as f64
            };
            let (x, y) = (gx + p as i32 * cell_i, gy + t as i32 * cell_i);
            root.draw(&Rectangle::new(
                [(x, y), (x + cell_i, y + cell_i)],
                heat(f).filled(),
            ))
            .map_err(de)?;
            if n <= 20 {
                let ink = if f > 0.55 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    v.to_string(),
                    (x + cell_i / 2, y + cell_i / 2),
                    count_style.color(&ink),
                ))
                .map_err(de)?;
            }
        }
        root.draw(&Rectangle::new(
            [(gx, gy), (gx + side as i32, gy + side as i32)],
            BLACK.stroke_width(1),
        ))
        .map_err(de)?;
        // Class names: down the left (true), along the bottom (predicted). Ticks are
        // thinned so that labels are at least 14 px apart.
        // Rows are thinned so that labels are at least 14 px apart. When a name does not
        // fit under its column, the columns are numbered (thinned so that the numbers fit)
        // and the rows named `index: name`.
        let label_size = cell.clamp(10, 14);
        let y_style = text(label_size, Pos::new(HPos::Right, VPos::Center));
        let x_style = text(label_size, Pos::new(HPos::Center, VPos::Top));
        let width = |s: &str| root.estimate_text_size(s, &x_style).map_or(0, |(w, _)| w);
        let fits = names.iter().all(|s| width(s) + 4 <= cell);
        let (y_names, x_names): (Vec<String>, Vec<String>) = if fits {
            (names.clone(), names.clone())
        } else {
            let ys = match class_names {
                Some(_) => names
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("{i}: {s}"))
                    .collect(),
                None => names.clone(),
            };
            (ys, (0..n).map(|i| i.to_string()).collect())
        };
        let y_every = 14u32.div_ceil(cell) as usize;
        let x_widest = x_names.iter().map(|s| width(s)).max().unwrap_or(0);
        let x_every = (x_widest + 4).div_ceil(cell).max(1) as usize;
        for (i, s) in y_names.iter().enumerate().step_by(y_every) {
            let mid = i as i32 * cell_i + cell_i / 2;
            let s = fit(root, s, &y_style, left - 16);
            root.draw(&Text::new(s, (gx - 6, gy + mid), y_style.clone()))
                .map_err(de)?;
        }
        for (i, s) in x_names.iter().enumerate().step_by(x_every) {
            let mid = i as i32 * cell_i + cell_i / 2;
            root.draw(&Text::new(
                s.as_str(),
                (gx + mid, gy + side as i32 + 6),
                x_style.clone(),
            ))
            .map_err(de)?;
        }
        let axis = text(16, Pos::new(HPos::Center, VPos::Bottom));
        root.draw(&Text::new(
            "predicted",
            (gx + side as i32 / 2, size.1 as i32 - 16),
            axis.clone(),
        ))
        .map_err(de)?;
        root.draw(&Text::new(
            "true",
            (gx - (left as i32 - 16) / 2 - 6, gy - 6),
            axis,
        ))
        .map_err(de)?;
        // Colour bar.
        let bx = gx + side as i32 + 28;
        let steps = side.max(1) as i32;
        for s in 0..steps {
            let f = 1.0 - f64::from(s) / f64::from((steps - 1).max(1));
            root.draw(&Rectangle::new(
                [(bx, gy + s), (bx + 16, gy + s + 1)],
                heat(f).filled(),
            ))
            .map_err(de)?;
        }
        root.draw(&Rectangle::new(
            [(bx, gy), (bx + 16, gy + side as i32)],
            BLACK.stroke_width(1),
        ))
        .map_err(de)?;
        let bar_style = text(12, Pos::new(HPos::Left, VPos::Center));
        for (f, label) in [(1.0, "1"), (0.5, "0.5"), (0.0, "0")] {
            let y = gy + ((1.0 - f) * f64::from(side)).round() as i32;
            root.draw(&Text::new(label, (bx + 22, y), bar_style.clone()))
                .map_err(de)?;
        }
        root.draw(&Text::new(
            "row share",
            (bx + 8, gy - 6),
            text(12, Pos::new(HPos::Center, VPos::Bottom)),
        ))
        .map_err(de)?;
        Ok(())
    })
}

/// An 8-bit RGB image (`rgb.len() == 3 · width · height`, rows top down) as PNG bytes
/// (the `png` crate, which plotters' bitmap encoder already brings in).
fn encode_png(width: u32, height: u32, rgb: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(rgb).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Decodes a PNG with the `png` crate (signature, chunk CRCs, zlib checksum) and checks
    /// that it is 8-bit RGB; returns the size and the RGB bytes.
    fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight)
        );
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn only_file(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Where the example figures go: `EVENTPROP_FIGURES_DIR` if set (to look at them),
    /// else a temporary directory.
    fn out_dir() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::env::var_os("EVENTPROP_FIGURES_DIR")
            .map_or_else(|| tmp.path().to_path_buf(), Into::into);
        (tmp, dir)
    }

    fn invalid_arg(e: Error) -> (&'static str, String) {
        match e {
            Error::Invalid { arg, .. } => (arg, e.to_string()),
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn png_encoder_round_trips_pixels() {
        // Flat areas, a gradient, noise and repeated rows exercise every filter and the
        // match lengths and distances.
        let (w, h) = (70u32, 45u32);
        let mut rgb = Vec::new();
        let mut s = 12345u32;
        for y in 0..h {
            for x in 0..w {
                let px = if y < 10 {
                    [200, 10, 30]
                } else if y < 25 {
                    [(x * 3) as u8, (y * 5) as u8, 7]
                } else if y < 35 {
                    s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    [(s >> 24) as u8, (s >> 16) as u8, (s >> 8) as u8]
                } else {
                    [(x % 7) as u8 * 30, 0, 255]
                };
                rgb.extend_from_slice(&px);
            }
        }
        let png = encode_png(w, h, &rgb).unwrap();
        let (dw, dh, back) = decode_png(&png);
        assert_eq!((dw, dh), (w, h));
        assert_eq!(back, rgb);
        // Long runs compress: a flat 300×300 image is far below its raw size.
        let flat = vec![255u8; 300 * 300 * 3];
        let png = encode_png(300, 300, &flat).unwrap();
        assert!(png.len() < 5_000, "{} bytes", png.len());
        assert_eq!(decode_png(&png).2, flat);
    }

    #[test]
    fn confusion_matrix_counts_a_hand_computed_example() {
        let labels = [0, 0, 1, 1, 1, 2, 2, 0];
        let predicted = [0, 1, 1, 1, 2, 2, 0, 0];
        let m = confusion_matrix(&labels, &predicted, 3).unwrap();
        assert_eq!(m, array![[2, 1, 0], [0, 2, 1], [1, 0, 1]]);
        assert_eq!(m.sum(), labels.len());
    }

    #[test]
    fn confusion_matrix_rejects_bad_input() {
        let (arg, msg) = invalid_arg(confusion_matrix(&[0, 1], &[0], 2).unwrap_err());
        assert_eq!(arg, "predicted");
        assert!(msg.contains("(2)") && msg.ends_with("got 1"), "{msg}");
        let (arg, msg) = invalid_arg(confusion_matrix(&[0, 3], &[0, 1], 3).unwrap_err());
        assert_eq!(arg, "labels");
        assert!(msg.contains("3 at index 1"), "{msg}");
        let (arg, _) = invalid_arg(confusion_matrix(&[0, 1], &[0, 5], 3).unwrap_err());
        assert_eq!(arg, "predicted");
        assert_eq!(
            invalid_arg(confusion_matrix(&[], &[], 3).unwrap_err()).0,
            "labels"
        );
        assert_eq!(
            invalid_arg(confusion_matrix(&[0], &[0], 0).unwrap_err()).0,
            "n_classes"
        );
    }

    /// The Yin-Yang figure on a made-up classifier: class by the Yin-Yang rule, with the
    /// points near a boundary misclassified.
    fn yin_yang_example() -> (Array2<usize>, Vec<Point>) {
        let class = |x: f64, y: f64| {
            let (r_big, r_small) = (0.5, 0.1);
            let d = |cx: f64, cy: f64| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            let (dr, dl) = (d(0.5 + r_big / 2.0, 0.5), d(0.5 - r_big / 2.0, 0.5));
            if dr < r_small || dl < r_small {
                2
            } else if (dr > r_big / 2.0 && y > 0.5) || (dl < r_big / 2.0 && dl > r_small) {
                0
            } else {
                1
            }
        };
        let n = 60;
        let grid = Array2::from_shape_fn((n, n), |(r, c)| {
            class((c as f64 + 0.5) / n as f64, (r as f64 + 0.5) / n as f64)
        });
        let mut points = Vec::new();
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        while points.len() < 300 {
            let (x, y) = (next(), next());
            if ((x - 0.5).powi(2) + (y - 0.5).powi(2)).sqrt() > 0.5 {
                continue;
            }
            let label = class(x, y);
            let predicted = if points.len() % 17 == 0 {
                (label + 1) % 3
            } else {
                label
            };
            points.push(Point {
                x,
                y,
                label,
                predicted,
            });
        }
        (grid, points)
    }

    #[test]
    fn class_map_writes_a_png_atomically() {
        let (_tmp, dir) = out_dir();
        let p = dir.join("class_map.png");
        let (grid, points) = yin_yang_example();
        class_map_png(
            &p,
            &grid,
            [0.0, 1.0, 0.0, 1.0],
            &points,
            &["yin", "yang", "dot"],
            "Yin-Yang test",
        )
        .unwrap();
        let (w, h, rgb) = decode_png(&std::fs::read(&p).unwrap());
        assert_eq!((w, h), (880, 720));
        assert!(rgb.chunks(3).any(|c| c != [255, 255, 255]), "not blank");
        assert!(only_file(&dir).iter().all(|f| !f.contains(".tmp.")));
    }

    #[test]
    fn class_map_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        let grid = array![[0usize, 1], [2, 0]];
        let pt = |label, predicted| Point {
            x: 0.5,
            y: 0.5,
            label,
            predicted,
        };
        let names = ["a", "b", "c"];
        let ext = [0.0, 1.0, 0.0, 1.0];
        let arg = |r: Result<()>| invalid_arg(r.unwrap_err());
        assert_eq!(
            arg(class_map_png(
                &p,
                &Array2::zeros((0, 3)),
                ext,
                &[pt(0, 0)],
                &names,
                ""
            ))
            .0,
            "grid"
        );
        let (a, msg) = arg(class_map_png(
            &p,
            &array![[0usize, 3]],
            ext,
            &[pt(0, 0)],
            &names,
            "",
        ));
        assert_eq!(a, "grid");
        assert!(msg.contains("class 3 at [0, 1]"), "{msg}");
        assert_eq!(
            arg(class_map_png(
                &p,
                &grid,
                [0.0, f64::NAN, 0.0, 1.0],
                &[pt(0, 0)],
                &names,
                ""
            ))
            .0,
            "extent"
        );
        assert_eq!(
            arg(class_map_png(
                &p,
                &grid,
                [1.0, 0.0, 0.0, 1.0],
                &[pt(0, 0)],
                &names,
                ""
            ))
            .0,
            "extent"
        );
        assert_eq!(
            arg(class_map_png(&p, &grid, ext, &[], &names, "")).0,
            "points"
        );
        assert_eq!(
            arg(class_map_png(&p, &grid, ext, &[pt(0, 0)], &[], "")).0,
            "class_names"
        );
        let (a, msg) = arg(class_map_png(
            &p,
            &grid,
            ext,
            &[pt(0, 0), pt(1, 4)],
            &names,
            "",
        ));
        assert_eq!(a, "points");
        assert!(msg.contains("point 1 with label 1, predicted 4"), "{msg}");
        let nan = Point {
            x: f64::NAN,
            ..pt(0, 0)
        };
        assert_eq!(
            arg(class_map_png(&p, &grid, ext, &[nan], &names, "")).0,
            "points"
        );
        assert!(only_file(dir.path()).is_empty(), "nothing written on error");
    }

    fn raster_example(n_panels: usize) -> Vec<RasterPanel> {
        (0..n_panels)
            .map(|k| {
                let input = RasterLayer {
                    name: "input".into(),
                    n_neurons: 5,
                    events: (0..5)
                        .map(|i| (0.002 + 0.005 * ((i + k) % 5) as f64, i as u32))
                        .collect(),
                };
                let hidden = RasterLayer {
                    name: "hidden".into(),
                    n_neurons: 120,
                    events: (0..400u32)
                        .map(|i| {
                            (
                                0.03 * ((i * 37 + k as u32 * 11) % 101) as f64 / 101.0 + 0.005,
                                (i * 13) % 120,
                            )
                        })
                        .collect(),
                };
                let output = RasterLayer {
                    name: "output".into(),
                    n_neurons: 3,
                    events: vec![
                        (0.012 + 0.001 * k as f64, (k % 3) as u32),
                        (0.02, ((k + 1) % 3) as u32),
                    ],
                };
                RasterPanel {
                    title: format!("class {k} (sample {})", 10 * k),
                    layers: vec![input, hidden, output],
                }
            })
            .collect()
    }

    #[test]
    fn raster_writes_a_png_for_few_and_many_panels() {
        let (_tmp, dir) = out_dir();
        for (n, name, size) in [
            (3, "raster3.png", (1080, 334)),
            (20, "raster20.png", (2160, 1204)),
        ] {
            let p = dir.join(name);
            raster_png(
                &p,
                &raster_example(n),
                0.03,
                &format!("spikes of {n} samples"),
            )
            .unwrap();
            let (w, h, _) = decode_png(&std::fs::read(&p).unwrap());
            assert_eq!((w, h), size, "{name}");
        }
        assert!(only_file(&dir).iter().all(|f| !f.contains(".tmp.")));
    }

    #[test]
    fn raster_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.png");
        let arg = |r: Result<()>| invalid_arg(r.unwrap_err());
        assert_eq!(arg(raster_png(&p, &[], 0.03, "")).0, "panels");
        assert_eq!(
            arg(raster_png(&p, &raster_example(MAX_PANELS + 1), 0.03, "")).0,
            "panels"
        );
        assert_eq!(
            arg(raster_png(&p, &raster_example(1), f64::NAN, "")).0,
            "t_max"
        );
        assert_eq!(arg(raster_png(&p, &raster_example(1), 0.0, "")).0, "t_max");
        let mut v = raster_example(2);
        v[1].layers.clear();
        assert_eq!(arg(raster_png(&p, &v, 0.03, "")).0, "panels");
        let mut v = raster_example(2);
        v[1].layers[0].n_neurons = 0;
        assert_eq!(arg(raster_png(&p, &v, 0.03, "")).0, "panels");
        let mut v = raster_example(2);
        v[1].layers[2].events.push((f64::NAN, 0));
        let (a, msg) = arg(raster_png(&p, &v, 0.03, ""));
        assert_eq!(a, "panels");
        assert!(
            msg.contains("panel 1") && msg.contains("'output'") && msg.contains("NaN"),
            "{msg}"
        );
        let mut v = raster_example(2);
        v[0].layers[0].events.push((0.01, 5));
        let (_, msg) = arg(raster_png(&p, &v, 0.03, ""));
        assert!(
            msg.contains("neuron 5") && msg.contains("layer size 5"),
            "{msg}"
        );
        assert!(only_file(dir.path()).is_empty(), "nothing written on error");
    }

    #[test]
    fn confusion_writes_a_png_small_and_large() {
        let (_tmp, dir) = out_dir();
        let names: Vec<String> = ["yin", "yang", "dot"].map(String::from).to_vec();
        let m = array![[310, 12, 5], [20, 290, 9], [3, 4, 97]];
        let p = dir.join("confusion3.png");
        confusion_png(&p, &m, Some(&names), "Yin-Yang test").unwrap();
        let (w, h, _) = decode_png(&std::fs::read(&p).unwrap());
        assert_eq!((w, h), (170 + 360 + 110, 60 + 360 + 80));
        let n = 35;
        let big = Array2::from_shape_fn(
            (n, n),
            |(t, p)| if t == p { 50 } else { (t * 7 + p * 3) % 5 },
        );
        let long: Vec<String> = (0..n).map(|i| format!("spoken digit {i}")).collect();
        let p = dir.join("confusion35.png");
        confusion_png(&p, &big, Some(&long), "35 classes").unwrap();
        decode_png(&std::fs::read(&p).unwrap());
        assert!(only_file(&dir).iter().all(|f| !f.contains(".tmp.")));
    }

    #[test]
    fn confusion_png_rejects_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.png");
        let arg = |r: Result<()>| invalid_arg(r.unwrap_err());
        assert_eq!(
            arg(confusion_png(&p, &Array2::zeros((0, 0)), None, "")).0,
            "matrix"
        );
        let (a, msg) = arg(confusion_png(&p, &Array2::ones((2, 3)), None, ""));
        assert_eq!(a, "matrix");
        assert!(msg.ends_with("got 2×3"), "{msg}");
        assert_eq!(
            arg(confusion_png(&p, &Array2::zeros((2, 2)), None, "")).0,
            "matrix"
        );
        let names = vec!["a".to_string()];
        let (a, msg) = arg(confusion_png(&p, &Array2::ones((2, 2)), Some(&names), ""));
        assert_eq!(a, "class_names");
        assert!(msg.contains("2 names") && msg.ends_with("got 1"), "{msg}");
        assert!(only_file(dir.path()).is_empty(), "nothing written on error");
    }

    #[test]
    fn extreme_sizes_render_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let layer = |n_neurons: usize| RasterLayer {
            name: "a layer with a rather long name that cannot fit in the strip".into(),
            n_neurons,
            events: vec![
                (0.0, 0),
                (1e-9, (n_neurons - 1) as u32),
                (-1.0, 0),
                (1e9, 0),
            ],
        };
        let mut panels = raster_example(MAX_PANELS);
        panels[0].layers = (0..MAX_LAYERS)
            .map(|i| layer([1, 1_000_000][i % 2]))
            .collect();
        panels[1].layers = vec![layer(1)];
        for t_max in [1e-9, 1e6] {
            raster_png(&p, &panels, t_max, "").unwrap();
        }
        let mut v = raster_example(1);
        v[0].layers = (0..=MAX_LAYERS).map(|_| layer(2)).collect();
        assert_eq!(
            invalid_arg(raster_png(&p, &v, 1.0, "").unwrap_err()).0,
            "panels"
        );
        confusion_png(&p, &Array2::ones((1, 1)), None, "").unwrap();
        let big = Array2::from_shape_fn((MAX_CLASSES, MAX_CLASSES), |(t, p)| usize::from(t == p));
        confusion_png(&p, &big, None, "").unwrap();
        let one = [Point {
            x: 0.5,
            y: 0.5,
            label: 0,
            predicted: 0,
        }];
        class_map_png(
            &p,
            &Array2::zeros((1, 1)),
            [0.0, 1.0, 0.0, 1.0],
            &one,
            &["x"],
            "",
        )
        .unwrap();
        let many: Vec<String> = (0..40).map(|i| format!("class {i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let grid = Array2::from_shape_fn((7, 9), |(r, c)| (r * 9 + c) % 40);
        class_map_png(&p, &grid, [-1e9, 1e9, 1e-12, 2e-12], &one, &names, "").unwrap();
        decode_png(&std::fs::read(&p).unwrap());
    }

    #[test]
    fn unwritable_path_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/m.png");
        let err = confusion_png(&p, &Array2::ones((2, 2)), None, "").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }
}
