# syntax=docker/dockerfile:1
#
# The deploylens image: `deploylens serve` over the repositories mounted read-only at /repos,
# with its store in the /data volume.
#
#   docker build -t deploylens .
#   docker run -d --name deploylens -p 127.0.0.1:9464:9464 \
#     -v ~/src:/repos:ro -v deploylens-data:/data \
#     -v $PWD/deploy/secrets/deploylens_token:/run/secrets/deploylens_token:ro \
#     deploylens
#
# Listening on 0.0.0.0 needs a token (the file /run/secrets/deploylens_token, or the file named
# by DEPLOYLENS_TOKEN_FILE), or --insecure-no-auth. Any other command runs as well:
#   docker run --rm -v deploylens-data:/data deploylens report --window 30d
# See docs/operations.md#install and deploy/docker-compose.yml.

# ---- build -------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only what the build reads: the workspace, its crates and the SQL of queries/, which
# deploylens-query embeds at build time.
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY queries/ queries/
# The target folder lives in a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,id=deploylens-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=deploylens-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=deploylens-target,target=/src/target,sharing=locked \
    cargo build --release -p deploylens-cli --locked \
    && install -D -m 0755 target/release/deploylens /out/deploylens

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# Unpinned on purpose: ca-certificates should be the current one of the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid, so that the owner of /data is the same in every container and on the host.
RUN groupadd --gid 10001 deploylens \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data \
         --shell /usr/sbin/nologin deploylens \
    && install -d -o 10001 -g 10001 -m 0750 /data \
    && install -d -m 0755 /repos
COPY --from=builder /out/deploylens /usr/local/bin/deploylens

# Every command finds the store without --data-dir.
ENV DEPLOYLENS_DATA_DIR=/data
WORKDIR /data
USER 10001:10001
# The store. A new named volume takes the owner of this folder (uid 10001); a bind mount must
# be writable by uid 10001.
VOLUME ["/data"]
# /repos: the roots to collect, mounted read-only by convention (uid 10001 must be able to
# read them).
# 9464: HTTP (--listen); 5433: the Postgres protocol when started with --pg-listen 0.0.0.0:5433.
EXPOSE 9464 5433
# `serve` commits what is pending and exits 0 on SIGTERM.
STOPSIGNAL SIGTERM
# Ready = the initial scan is committed and the last commit succeeded (GET /readyz answers
# 200; 503 before). The check needs no curl: bash opens the TCP connection itself. The initial
# scan of a large ecosystem takes tens of seconds, hence the start period. With
# --protect-metrics, /readyz needs the token too: override the health check then. The port is
# the one of --listen below.
HEALTHCHECK --start-period=120s --interval=15s --timeout=3s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200 '"]
ENTRYPOINT ["deploylens"]
CMD ["serve", "/repos", "--listen", "0.0.0.0:9464", "--data-dir", "/data"]
