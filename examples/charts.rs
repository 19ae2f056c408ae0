//! Charts of load generator sweeps: reads the CSV that `loadgen --csv`
//! appends to and draws the p99 send-to-delivery latency against the
//! offered load, one line per `--label`, as PNG files:
//!
//! - `bench-direct-p99.png`: `direct`, x = offered messages/s;
//! - `bench-fanout-p99.png`: `fanout`, x = offered deliveries/s (messages/s
//!   × the receivers of each message).
//!
//! ```text
//! cargo run --release --example charts -- --csv results.csv --out docs/img
//! ```
//!
//! Options: `--csv FILE` (default `results.csv`), `--out DIR` (default
//! `docs/img`, created if missing), `--font PATH` (a TrueType/OpenType
//! font for the text, read at run time so that building needs no font
//! libraries; default `/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf`,
//! Debian's `fonts-dejavu-core`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use im_examples::loadgen::results::{self, Series};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Command-line options.
struct Args {
    csv: PathBuf,
    out: PathBuf,
    font: PathBuf,
}

/// The family name the charts' text is drawn in.
const FONT: &str = "sans-serif";

/// The charts: scenario, file name, title, x axis.
const CHARTS: [(&str, &str, &str, &str); 2] = [
    (
        "direct",
        "bench-direct-p99.png",
        "1:1 messages: p99 send to delivery",
        "offered messages/s",
    ),
    (
        "fanout",
        "bench-fanout-p99.png",
        "Room fan-out: p99 send to delivery",
        "offered deliveries/s",
    ),
];

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        csv: "results.csv".into(),
        out: "docs/img".into(),
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(k) = args.next() {
        let v = args.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--csv" => a.csv = v.into(),
            "--out" => a.out = v.into(),
            "--font" => a.font = v.into(),
            _ => bail!("unknown option {k} (--csv FILE, --out DIR, --font PATH)"),
        }
    }
    Ok(a)
}

/// Registers the font file at `path` as [`FONT`]. plotters keeps fonts
/// for the life of the process, so the file's bytes are leaked (once).
fn load_font(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("read the font {} (give --font PATH)", path.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a font that can be read", path.display()))
}

fn main() -> anyhow::Result<()> {
    let a = parse()?;
    load_font(&a.font)?;
    let rows = results::read(&a.csv)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("create {}", a.out.display()))?;
    for (scenario, file, title, x_desc) in CHARTS {
        let series = results::p99_series(&rows, scenario);
        if series.is_empty() {
            println!(
                "no {scenario} rows with a p99 in {}: skipped",
                a.csv.display()
            );
            continue;
        }
        let path = a.out.join(file);
        draw(&path, title, x_desc, &series).with_context(|| format!("draw {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The axes' ranges: x from 0 past the largest x, y (log) around the
/// points' p99s.
fn bounds(series: &[Series]) -> (f64, f64, f64) {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let x_max = points().map(|p| p.0).fold(0.0, f64::max);
    let y_min = points().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max);
    // Whole decades of ms, so the log axis has labelled ticks.
    let y_lo = 10f64.powf(y_min.max(1e-3).log10().floor());
    let y_hi = 10f64.powf(y_max.max(y_lo * 10.0).log10().ceil());
    (x_max * 1.05 + 1.0, y_lo, y_hi)
}

/// `1234567` as `1,234,567`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < -0.5 {
        format!("-{out}")
    } else {
        out
    }
}

/// Draws `series` into a PNG at `path`: one line with points per series,
/// a legend, a log y axis in ms.
fn draw(path: &Path, title: &str, x_desc: &str, series: &[Series]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x_max, y_lo, y_hi) = bounds(series);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, (y_lo..y_hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("p99, ms (log scale)")
        .x_label_formatter(&|x| thousands(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
