//! The statistics files, read and written with `serde_json`.
//!
//! - A node's file (the runtime writes it, loco-runtime/src/runtime.rs
//!   `stats_json`): one object, `{"node": R, "name": value, ...}`, every
//!   value a count. The same shape is what a node writes every second for
//!   `--progress` (`LOCO_PROGRESS`).
//! - `--stats-json FILE`: `{"nodes": [...]}`, one element per node in rank
//!   order, each on a line of its own: the node's object, or `null` for a
//!   node that wrote none (it died). Tools read it line by line
//!   (integration/stats.rs, benches/coherence.rs look for `"name": value`),
//!   so [`Layout`] keeps that layout.
//! - `--progress-log FILE`: one object per line, a node's progress sample
//!   with `"t"` (seconds since the run started, when the node wrote it) first.

use std::io::{self, Write};
use std::path::Path;

use serde_json::ser::Formatter;
use serde_json::{Map, Value};

/// One node's counters, in the order the node wrote them.
pub type Counters = Map<String, Value>;

/// serde_json output with `": "` after keys and `", "` between members,
/// and the elements of an array that is a member of the top-level object
/// one per line, indented by two spaces.
#[derive(Default)]
pub struct Layout {
    /// Objects and arrays open around the current value.
    depth: usize,
    /// For each open array: whether its elements go one per line.
    arrays: Vec<bool>,
}

impl Formatter for Layout {
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.arrays.push(self.depth == 1);
        self.depth += 1;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.arrays.pop() == Some(true) {
            w.write_all(b"\n]")
        } else {
            w.write_all(b"]")
        }
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        let lines = self.arrays.last() == Some(&true);
        w.write_all(match (lines, first) {
            (true, true) => b"\n  ",
            (true, false) => b",\n  ",
            (false, true) => b"",
            (false, false) => b", ",
        })
    }
}

/// `value` as text in [`Layout`], ending with a newline.
pub fn to_text(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Layout::default());
    serde::Serialize::serialize(value, &mut ser).expect("writing JSON into memory cannot fail");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// A node's statistics file: its object, or why it is not one.
pub fn parse_node(text: &str) -> Result<Counters, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The `--stats-json` document for these nodes (`None`: wrote nothing).
pub fn stats_document(nodes: Vec<Option<Counters>>) -> String {
    let nodes = nodes
        .into_iter()
        .map(|n| n.map_or(Value::Null, Value::Object))
        .collect();
    let mut doc = Map::new();
    doc.insert("nodes".into(), Value::Array(nodes));
    to_text(&Value::Object(doc))
}

/// Reads a `--stats-json` file: each node's counters, `None` for a node
/// that wrote none.
pub fn read_stats(path: &Path) -> Result<Vec<Option<Counters>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a --stats-json file: {e}", path.display()))?;
    let Some(Value::Array(nodes)) = doc.get("nodes") else {
        return Err(format!(
            "{}: not a --stats-json file: it has no \"nodes\" list",
            path.display()
        ));
    };
    nodes
        .iter()
        .enumerate()
        .map(|(k, n)| match n {
            Value::Null => Ok(None),
            Value::Object(map) => Ok(Some(map.clone())),
            _ => Err(format!(
                "{}: node {k}'s statistics are neither an object nor null",
                path.display()
            )),
        })
        .collect()
}

/// One `--progress-log` line: a node's counters at `t` seconds.
pub fn progress_sample(t: f64, counters: &Counters) -> String {
    let mut sample = Map::new();
    // Milliseconds are all the precision a once-a-second sample has.
    sample.insert("t".into(), Value::from((t * 1000.0).round() / 1000.0));
    for (k, v) in counters {
        if k != "t" {
            sample.insert(k.clone(), v.clone());
        }
    }
    to_text(&Value::Object(sample))
}

/// A sample of a `--progress-log` file.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t: f64,
    pub node: usize,
    pub counters: Counters,
}

/// Reads a `--progress-log` file. A last line cut short (the launcher was
/// killed while writing it) is left out; any other bad line is an error.
pub fn read_progress(path: &Path) -> Result<Vec<Sample>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut samples = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let bad = |why: &str| format!("{}: line {}: {why}", path.display(), i + 1);
        let map = match parse_node(line) {
            Ok(map) => map,
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => return Err(bad(&e)),
        };
        let t = map
            .get("t")
            .and_then(Value::as_f64)
            .ok_or_else(|| bad("no \"t\""))?;
        let node = map
            .get("node")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no \"node\""))? as usize;
        samples.push(Sample {
            t,
            node,
            counters: map,
        });
    }
    Ok(samples)
}

/// A counter's value, 0 if absent or not a number.
pub fn count(counters: &Counters, name: &str) -> u64 {
    counters.get(name).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_document_keeps_its_layout() {
        let a = parse_node("{\"node\": 0, \"page_faults_remote\": 12, \"bytes_fetched\": 4096}")
            .unwrap();
        let b = parse_node("{\"node\": 2, \"zeta\": 1, \"alpha\": 2}\n").unwrap();
        let text = stats_document(vec![Some(a), None, Some(b)]);
        assert_eq!(
            text,
            "{\"nodes\": [\n  {\"node\": 0, \"page_faults_remote\": 12, \"bytes_fetched\": 4096},\n  \
             null,\n  {\"node\": 2, \"zeta\": 1, \"alpha\": 2}\n]}\n"
        );
        let dir = std::env::temp_dir().join(format!("loco-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stats.json");
        std::fs::write(&file, &text).unwrap();
        let back = read_stats(&file).unwrap();
        assert_eq!(back.len(), 3);
        assert!(back[1].is_none());
        assert_eq!(count(back[0].as_ref().unwrap(), "bytes_fetched"), 4096);
        // Field order is the node's, not sorted.
        let keys: Vec<&String> = back[2].as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["node", "zeta", "alpha"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn progress_samples_round_trip_and_a_cut_last_line_is_dropped() {
        let c = parse_node("{\"node\": 1, \"omp_barriers\": 5}").unwrap();
        let line = progress_sample(1.23456, &c);
        assert_eq!(line, "{\"t\": 1.235, \"node\": 1, \"omp_barriers\": 5}\n");
        let dir = std::env::temp_dir().join(format!("loco-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("progress.jsonl");
        std::fs::write(&file, format!("{line}{line}{{\"t\": 3, \"no")).unwrap();
        let samples = read_progress(&file).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].node, 1);
        assert_eq!(count(&samples[1].counters, "omp_barriers"), 5);
        std::fs::write(&file, format!("{{\"t\": 3, \"no\n{line}")).unwrap();
        let e = read_progress(&file).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
