# LOCO's tasks. scripts/dev.sh installs the system packages first; with
# everything installed, `just <recipe>` works on its own.

nodes := "4"
release := "target/release"

# Build everything: debug (what the tests use) and release (what the demo and benchmarks use).
build:
    cargo build --workspace --all-targets
    cargo build --workspace --release
    ln -sf loco-cxx target/debug/loco-c++
    ln -sf loco-cxx {{release}}/loco-c++

# Build, then run the demo: an OpenMP heat stencil on a 256 MiB grid, native (one process, {{nodes}} threads)
# and compiled with loco-cc on {{nodes}} local nodes (one team of {{nodes}} threads, one per node), with statistics.
demo: build
    #!/usr/bin/env bash
    set -euo pipefail
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    clang-16 -O2 -fopenmp demo/stencil.c -o "$out/stencil.native"
    {{release}}/loco-cc -O2 -fopenmp demo/stencil.c -o "$out/stencil.loco"
    echo "== native clang-16 -O2 -fopenmp, one process, OMP_NUM_THREADS={{nodes}}"
    OMP_NUM_THREADS={{nodes}} "$out/stencil.native" 4096 20
    echo "== loco-cc -O2 -fopenmp under loco-daemon run -n {{nodes}}: one team of {{nodes}} threads, one per node;"
    echo "   each node is home to the rows it initialises (first-touch placement, the default)"
    OMP_NUM_THREADS={{nodes}} {{release}}/loco-daemon run -n {{nodes}} --stats -- "$out/stencil.loco" 4096 20

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The whole test suite: lints, unit tests, multi-process suites, end-to-end programs.
# (Benchmarks are built here so they keep compiling, but run only by `just bench`.)
test: lint
    cargo build --workspace --all-targets
    ln -sf loco-cxx target/debug/loco-c++
    cargo test --workspace --lib --bins --tests --examples --no-fail-fast

# The transport conformance suite alone (every backend this machine has).
conformance:
    cargo test -p loco-rdma --test conformance

# Benchmarks, printed as tables; results worth keeping go in docs/performance.md, never in tests.
bench:
    cargo build --workspace --release
    cargo bench -p loco-benches
