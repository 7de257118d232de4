//! `loco-daemon report STATS.json [--progress LOG] -o report.html`: a run's
//! statistics as one self-contained HTML page. The charts are inline SVG
//! drawn here; the page loads nothing (no script, no style sheet, no font).
//!
//! - Per node (from `run --stats-json`): horizontal bars of remote page
//!   faults, bytes fetched, bytes sent home, and the time spent in page
//!   faults, releases, acquires and barriers; then a table of every counter.
//! - Over time (from `run --progress-log`, when given): one curve per node
//!   of the same counts, as the nodes on the launcher's machine wrote them
//!   about once a second.
//!
//! Every bar is an SVG `<rect class="bar">` whose `<title>` gives the
//! node, the counter's name and its exact value (`node 1: bytes_fetched =
//! 40960`); the text beside it gives the value for reading (`40.0 KiB`).

use std::fmt::Write as _;
use std::path::Path;

use crate::json::{self, Counters, Sample};

/// How a counter's values read.
#[derive(Clone, Copy)]
enum Unit {
    Count,
    Bytes,
    Nanos,
}

impl Unit {
    /// A value for reading: `1234`, `1.2 MiB`, `3.4 ms`.
    fn show(self, v: u64) -> String {
        match self {
            Unit::Count => v.to_string(),
            Unit::Bytes => bytes(v),
            Unit::Nanos => duration(v),
        }
    }
}

fn bytes(v: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if v < 1024 {
        return format!("{v} B");
    }
    let mut x = v as f64 / 1024.0;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    format!("{x:.1} {}", UNITS[unit])
}

fn duration(ns: u64) -> String {
    if ns == 0 {
        return "0".into();
    }
    let ns = ns as f64;
    if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e10 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.1} s", ns / 1e9)
    }
}

/// One counter in a chart.
struct Series {
    field: &'static str,
    /// Its name in the legend.
    name: &'static str,
    unit: Unit,
}

/// One chart: a counter or a group of counters of one unit.
struct Chart {
    id: &'static str,
    title: &'static str,
    about: &'static str,
    series: &'static [Series],
}

const CHARTS: &[Chart] = &[
    Chart {
        id: "remote-faults",
        title: "Remote page faults",
        about: "Faults served by fetching a page from another node (page_faults_remote). \
                Pages fetched along with one (read-ahead) are not counted again.",
        series: &[Series {
            field: "page_faults_remote",
            name: "remote page faults",
            unit: Unit::Count,
        }],
    },
    Chart {
        id: "bytes-fetched",
        title: "Bytes fetched",
        about: "Bytes of pages read from their home nodes by page faults, \
                read-ahead included (bytes_fetched).",
        series: &[Series {
            field: "bytes_fetched",
            name: "bytes fetched",
            unit: Unit::Bytes,
        }],
    },
    Chart {
        id: "bytes-sent",
        title: "Bytes sent home",
        about: "Modified bytes releases, acquires and evictions sent to the pages' home \
                nodes (bytes_released).",
        series: &[Series {
            field: "bytes_released",
            name: "bytes sent home",
            unit: Unit::Bytes,
        }],
    },
    Chart {
        id: "time",
        title: "Time in page faults, releases, acquires and barriers",
        about: "fault_ns: resolving missing-page faults (fetching or zero-filling and \
                installing pages), summed over the node's fault-handling threads. \
                release_ns and acquire_ns: the region's releases and acquires, waits for another \
                thread's included. omp_barrier_ns: time this node's threads waited in OpenMP \
                barriers, summed over threads; a barrier's release and acquire are inside it.",
        series: &[
            Series {
                field: "fault_ns",
                name: "page faults",
                unit: Unit::Nanos,
            },
            Series {
                field: "release_ns",
                name: "releases",
                unit: Unit::Nanos,
            },
            Series {
                field: "acquire_ns",
                name: "acquires",
                unit: Unit::Nanos,
            },
            Series {
                field: "omp_barrier_ns",
                name: "barriers",
                unit: Unit::Nanos,
            },
        ],
    },
];

/// The counters drawn over time, from the progress samples.
const CURVES: &[Series] = &[
    Series {
        field: "page_faults_remote",
        name: "Remote page faults so far",
        unit: Unit::Count,
    },
    Series {
        field: "bytes_fetched",
        name: "Bytes fetched so far",
        unit: Unit::Bytes,
    },
    Series {
        field: "bytes_released",
        name: "Bytes sent home so far",
        unit: Unit::Bytes,
    },
    Series {
        field: "omp_barriers",
        name: "OpenMP barriers so far",
        unit: Unit::Count,
    },
];

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

const WIDTH: f64 = 760.0;
/// Where bars and plots start (node names are left of it).
const LEFT: f64 = 80.0;
/// The longest bar.
const BAR_SPAN: f64 = 500.0;
const BAR: f64 = 14.0;
const ROW: f64 = 18.0;

/// Text for HTML and SVG content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The per-node bars of one chart.
fn bar_chart(chart: &Chart, nodes: &[Option<Counters>]) -> String {
    let legend = if chart.series.len() > 1 { 24.0 } else { 0.0 };
    let group = chart.series.len() as f64 * ROW + 8.0;
    let height = legend + nodes.len() as f64 * group + 8.0;
    let largest = nodes
        .iter()
        .flatten()
        .flat_map(|c| chart.series.iter().map(|s| json::count(c, s.field)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bars\" data-chart=\"{}\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"{}\">",
        chart.id,
        escape(chart.title)
    );
    if chart.series.len() > 1 {
        for (i, s) in chart.series.iter().enumerate() {
            let x = LEFT + i as f64 * 130.0;
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"14\">{}</text>",
                COLORS[i % COLORS.len()],
                x + 16.0,
                escape(s.name)
            );
        }
    }
    for (k, node) in nodes.iter().enumerate() {
        let top = legend + k as f64 * group;
        let _ = writeln!(
            svg,
            "<text class=\"node\" x=\"{}\" y=\"{}\" text-anchor=\"end\">node {k}</text>",
            LEFT - 8.0,
            top + BAR
        );
        let Some(counters) = node else {
            let _ = writeln!(
                svg,
                "<text class=\"missing\" x=\"{LEFT}\" y=\"{}\">no statistics: the node wrote none</text>",
                top + BAR
            );
            continue;
        };
        for (i, s) in chart.series.iter().enumerate() {
            let v = json::count(counters, s.field);
            let y = top + i as f64 * ROW;
            let mut w = v as f64 / largest * BAR_SPAN;
            if v > 0 {
                w = w.max(1.0);
            }
            let _ = writeln!(
                svg,
                "<rect class=\"bar\" data-node=\"{k}\" data-field=\"{}\" x=\"{LEFT}\" y=\"{y}\" \
                 width=\"{w:.1}\" height=\"{BAR}\" fill=\"{}\"><title>node {k}: {} = {v}</title></rect>\
                 <text class=\"value\" x=\"{:.1}\" y=\"{}\">{}</text>",
                s.field,
                COLORS[i % COLORS.len()],
                s.field,
                LEFT + w + 4.0,
                y + BAR - 3.0,
                escape(&s.unit.show(v)),
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// One counter over time: a curve per node that has samples.
fn curve_chart(series: &Series, samples: &[Sample], nodes: usize) -> String {
    const TOP: f64 = 30.0;
    const PLOT_W: f64 = 620.0;
    const PLOT_H: f64 = 180.0;
    let height = TOP + PLOT_H + 40.0;
    let t_max = samples.iter().map(|s| s.t).fold(0.0f64, f64::max).max(1.0);
    let v_max = samples
        .iter()
        .map(|s| json::count(&s.counters, series.field))
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |t: f64| LEFT + t / t_max * PLOT_W;
    let y = |v: u64| TOP + PLOT_H - v as f64 / v_max as f64 * PLOT_H;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"curves\" data-field=\"{}\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"{}\">",
        series.field,
        escape(series.name)
    );
    // Axes, with the ends and the middle of each labelled.
    let bottom = TOP + PLOT_H;
    let _ = writeln!(
        svg,
        "<path d=\"M{LEFT} {TOP} V{bottom} H{}\" fill=\"none\" stroke=\"#444\"/>",
        LEFT + PLOT_W
    );
    for f in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.1} s</text>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x(f * t_max),
            bottom + 16.0,
            f * t_max,
            LEFT - 6.0,
            y((f * v_max as f64) as u64) + 4.0,
            escape(&series.unit.show((f * v_max as f64) as u64)),
        );
    }
    let mut legend = 0;
    for node in 0..nodes {
        let mut points: Vec<(f64, u64)> = samples
            .iter()
            .filter(|s| s.node == node)
            .map(|s| (s.t, json::count(&s.counters, series.field)))
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = COLORS[node % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
            .collect();
        let (t_last, v_last) = points[points.len() - 1];
        let _ = writeln!(
            svg,
            "<polyline class=\"curve\" data-node=\"{node}\" points=\"{}\" fill=\"none\" \
             stroke=\"{color}\" stroke-width=\"2\"><title>node {node}: {} = {v_last} at {t_last:.1} s</title></polyline>",
            path.join(" "),
            series.field,
        );
        if points.len() == 1 {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                x(t_last),
                y(v_last)
            );
        }
        let lx = LEFT + legend as f64 * 80.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"16\">node {node}</text>",
            lx + 16.0
        );
        legend += 1;
    }
    svg.push_str("</svg>\n");
    svg
}

/// Every counter of every node, as a table (counters in the order the
/// first node that reported wrote them).
fn table(nodes: &[Option<Counters>]) -> String {
    let mut names: Vec<&String> = Vec::new();
    for c in nodes.iter().flatten() {
        for k in c.keys() {
            if k != "node" && !names.contains(&k) {
                names.push(k);
            }
        }
    }
    let mut html = String::from("<table>\n<tr><th>counter</th>");
    for k in 0..nodes.len() {
        let _ = write!(html, "<th>node {k}</th>");
    }
    html.push_str("</tr>\n");
    for name in names {
        let _ = write!(html, "<tr><td>{}</td>", escape(name));
        for node in nodes {
            let cell = match node.as_ref().and_then(|c| c.get(name.as_str())) {
                Some(v) => escape(&v.to_string()),
                None => "&ndash;".into(),
            };
            let _ = write!(html, "<td>{cell}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// The whole page.
fn page(stats: &Path, nodes: &[Option<Counters>], progress: Option<(&Path, &[Sample])>) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>LOCO run report</title>\n<style>\n\
         body { font-family: sans-serif; max-width: 62em; margin: 2em auto; padding: 0 1em; color: #222; }\n\
         svg text { font-family: sans-serif; font-size: 12px; fill: #222; }\n\
         svg text.missing { fill: #a00; }\n\
         table { border-collapse: collapse; font-size: 90%; }\n\
         th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }\n\
         th:first-child, td:first-child { text-align: left; }\n\
         </style>\n</head>\n<body>\n<h1>LOCO run report</h1>\n",
    );
    let missing = nodes.iter().filter(|n| n.is_none()).count();
    let _ = writeln!(
        html,
        "<p>Statistics of {} node{} from <code>{}</code>{}.</p>",
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        escape(&stats.display().to_string()),
        if missing > 0 {
            format!("; {missing} of them wrote none (they died before the end)")
        } else {
            String::new()
        }
    );
    html.push_str("<h2>Per node</h2>\n");
    for chart in CHARTS {
        let _ = writeln!(
            html,
            "<section id=\"{}\">\n<h3>{}</h3>\n<p>{}</p>",
            chart.id,
            escape(chart.title),
            escape(chart.about)
        );
        html.push_str(&bar_chart(chart, nodes));
        html.push_str("</section>\n");
    }
    if let Some((log, samples)) = progress {
        let drawn = samples
            .iter()
            .map(|s| s.node + 1)
            .max()
            .unwrap_or(0)
            .max(nodes.len());
        let _ = writeln!(
            html,
            "<h2>Over time</h2>\n<p>{} samples from <code>{}</code>: each node on the launcher's \
             machine wrote its counters about once a second while the program ran (nodes started \
             on other machines write none). Times are seconds since the run started.</p>",
            samples.len(),
            escape(&log.display().to_string())
        );
        for series in CURVES {
            let _ = writeln!(
                html,
                "<section id=\"over-time-{}\">\n<h3>{}</h3>",
                series.field,
                escape(series.name)
            );
            html.push_str(&curve_chart(series, samples, drawn));
            html.push_str("</section>\n");
        }
    }
    html.push_str("<h2>Every counter</h2>\n");
    html.push_str(&table(nodes));
    html.push_str("</body>\n</html>\n");
    html
}

/// `loco-daemon report`: reads the files, writes the page.
pub fn write(stats: &Path, progress: Option<&Path>, out: &Path) -> Result<(), String> {
    let nodes = json::read_stats(stats)?;
    let samples = match progress {
        Some(log) => Some((log, json::read_progress(log)?)),
        None => None,
    };
    let html = page(
        stats,
        &nodes,
        samples.as_ref().map(|(log, s)| (*log, s.as_slice())),
    );
    std::fs::write(out, html).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(text: &str) -> Counters {
        json::parse_node(text).unwrap()
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(40960), "40.0 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(0), "0");
        assert_eq!(duration(1_500), "1.5 µs");
        assert_eq!(duration(12_340_000), "12.3 ms");
        assert_eq!(duration(12_000_000_000), "12.0 s");
    }

    #[test]
    fn a_node_without_statistics_gets_a_note_instead_of_bars() {
        let nodes = vec![
            Some(counters(
                "{\"node\": 0, \"page_faults_remote\": 7, \"fault_ns\": 5000000}",
            )),
            None,
        ];
        let svg = bar_chart(&CHARTS[0], &nodes);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 1);
        assert!(svg.contains("<title>node 0: page_faults_remote = 7</title>"));
        assert!(svg.contains("no statistics"));
        let time = bar_chart(&CHARTS[3], &nodes);
        assert_eq!(time.matches("<rect class=\"bar\"").count(), 4);
        assert!(time.contains(">5.0 ms</text>"), "{time}");
    }

    #[test]
    fn curves_have_one_line_per_node_with_samples() {
        let sample = |t: f64, node: usize, faults: u64| Sample {
            t,
            node,
            counters: counters(&format!(
                "{{\"node\": {node}, \"page_faults_remote\": {faults}}}"
            )),
        };
        let samples = vec![sample(1.0, 0, 3), sample(2.0, 0, 9), sample(1.5, 2, 4)];
        let svg = curve_chart(&CURVES[0], &samples, 3);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("node 0: page_faults_remote = 9 at 2.0 s"),
            "{svg}"
        );
        assert!(
            svg.contains("<circle"),
            "a single sample is drawn as a point"
        );
    }

    #[test]
    fn text_from_the_files_is_escaped() {
        let nodes = vec![Some(counters("{\"node\": 0, \"<b>&\": 1}"))];
        let html = page(Path::new("a<b>.json"), &nodes, None);
        assert!(html.contains("a&lt;b&gt;.json"));
        assert!(html.contains("<td>&lt;b&gt;&amp;</td>"));
        assert!(!html.contains("<b>"));
    }
}
