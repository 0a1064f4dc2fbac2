# Casewire: one image, one binary; each container runs one service
# (`casewire serve <service>`). compose/docker-compose.yml runs them all.
#
#   docker build -t casewire:local .
#   docker run --rm casewire:local --help
#
# Stages:
#   planner  the workspace's manifests with stub sources, so the dependency
#            layer below is rebuilt only when a Cargo.toml or Cargo.lock changes
#   builder  dependencies first (cached), then the sources
#   runtime  distroless (glibc, CA certificates, no shell), user nonroot

ARG RUST_VERSION=1.95

# Bookworm on both sides: the binary links against the builder's glibc, and
# distroless cc-debian12 has bookworm's (2.36). A trixie builder would need a
# newer glibc than the runtime has.
FROM rust:${RUST_VERSION}-slim-bookworm AS planner
WORKDIR /src
COPY . .
# For every workspace member: its Cargo.toml, and an empty src/lib.rs (and a
# `fn main() {}` src/main.rs where the member has a binary). tests/e2e comes
# with its manifest only (.dockerignore): it is a member, never built here.
RUN mkdir -p /out \
 && cp Cargo.toml Cargo.lock /out/ \
 && find crates services tests -name Cargo.toml -exec sh -c ' \
      for m in "$@"; do \
        d=${m%/Cargo.toml}; \
        mkdir -p "/out/$d/src"; cp "$m" "/out/$m"; \
        if [ -f "$d/src/main.rs" ]; then echo "fn main() { }" > "/out/$d/src/main.rs"; fi; \
        if [ -f "$d/src/lib.rs" ] || [ ! -f "$d/src/main.rs" ]; then : > "/out/$d/src/lib.rs"; fi; \
      done' sh {} +

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
# Native parts of the build, all compiled from source and linked statically:
# librdkafka (rdkafka-sys, default features: ./configure + make, C and C++),
# zlib (libz-sys, forced static below: distroless has no libz.so), SQLite
# (rusqlite "bundled"), zstd, ring. TLS is rustls everywhere but in
# librdkafka, which links the system OpenSSL (TLS and SASL SCRAM to Kafka;
# distroless ships libssl3).
# The image's gcc and libc6-dev cover C; g++ and make are added.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never
WORKDIR /build

# Dependencies: only the manifests and stubs, so this layer survives any
# change to the sources.
COPY --from=planner /out/ ./
RUN cargo build --release --locked -p casewire

# The sources. Their mtimes may be older than the stub build's outputs, so
# they are touched, or cargo would keep the stubs.
COPY crates crates
COPY services services
COPY policies policies
COPY definitions definitions
RUN find crates services policies definitions -type f -exec touch {} + \
 && cargo build --release --locked -p casewire \
 && mkdir -p /out/data \
 && install -m 0755 target/release/casewire /out/casewire \
 && /out/casewire --version

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="casewire" \
      org.opencontainers.image.description="Event-sourced case management; run one service per container with: casewire serve <service>" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/casewire" \
      org.opencontainers.image.url="https://example.invalid/casewire" \
      org.opencontainers.image.vendor="Casewire" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/casewire /usr/local/bin/casewire
# The data dir (notify.db, the mail reader's UIDs, runtime.json): owned by
# nonroot, so a fresh named volume mounted here is writable too.
COPY --from=builder --chown=65532:65532 /out/data /data
# `casewire definitions import definitions` and `casewire policy test` work
# from the working directory.
COPY policies /opt/casewire/policies
COPY definitions /opt/casewire/definitions
WORKDIR /opt/casewire

# Listen on every interface (a container's loopback reaches nobody). The
# mode is deliberately left unset: `casewire serve` refuses to start until
# the operator sets CASEWIRE__MODE (production, or dev for a local trial).
ENV CASEWIRE__DATA_DIR=/data \
    CASEWIRE__API__BIND=0.0.0.0:8080 \
    CASEWIRE__WS__BIND=0.0.0.0:8081 \
    CASEWIRE__MANAGEMENT__BIND=0.0.0.0:9090 \
    CASEWIRE__LOG__FORMAT=json

USER 65532:65532
# 8080: REST API and portal (case-api, storage-api); 8081: WebSocket
# (ws-publisher); 9090: management (/health/live, /health/ready, /metrics).
EXPOSE 8080 8081 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["casewire"]
CMD ["serve", "case-api"]
