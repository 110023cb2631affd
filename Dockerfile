# syntax=docker/dockerfile:1
# Timbre image: one image for web, workers, beat and migrate (see docker-compose.yml).

# --- Stage 1: audiowmark, built from its upstream release -------------------------------
FROM debian:bookworm-slim AS audiowmark

# When bumping AUDIOWMARK_VERSION, verify the tarball URL (GitHub release assets; mirror:
# https://uplex.de/audiowmark/releases/) and set AUDIOWMARK_SHA256 to the checksum of the
# tarball you verified. With AUDIOWMARK_SHA256 empty the build prints the checksum it got.
ARG AUDIOWMARK_VERSION=0.6.5
ARG AUDIOWMARK_URL=https://github.com/swesterfeld/audiowmark/releases/download/${AUDIOWMARK_VERSION}/audiowmark-${AUDIOWMARK_VERSION}.tar.zst
ARG AUDIOWMARK_SHA256=

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian packages follow bookworm's security updates rather than exact versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config ca-certificates curl zstd xz-utils \
        autoconf automake libtool autoconf-archive \
        libfftw3-dev libsndfile1-dev libmpg123-dev libzita-resampler-dev libgcrypt20-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# GNU tar detects the compression (zstd, xz, gzip) from the archive itself.
RUN set -eux; \
    curl -fsSL -o /tmp/audiowmark.tar "${AUDIOWMARK_URL}"; \
    if [ -n "${AUDIOWMARK_SHA256}" ]; then \
        echo "${AUDIOWMARK_SHA256}  /tmp/audiowmark.tar" | sha256sum -c -; \
    else \
        echo "WARNING: AUDIOWMARK_SHA256 not set; downloaded tarball:"; sha256sum /tmp/audiowmark.tar; \
    fi; \
    tar -xf /tmp/audiowmark.tar --strip-components=1; \
    if [ ! -x configure ]; then ./autogen.sh; fi; \
    ./configure --prefix=/usr/local; \
    make -j"$(nproc)"; \
    make install; \
    strip /usr/local/bin/audiowmark

# --- Stage 2: runtime --------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app:/app/platform
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Speech tools, and the shared libraries audiowmark links against (fftw3f is libfftw3-single3).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        espeak-ng sox libsox-fmt-all ffmpeg libsndfile1 libgomp1 \
        libfftw3-double3 libfftw3-single3 libmpg123-0 libzita-resampler1 libgcrypt20 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=audiowmark /usr/local/bin/audiowmark /usr/local/bin/audiowmark
# Fail the build, not the first synthesis, when a runtime library is missing.
RUN if ldd /usr/local/bin/audiowmark | grep "not found"; then exit 1; fi \
    && audiowmark gen-key /tmp/smoke.key && rm /tmp/smoke.key

# torch first and exactly pinned. The default index gives the PyPI wheel of this version,
# which on linux x86_64 is the CUDA build (what worker-gpu needs). For a GPU image tied to a
# given CUDA runtime, use the CUDA build index for the same version, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# and for a CPU-only image: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

WORKDIR /app
COPY requirements.lock ./
# torch==2.13.0 in the lock is already satisfied by the wheel above (a +cpu/+cuXXX local
# version matches the same pin), so pip keeps it.
RUN pip install -r requirements.lock

COPY . .

# Static files are collected at build time: development mode with a throwaway key, no database.
RUN TIMBRE_ENV=development SECRET_KEY=build-time-only-not-a-secret DATABASE_URL='' REDIS_URL='' \
        python manage.py collectstatic --noinput \
    && rm -f /app/var/timbre.sqlite3

# Non-root. The code stays root-owned and read-only to the app; var/ and $HOME are writable.
RUN groupadd --system --gid 10001 timbre \
    && useradd --system --uid 10001 --gid timbre --create-home --home-dir /home/timbre timbre \
    && mkdir -p /app/var \
    && chown -R timbre:timbre /app/var

# Production unless told otherwise: settings refuse to start on insecure defaults.
ENV TIMBRE_ENV=production \
    HOME=/home/timbre \
    NUMBA_CACHE_DIR=/tmp/numba-cache
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--pythonpath", "platform", \
     "--bind", "0.0.0.0:8000", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-"]
