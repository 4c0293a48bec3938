#!/usr/bin/env bash
# Installs the Debian packages and cargo tools the test suite needs, if missing:
# - faketime: libfaketime, preloaded into groved by the clock-skew test (t98);
# - zookeeper: a real ZooKeeper 3.8 for the migration test (t62) and the benchmarks;
# - chromium, chromium-driver: the headless browser of the web console's tests (tests/console);
# - cargo-nextest: the test runner scripts/test.sh uses (pinned, into .tools/).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(faketime zookeeper chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" != "0" ]; then
        command -v sudo >/dev/null || { echo "setup-debian: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "setup-debian: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
        || { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# cargo-nextest, pinned, into the repository's tool folder (like cargo-fuzz) when it is not
# already on the PATH; scripts/test.sh puts .tools/bin on the PATH.
if ! cargo nextest --version >/dev/null 2>&1 && [ ! -x .tools/bin/cargo-nextest ]; then
    echo "setup-debian: installing cargo-nextest 0.9.143 into .tools/"
    cargo install cargo-nextest --locked --version 0.9.143 --root .tools
fi
