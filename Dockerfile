# Grove's container image: groved (the server) and grove (the CLI).
#
#   docker build -t grove:0.1.0 .
#   docker run --rm -p 7181:7181 -v grove-data:/var/lib/grove grove:0.1.0
#
# Settings come from flags (appended to `docker run ... grove:0.1.0`) or GROVE_* variables;
# see `groved --help`. The Helm chart in helm/grove runs this image.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The .proto files are compiled by protox inside build.rs: no protoc needed.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY proto proto
COPY server server
COPY client client
COPY examples examples
RUN cargo build --release --locked --bin groved --bin grove \
    && install -m 0755 target/release/groved target/release/grove /usr/local/bin/

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 grove \
    && useradd --system --uid 10001 --gid grove --home-dir /var/lib/grove --shell /usr/sbin/nologin grove \
    && mkdir -p /var/lib/grove \
    && chown grove:grove /var/lib/grove
COPY --from=build /usr/local/bin/groved /usr/local/bin/grove /usr/local/bin/
USER 10001:10001
# Listen on every interface inside the container; the data on a volume.
ENV GROVE_DATA_DIR=/var/lib/grove \
    GROVE_LISTEN=0.0.0.0:7181 \
    GROVE_PEER_LISTEN=0.0.0.0:7281 \
    GROVE_ADMIN_LISTEN=0.0.0.0:7381
VOLUME ["/var/lib/grove"]
# client gRPC, peer gRPC (election and replication), admin HTTP (/health, /ready, /metrics)
EXPOSE 7181 7281 7381
ENTRYPOINT ["/usr/local/bin/groved"]
