#!/usr/bin/env bash
# Installs the Node.js client test's packages (@grpc/grpc-js, @grpc/proto-loader, protobufjs,
# pinned by tests/node/package-lock.json) into tests/node/node_modules. Idempotent; run by
# scripts/test.sh before the tests. The packages' install scripts are not needed and not run.
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
if ! command -v npm >/dev/null; then
    echo "setup-node.sh: npm is missing; install Node.js 18 or newer (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.grove-installed-lock; then
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
    cp package-lock.json node_modules/.grove-installed-lock
fi
echo "node client packages installed in tests/node/node_modules"
