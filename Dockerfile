# syntax=docker/dockerfile:1
#
# One image with the three meshflow binaries; the Kubernetes chart picks one
# with `command`. Build from the repository root:
#
#   docker build -t meshflow:0.1.0 .
#
# The builder compiles librdkafka (rdkafka's bundled build) against the
# system OpenSSL and zlib; the runtime image carries only their shared
# libraries and the CA certificates, and runs as an unprivileged uid.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Registry and target caches survive between builds (BuildKit); the binaries
# are copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p meshflow-producer -p meshflow-consumer -p meshflow-exporter \
 && mkdir -p /out \
 && cp target/release/meshflow-producer target/release/meshflow-consumer \
       target/release/meshflow-exporter /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# 65532: no entry in /etc/passwd, no home, no shell login; the chart sets the
# same uid and a read-only root filesystem.
USER 65532:65532
# producer 9464, consumer 9465, exporter 9466: /metrics, /healthz, /readyz.
EXPOSE 9464 9465 9466
# Health is HTTP on the metrics port, probed by Kubernetes (/healthz,
# /readyz); the image has no HTTP client to run a Docker HEALTHCHECK with.
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["/usr/local/bin/meshflow-producer"]
