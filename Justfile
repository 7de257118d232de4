# LOCO's tasks. scripts/dev.sh installs the system packages first; with
# everything installed, `just <recipe>` works on its own.

nodes := "4"

# Build everything (debug and the release binaries the demo uses).
build:
    cargo build --workspace --all-targets
    cargo build --release -p loco-rdma --examples

# Build, then run the demo on {{nodes}} local node processes.
demo: build
    cargo run --release -q -p loco-rdma --example pi -- {{nodes}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The whole test suite: lints, unit tests, the multi-process conformance suite.
test: lint
    cargo test --workspace --all-targets --no-fail-fast

# The transport conformance suite alone (every backend this machine has).
conformance:
    cargo test -p loco-rdma --test conformance

# Benchmarks; numbers go in issue notes, never in tests.
bench:
    cargo bench -p loco-benches
