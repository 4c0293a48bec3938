#!/usr/bin/env bash
# Creates .venv with grpcio-tools (Python client tests), the Helm engine plus Kubernetes
# schemas (chart tests) and Selenium (web console tests), and generates Python stubs from
# proto/ into tests/python/gen.
# Idempotent; run by .ci/run before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    -r tests/helm/requirements.txt -r tests/console/requirements.txt
# The Python client with its test extras. Its build generates its stubs from proto/; without
# build isolation that is done by the grpcio-tools pinned above, so the stubs match the grpcio
# and protobuf installed here.
.venv/bin/pip install --quiet --disable-pip-version-check --no-build-isolation './clients/python[test]'
rm -rf tests/python/gen
mkdir -p tests/python/gen
.venv/bin/python -m grpc_tools.protoc -I proto \
    --python_out=tests/python/gen --grpc_python_out=tests/python/gen \
    grove/v1/types.proto grove/v1/nodes.proto grove/v1/sessions.proto grove/v1/watch.proto \
    grove/v1/cluster.proto grove/v1/locks.proto
echo "python client stubs generated in tests/python/gen"
