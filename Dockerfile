# The orchestrator CLI in an image: `docker run IMAGE worker|send FILE|tail|validate|simulate ...`.
# See docs/docker.md. Settings come from ORCH_* environment variables (docs/streaming.md).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# No compiler needed: on amd64 every dependency (faust-streaming, rocksdict, orjson, pydantic-core, ...)
# is a manylinux wheel. On arm64 faust-streaming has no wheel; its sdist falls back to pure Python
# when it cannot compile its optional C speedups.
# journeys/ and examples/ are part of the package too (`orchestrator init` copies them out of it).
COPY pyproject.toml README.md MANIFEST.in ./
COPY orchestrator ./orchestrator
COPY journeys ./journeys
COPY examples ./examples
RUN pip install .

# Non-root user; /data holds the worker's RocksDB tables (ORCH_STORE=rocksdb://). It is created
# and chowned before VOLUME so a new named volume starts out owned by this user.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/orchestrator orchestrator \
    && mkdir -p /data \
    && chown orchestrator:orchestrator /data

ENV PYTHONDONTWRITEBYTECODE=1 \
    ORCH_JOURNEYS_DIR=/app/journeys \
    ORCH_DATA_DIR=/data \
    ORCH_STORE=rocksdb://

VOLUME ["/data"]
USER orchestrator

ENTRYPOINT ["orchestrator"]
CMD ["worker"]
