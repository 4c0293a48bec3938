//! Compiles Grove's .proto files with protox (pure Rust): building needs no system protoc.

use prost::Message as _;

const PROTOS: &[&str] = &[
    "grove/v1/types.proto",
    "grove/v1/nodes.proto",
    "grove/v1/sessions.proto",
    "grove/v1/watch.proto",
    "grove/v1/cluster.proto",
    "grove/v1/locks.proto",
    "grove/v1/quotas.proto",
    "grove/peer/v1/peer.proto",
    "google/rpc/status.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let files: Vec<_> = PROTOS.iter().map(|p| root.join(p)).collect();
    let fds = protox::compile(&files, [&root])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set served by gRPC reflection, so grpcurl needs no .proto files.
    std::fs::write(out.join("grove_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Data fields as `bytes::Bytes`: a watch event fans out to many streams without
        // copying the node's data.
        .bytes(".")
        .compile_fds(fds)?;
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
