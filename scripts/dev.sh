#!/usr/bin/env bash
# The newcomer's entry point: installs what is missing, then runs a Justfile
# recipe. `scripts/dev.sh demo` builds everything and runs the demo;
# `scripts/dev.sh test` runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
exec just "${@:-test}"
