# syntax=docker/dockerfile:1.7
# One multi-stage build for the three binaries; pick one with --target:
#
#   docker build --target worker      -t superhero-dataflow/worker .
#   docker build --target transformer -t superhero-dataflow/transformer .
#   docker build --target simulator   -t superhero-dataflow/simulator .
#
# compose/docker-compose.yml builds all three from this file. The build stage compiles the
# three binaries once (one `cargo build`, so the workspace's shared crates compile once); the
# cache mounts keep the crates.io registry and target/ between builds, so a code change
# recompiles only what changed instead of every dependency (librdkafka, arrow, parquet...).
# Checked offline by scripts/compose-check (checkov's Dockerfile rules, zero failures).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build -----------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys (mklove: make + a C compiler, both in the
# rust image); zlib comes from zlib1g-dev, also in the image. No OpenSSL: object_store uses rustls.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin worker --bin transformer --bin simulator \
    && mkdir -p /out \
    && cp target/release/worker target/release/transformer target/release/simulator /out/

# --- runtime base ----------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: rustls' native roots for Azure (HTTPS); curl: the HEALTHCHECKs below and
# compose's healthchecks call /healthz with it; libssl3: librdkafka's TLS for SASL_SSL brokers
# (Event Hubs, Confluent Cloud). Nothing else: the binaries otherwise link only glibc and zlib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
# The simulator writes its manifest (MANIFEST_PATH, relative) into the working directory.
WORKDIR /data
RUN chown app:app /data
USER app
ENV LOG_FORMAT=json RUST_LOG=info

# --- transformer: `transformer watch` (standalone) or `transformer serve` (Functions host) ---
FROM runtime AS transformer
COPY --from=build /out/transformer /usr/local/bin/transformer
ENV METRICS_ADDR=0.0.0.0:9465
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9465/healthz || exit 1
ENTRYPOINT ["transformer"]
CMD ["watch"]

# --- simulator: `simulator play` (players) or `simulator flood --messages N` ------------------
FROM runtime AS simulator
COPY --from=build /out/simulator /usr/local/bin/simulator
ENV METRICS_ADDR=0.0.0.0:9466
EXPOSE 9466
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9466/healthz || exit 1
ENTRYPOINT ["simulator"]
CMD ["play"]

# --- worker (last, so a plain `docker build .` gives the worker) ------------------------------
FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
ENV METRICS_ADDR=0.0.0.0:9464
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["worker"]
