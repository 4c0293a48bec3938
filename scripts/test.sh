#!/usr/bin/env bash
# Runs Grove's whole test suite: unit, property and conformance tests, integration tests
# against real groved processes, the polyglot client checks, the web console in a headless
# browser, the Helm chart, and a bounded fuzzing run. Installs what the tests need: Debian's
# faketime, Chromium and cargo-nextest (scripts/setup-debian.sh), a Python virtualenv with
# grpcio-tools, the Helm engine and Selenium, the Node.js gRPC packages, cargo-fuzz (into the
# repository itself).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=default
if [ "${CI:-}" = "true" ]; then
    profile=ci
fi

# Layout rules: no source file over 600 lines (tests aside), no import cycles.
python3 scripts/check-structure.py
scripts/setup-debian.sh
export PATH="$PWD/.tools/bin:$PATH"
scripts/setup-python.sh
scripts/setup-node.sh
# The integration tests run both binaries (groved and grove): build the whole workspace.
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --profile "$profile" --locked
cargo test --workspace --doc --locked
# The Python client (clients/python) against real groved processes.
GROVED=target/debug/groved .venv/bin/python -m pytest clients/python/tests -q
# The web console (/ui) in headless Chromium, against real groved processes.
.venv/bin/python -m pytest tests/console -q
# The Helm chart: lint, render with the real Helm engine, validate against Kubernetes schemas.
.venv/bin/python -m pytest tests/helm -q
# Fuzzing: each target for FUZZ_SECONDS (30) from the committed corpus.
scripts/fuzz.sh
