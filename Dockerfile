# syntax=docker/dockerfile:1
# auth-service: `docker build -t auth-service .`, then see docker-compose.yml and
# docs/DEPLOYMENT.md. Two stages: the release build on Rust's Debian bookworm image, and a
# runtime of the binary alone on distroless cc (glibc, libgcc, CA certificates, no shell, no
# package manager), as the unprivileged user 65532.

# The toolchain CI builds with; the workspace's minimum (rust-version) is 1.88.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# What the build needs and nothing else (.dockerignore keeps out target/, data/, venvs ...).
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY crates ./crates
# The registry and target/ are BuildKit caches, so a rebuild compiles only what changed; the
# binary is copied out of the cache in the same step. Symbols are kept (readable panics).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo cargo build --release --locked -p auth-server \
    && install -D -m 0755 target/release/auth-service /out/auth-service \
    && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/auth-service /usr/local/bin/auth-service
# The default SQLite database (sqlite://data/auth.db) lands in /var/lib/auth-service/data:
# mount a volume there, or set DATABASE_URL to PostgreSQL.
COPY --from=build --chown=65532:65532 /out/data /var/lib/auth-service/data
WORKDIR /var/lib/auth-service
ENV AUTH_BIND=0.0.0.0 \
    AUTH_PORT=8080 \
    LOG_FORMAT=json
USER 65532:65532
# 8080: the API; 9100: metrics when AUTH_METRICS_BIND=0.0.0.0:9100.
EXPOSE 8080 9100
# SIGTERM: readiness goes 503 for AUTH_SHUTDOWN_DELAY_SECONDS while requests are still served,
# then in-flight work drains for up to AUTH_SHUTDOWN_DRAIN_SECONDS (give `docker stop -t` more).
STOPSIGNAL SIGTERM
# `auth-service healthcheck` asks /health/ready on AUTH_BIND/AUTH_PORT: exit 0 ready, 1 not.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/auth-service", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-service"]
CMD ["serve"]
