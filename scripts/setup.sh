#!/usr/bin/env bash
# Installs what building and testing LOCO needs on Debian 12, idempotently:
# Debian packages (verbs headers, libclang 14 for rdma-sys's bindgen, LLVM 16
# for the pass and OpenMP runtime, Slurm and munge for the Slurm launch test)
# and the `just` command runner.
set -euo pipefail

packages=(
    build-essential pkg-config
    libibverbs-dev librdmacm-dev ibverbs-providers   # loco-rdma's verbs backend
    libclang-14-dev                                  # rdma-sys's bindgen needs libclang 14
    clang-16 llvm-16-dev llvm-16-tools libomp-16-dev # loco-pass (LLVM 16), loco-cc, FileCheck, native OpenMP baseline
    slurmctld slurmd slurm-client munge              # integration/slurm.rs starts its own one-machine Slurm
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo is missing: install Rust (https://rustup.rs) first" >&2
    exit 1
fi

if ! command -v just >/dev/null; then
    echo "setup: installing just"
    # PyPI's rust-just ships a prebuilt binary (seconds); building it with cargo takes minutes.
    if ! python3 -m pip install --quiet --disable-pip-version-check rust-just 2>/dev/null; then
        cargo install --quiet --locked just
    fi
fi
command -v just >/dev/null || { echo "setup: just is still not on PATH" >&2; exit 1; }
