//! Results as CSV: one row per rate run, appended by `loadgen --csv FILE`
//! and read back by the `charts` example.
//!
//! The columns are [`COLUMNS`]; a file is created with that header and
//! appended to only while its header is the same. Rates are per second,
//! latencies in milliseconds, CPU in cores (1.0 = one core busy); a number
//! that was not measured (no samples, no `--server-pid`) is left empty.
//! Fields with a comma or a quote are quoted as RFC 4180 says.

use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;

use anyhow::{bail, Context as _};

use super::scenarios::Measured;

/// The header, in order. `receivers_per_msg` (last, after the label) is
/// how many measured receivers each message goes to: offered deliveries
/// per second are `offered_rate × receivers_per_msg`.
pub const COLUMNS: [&str; 14] = [
    "scenario",
    "transport",
    "offered_rate",
    "achieved_rate",
    "deliveries_per_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "generator_cpu",
    "server_cpu",
    "label",
    "receivers_per_msg",
];

/// One run.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `direct` or `fanout`.
    pub scenario: String,
    /// `tcp` or `ws`.
    pub transport: String,
    /// Messages per second offered.
    pub offered_rate: f64,
    /// Messages per second sent.
    pub achieved_rate: f64,
    /// Deliveries per second measured at the receivers.
    pub deliveries_per_s: f64,
    /// Median send-to-delivery time.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Slowest delivery.
    pub max_ms: Option<f64>,
    /// The generator's CPU, in cores.
    pub generator_cpu: Option<f64>,
    /// The server's CPU, in cores.
    pub server_cpu: Option<f64>,
    /// Free text naming the configuration (`--label`), e.g. "2 cores".
    pub label: String,
    /// Measured receivers per message (1 for `direct`); `None` when read
    /// from a file without that column.
    pub receivers_per_msg: Option<f64>,
}

impl Row {
    /// The row of a `scenario` run over `transport` that measured `m`.
    pub fn new(scenario: &str, transport: &str, m: &Measured, label: &str) -> Row {
        let l = m.latency;
        Row {
            scenario: scenario.to_owned(),
            transport: transport.to_owned(),
            offered_rate: m.offered_rate,
            achieved_rate: m.achieved_rate,
            deliveries_per_s: m.deliveries_per_s,
            p50_ms: l.map(|l| l.p50_ms),
            p90_ms: l.map(|l| l.p90_ms),
            p99_ms: l.map(|l| l.p99_ms),
            p999_ms: l.map(|l| l.p999_ms),
            max_ms: l.map(|l| l.max_ms),
            generator_cpu: m.generator_cpu,
            server_cpu: m.server_cpu,
            label: label.to_owned(),
            receivers_per_msg: Some(m.receivers_per_msg),
        }
    }

    /// Offered deliveries per second: the x of a chart. For a file
    /// without `receivers_per_msg`, estimated from the deliveries per
    /// message sent.
    pub fn offered_deliveries(&self) -> f64 {
        let per_msg = self.receivers_per_msg.unwrap_or_else(|| {
            if self.achieved_rate > 0.0 {
                self.deliveries_per_s / self.achieved_rate
            } else {
                1.0
            }
        });
        self.offered_rate * per_msg
    }

    /// The row as a CSV line (no newline).
    pub fn to_line(&self) -> String {
        let num = |v: f64, places: usize| format!("{v:.places$}");
        let opt = |v: Option<f64>, places: usize| v.map_or(String::new(), |v| num(v, places));
        let fields = [
            quote(&self.scenario),
            quote(&self.transport),
            num(self.offered_rate, 1),
            num(self.achieved_rate, 1),
            num(self.deliveries_per_s, 1),
            opt(self.p50_ms, 3),
            opt(self.p90_ms, 3),
            opt(self.p99_ms, 3),
            opt(self.p999_ms, 3),
            opt(self.max_ms, 3),
            opt(self.generator_cpu, 3),
            opt(self.server_cpu, 3),
            quote(&self.label),
            opt(self.receivers_per_msg, 0),
        ];
        fields.join(",")
    }
}

/// `s` as one CSV field: quoted if it holds a comma or a quote; line
/// breaks become spaces (one row is one line).
fn quote(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Appends `row` to the CSV file at `path`, creating it with the header
/// if it does not exist or is empty; refuses a file with another header.
pub fn append(path: &Path, row: &Row) -> anyhow::Result<()> {
    let header = COLUMNS.join(",");
    let first = match std::fs::File::open(path) {
        Ok(f) => BufReader::new(f).lines().next().transpose()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    let mut out = String::new();
    match first {
        None => out.push_str(&format!("{header}\n")),
        Some(h) if h.trim_end() == header => {}
        Some(h) => bail!(
            "{} has the header {h:?}, not {header:?}: give another --csv file",
            path.display()
        ),
    }
    out.push_str(&row.to_line());
    out.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .with_context(|| format!("append to {}", path.display()))
}

/// Reads the rows of the CSV file at `path`, by header name (columns
/// may be in any order; `receivers_per_msg` may be missing).
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses CSV text with a header line (see [`read`]); blank lines are
/// skipped.
pub fn parse(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("no header line");
    };
    let names = split(header)?;
    let cols = Columns { names: &names };
    lines
        .map(|(n, line)| {
            let fields = split(line).and_then(|f| cols.row(&f));
            fields.with_context(|| format!("line {}", n + 1))
        })
        .collect()
}

/// The header of a file being read: where each column is.
struct Columns<'a> {
    names: &'a [String],
}

impl Columns<'_> {
    fn row(&self, f: &[String]) -> anyhow::Result<Row> {
        if f.len() != self.names.len() {
            bail!("{} fields, the header has {}", f.len(), self.names.len());
        }
        Ok(Row {
            scenario: self.text(f, "scenario")?,
            transport: self.text(f, "transport")?,
            offered_rate: self.req(f, "offered_rate")?,
            achieved_rate: self.req(f, "achieved_rate")?,
            deliveries_per_s: self.req(f, "deliveries_per_s")?,
            p50_ms: self.opt(f, "p50_ms")?,
            p90_ms: self.opt(f, "p90_ms")?,
            p99_ms: self.opt(f, "p99_ms")?,
            p999_ms: self.opt(f, "p999_ms")?,
            max_ms: self.opt(f, "max_ms")?,
            generator_cpu: self.opt(f, "generator_cpu")?,
            server_cpu: self.opt(f, "server_cpu")?,
            label: self.text(f, "label")?,
            receivers_per_msg: self.opt(f, "receivers_per_msg")?,
        })
    }

    fn field<'f>(&self, f: &'f [String], name: &str) -> Option<&'f str> {
        let i = self.names.iter().position(|n| n == name)?;
        f.get(i).map(String::as_str)
    }

    fn text(&self, f: &[String], name: &str) -> anyhow::Result<String> {
        Ok(self
            .field(f, name)
            .with_context(|| format!("no column {name}"))?
            .to_owned())
    }

    fn opt(&self, f: &[String], name: &str) -> anyhow::Result<Option<f64>> {
        match self.field(f, name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => Ok(Some(v.parse().with_context(|| format!("{name}: {v:?}"))?)),
        }
    }

    fn req(&self, f: &[String], name: &str) -> anyhow::Result<f64> {
        self.opt(f, name)?
            .with_context(|| format!("{name} is missing"))
    }
}

/// Splits one CSV line into fields, undoing [`quote`].
fn split(line: &str) -> anyhow::Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        bail!("unterminated quote");
    }
    fields.push(field);
    Ok(fields)
}

/// One line of a chart: a label's points, by x.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend: the label, with the transport when a file mixes them.
    pub name: String,
    /// `(x, y)`, sorted by x.
    pub points: Vec<(f64, f64)>,
}

/// The p99 latency of `scenario`'s rows against offered deliveries per
/// second (= offered messages per second for `direct`), one series per
/// label (per label and transport, for a label run over both), in the
/// order they first appear. Rows without a p99 are left out.
pub fn p99_series(rows: &[Row], scenario: &str) -> Vec<Series> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.scenario == scenario).collect();
    let mixed = |label: &str| {
        let mut t = rows
            .iter()
            .filter(|r| r.label == label)
            .map(|r| &r.transport);
        let first = t.next();
        t.any(|x| Some(x) != first)
    };
    let mut out: Vec<Series> = Vec::new();
    for r in &rows {
        let Some(p99) = r.p99_ms else { continue };
        let label = if r.label.is_empty() {
            "(no label)"
        } else {
            &r.label
        };
        let name = if mixed(&r.label) {
            format!("{label}, {}", r.transport)
        } else {
            label.to_owned()
        };
        let point = (r.offered_deliveries(), p99);
        match out.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => out.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::stats::Latency;

    fn measured(rate: f64, receivers: f64) -> Measured {
        Measured {
            offered_rate: rate,
            achieved_rate: rate * 0.99,
            deliveries_per_s: rate * receivers * 0.98,
            receivers_per_msg: receivers,
            latency: Some(Latency {
                p50_ms: 1.25,
                p90_ms: 2.5,
                p99_ms: rate / 1000.0,
                p999_ms: 9.0,
                max_ms: 12.0,
                samples: 100,
            }),
            generator_cpu: Some(0.5),
            server_cpu: None,
        }
    }

    #[test]
    fn rows_written_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let a = Row::new("direct", "tcp", &measured(1000.0, 1.0), "2 cores");
        let b = Row::new("fanout", "ws", &measured(250.0, 990.0), "say \"hi\", twice");
        append(&path, &a).unwrap();
        append(&path, &b).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(COLUMNS.join(",").as_str()));
        assert_eq!(text.lines().count(), 3);
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].label, "2 cores");
        assert_eq!(back[0].p99_ms, Some(1.0));
        assert_eq!(back[0].server_cpu, None);
        assert_eq!(back[1].label, "say \"hi\", twice");
        assert_eq!(back[1].offered_deliveries(), 250.0 * 990.0);
    }

    #[test]
    fn a_file_with_another_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "a,b,c\n1,2,3\n").unwrap();
        let row = Row::new("direct", "tcp", &measured(10.0, 1.0), "");
        assert!(append(&path, &row).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b,c\n1,2,3\n");
    }

    #[test]
    fn a_hand_written_file_without_receivers_per_msg() {
        let text = "label,scenario,transport,offered_rate,achieved_rate,deliveries_per_s,p99_ms\n\
                    x,fanout,tcp,100,100,99000,5.5\n\
                    \n\
                    x,direct,tcp,100,100,100,\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].offered_deliveries(), 99000.0);
        assert_eq!(rows[1].p99_ms, None);
        assert!(parse("scenario,offered_rate\ndirect\n").is_err());
        assert!(parse("scenario\n\"direct\n").is_err());
    }

    #[test]
    fn series_per_label_sorted_by_offered_deliveries() {
        let row = |s: &str, t: &str, rate: f64, label: &str| {
            let recv = if s == "fanout" { 10.0 } else { 1.0 };
            Row::new(s, t, &measured(rate, recv), label)
        };
        let rows = [
            row("direct", "tcp", 2000.0, "1 core"),
            row("direct", "tcp", 1000.0, "1 core"),
            row("direct", "tcp", 1000.0, "2 cores"),
            row("fanout", "tcp", 100.0, "2 cores"),
            row("fanout", "ws", 200.0, "2 cores"),
            row("fanout", "ws", 300.0, "1 core"),
        ];
        let d = p99_series(&rows, "direct");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "1 core");
        assert_eq!(d[0].points, vec![(1000.0, 1.0), (2000.0, 2.0)]);
        let f = p99_series(&rows, "fanout");
        let names: Vec<&str> = f.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["2 cores, tcp", "2 cores, ws", "1 core"]);
        assert_eq!(f[1].points, vec![(2000.0, 0.2)]);
        assert!(p99_series(&rows, "idle").is_empty());
    }
}
