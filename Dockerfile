# syntax=docker/dockerfile:1
# One image for the three services, the import page, the CLI and contact-import-admin; docker-compose.yml picks
# the binary per service.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target caches persist between builds; the binaries are copied out of the
# cached target folder in the same step, because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p contact-ingest -p contact-mapper -p contact-writer -p contact-web -p contact-import -p contact-admin \
    && mkdir -p /out \
    && cp target/release/contact-ingest target/release/contact-mapper \
          target/release/contact-writer target/release/contact-web target/release/contact-import \
          target/release/contact-import-admin /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 contact \
    && useradd --system --uid 10001 --gid contact --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin contact
COPY --from=builder /out/ /usr/local/bin/
# A new named volume mounted here starts with this folder's owner, so the unprivileged
# contact-import-admin can write the deployment's credentials into it.
RUN mkdir -p /secrets && chown contact:contact /secrets && chmod 700 /secrets
USER contact:contact
WORKDIR /tmp
# The services stop cleanly on SIGTERM (what `docker stop` sends): they finish the messages in
# hand first. Compose sets the command; alone, the image explains the CLI.
CMD ["contact-import", "--help"]
