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

# Build, then run the demo: a heat stencil compiled with loco-cc on {{nodes}} local nodes, next to the native build.
demo: build
    #!/usr/bin/env bash
    set -euo pipefail
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    clang-16 -O2 demo/stencil.c -o "$out/stencil.native"
    {{release}}/loco-cc -O2 demo/stencil.c -o "$out/stencil.loco"
    echo "== native clang-16 -O2, one process"
    "$out/stencil.native" 1024 50
    echo "== loco-cc -O2 under loco-daemon run -n {{nodes}} (grid spread over {{nodes}} nodes' memory)"
    {{release}}/loco-daemon run -n {{nodes}} --stats -- "$out/stencil.loco" 1024 50

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

# Benchmarks; numbers go in issue notes, never in tests.
bench:
    cargo build --workspace --release
    cargo bench -p loco-benches
