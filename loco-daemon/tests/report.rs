//! `loco-daemon report` on a real run: a small OpenMP program compiled with
//! loco-cc runs on two nodes with `--stats-json` and `--progress-log`, and
//! the page drawn from those files has a bar per node whose labels carry
//! the numbers the JSON file holds, and a curve per node over time.
//!
//! It needs the workspace built (`cargo build --workspace`, or `just
//! build`): loco-cc, libloco_pass.so and libloco.so next to this test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{finish, launcher, text};

/// target/<profile>/, where cargo puts the workspace's binaries and cdylibs.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A built artifact, or a panic saying how to build it: missing, or older
/// than the sources of the crates it is made from.
fn artifact(name: &str, crates: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = build_dir().join(name);
    let sources: Vec<PathBuf> = crates.iter().map(|c| root.join(c).join("src")).collect();
    if let Some(why) = loco_testkit::stale_artifact(&path, &sources) {
        panic!("{why}");
    }
    path
}

const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    long n = 1 << 19;
    double *a = malloc(n * sizeof *a);
    /* Each node first touches (and so is home to) its half of the array. */
    for (int round = 0; round < 3; round++) {
        #pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++)
            a[i] = round + i;
    }
    /* Node 0 reads node 1's half: remote page faults. */
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += a[i];
    printf("sum %.0f\n", sum);
    /* Long enough for every node to write progress samples. */
    usleep(2500000);
    free(a);
    return 0;
}
"#;

#[test]
fn the_report_draws_every_nodes_numbers_from_a_real_run() {
    let cc = artifact("loco-cc", &["loco-pass"]);
    artifact("libloco_pass.so", &["loco-pass"]);
    artifact(
        "libloco.so",
        &["loco-runtime", "loco-uffd", "loco-rdma", "loco-cluster"],
    );
    let dir = common::temp_dir("report", "run");
    let src = dir.join("fill.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let exe = dir.join("fill");
    let compiled = Command::new(&cc)
        .args(["-O2", "-fopenmp"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{}", text(&compiled.stderr));

    let stats = dir.join("stats.json");
    let log = dir.join("progress.jsonl");
    let child = launcher(&[
        "run",
        "-n",
        "2",
        "--timeout",
        "60",
        "--stats-json",
        stats.to_str().unwrap(),
        "--progress-log",
        log.to_str().unwrap(),
        "--",
        exe.to_str().unwrap(),
    ])
    .env("OMP_NUM_THREADS", "2")
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let o = finish(child, "loco-daemon run");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("[node 0] sum "),
        "{}",
        text(&o.stdout)
    );

    let html = dir.join("report.html");
    let o = common::run(&[
        "report",
        stats.to_str().unwrap(),
        "--progress",
        log.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(only_svg_namespace(&page), "the page loads something");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let value = |k: usize, field: &str| nodes[k][field].as_u64().unwrap();
    assert!(value(0, "page_faults_remote") > 0, "{doc}");
    for (chart, field, shown) in [
        ("remote-faults", "page_faults_remote", true),
        ("bytes-fetched", "bytes_fetched", false),
        ("bytes-sent", "bytes_released", false),
    ] {
        let svg = svg_of(&page, &format!("data-chart=\"{chart}\""));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
        for k in 0..2 {
            let v = value(k, field);
            let title = format!("<title>node {k}: {field} = {v}</title>");
            assert!(svg.contains(&title), "{title} in {svg}");
            if shown {
                assert!(svg.contains(&format!(">{v}</text>")), "{v} in {svg}");
            }
        }
    }
    // Time: four bars per node.
    let svg = svg_of(&page, "data-chart=\"time\"");
    assert_eq!(svg.matches("<rect class=\"bar\"").count(), 8, "{svg}");
    for field in ["fault_ns", "release_ns", "acquire_ns", "omp_barrier_ns"] {
        for k in 0..2 {
            let title = format!("<title>node {k}: {field} = {}</title>", value(k, field));
            assert!(svg.contains(&title), "{title} in {svg}");
        }
    }
    // Over time: both nodes ran here, so both have a curve.
    let svg = svg_of(&page, "class=\"curves\" data-field=\"page_faults_remote\"");
    assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The only URL a self-contained page may hold: SVG's namespace name.
fn only_svg_namespace(page: &str) -> bool {
    !page.contains("<script")
        && page.matches("http").count() == page.matches("http://www.w3.org/2000/svg").count()
}

/// The `<svg ...>...</svg>` element whose start tag contains `marker`.
fn svg_of<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no chart with {marker}"));
    let start = page[..at].rfind("<svg").expect("an svg element");
    let end = at + page[at..].find("</svg>").expect("the svg ends");
    &page[start..end + "</svg>".len()]
}
