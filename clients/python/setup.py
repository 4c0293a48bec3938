"""Builds grove-client, generating its gRPC stubs from the repository's proto/ files.

The stubs are never checked in: every build (a wheel, `pip install ./clients/python`, or an
editable install) runs grpc_tools.protoc on proto/grove/v1/*.proto, so they cannot drift from
the server's API. The proto directory is found two levels up (clients/python -> the
repository root), or wherever GROVE_PROTO_DIR points.

google/rpc/status.proto is compiled into a descriptor set that the client loads into a
private descriptor pool: generating `google/rpc/status_pb2.py` would register the file in
protobuf's default pool, where it clashes with googleapis-common-protos (grpcio-status) if
both are imported in one process.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def proto_dir() -> Path:
    configured = os.environ.get("GROVE_PROTO_DIR")
    root = Path(configured).resolve() if configured else HERE.parent.parent / "proto"
    if not (root / "grove" / "v1" / "types.proto").is_file():
        sys.exit(
            f"grove-client: Grove's .proto files are not at {root}. The client's stubs are generated at "
            "build time from the Grove repository's proto/ directory: build it from inside the repository "
            "(pip install ./clients/python from the repository root), or set GROVE_PROTO_DIR to a copy of "
            "that directory."
        )
    return root


def grove_protos(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "grove" / "v1").glob("*.proto"))


def protoc(args: list[str]) -> None:
    import grpc_tools
    from grpc_tools import protoc as grpc_protoc

    # The well-known types (google/protobuf/any.proto) ship inside grpcio-tools.
    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    code = grpc_protoc.main(["grpc_tools.protoc", f"-I{include}", *args])
    if code != 0:
        sys.exit(f"grove-client: grpc_tools.protoc {' '.join(args)} failed with status {code}")


def generate(package_root: Path) -> None:
    """Writes grove/v1/*_pb2{,_grpc}.py(i) and grove/rpc_status.binpb under `package_root`."""
    root = proto_dir()
    out = package_root
    # Only what this build generates: no stub of a proto file since removed.
    shutil.rmtree(out / "grove" / "v1", ignore_errors=True)
    (out / "grove" / "v1").mkdir(parents=True)
    protos = grove_protos(root)
    protoc([f"-I{root}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos])
    (out / "grove" / "v1" / "__init__.py").write_text(
        '"""Stubs generated from proto/grove/v1 by grpc_tools.protoc when the package was built."""\n'
    )
    protoc(
        [
            f"-I{root}",
            "--include_imports",
            f"--descriptor_set_out={out / 'grove' / 'rpc_status.binpb'}",
            "google/rpc/status.proto",
        ]
    )


class BuildWithStubs(build_py):
    """build_py that also generates the stubs: into the build directory for a wheel, into the
    source tree for an editable install (which imports from there)."""

    def run(self) -> None:
        super().run()
        target = HERE / "src" if getattr(self, "editable_mode", False) else Path(self.build_lib)
        generate(target)


def runtime_requirements() -> list[str]:
    """The generated code checks, at import, that grpcio and protobuf are at least as new as the
    grpcio-tools that generated it: require exactly that."""
    try:
        from importlib import metadata

        tools = metadata.version("grpcio-tools")
        protobuf = next(
            (r for r in metadata.requires("grpcio-tools") or [] if re.match(r"protobuf\b", r)),
            "protobuf",
        )
    except Exception:  # grpcio-tools absent: only metadata is being read (e.g. by a linter)
        return ["grpcio", "protobuf"]
    return [f"grpcio>={tools}", protobuf.split(";")[0].strip()]


setup(install_requires=runtime_requirements(), cmdclass={"build_py": BuildWithStubs})
