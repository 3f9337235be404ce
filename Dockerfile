# The Arrears application image: the `arrears` console script is the entrypoint, so a container
# runs one subcommand (`topics`, `worker`, `adapter --agency ID`, `clock --daemon`, ...).
#
#   docker build -t arrears .
#   docker run --rm arrears --help
#
# docker-compose.yml builds it and runs the whole pipeline on Apache Kafka.

FROM python:3.11-slim AS build
# A compiler only for dependencies without a wheel for this platform; it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/arrears
ENV PATH=/opt/arrears/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY arrears ./arrears
COPY schemas ./schemas
COPY producers ./producers
COPY streams ./streams
COPY consumers ./consumers
RUN pip install --upgrade pip && pip install .

FROM python:3.11-slim
ENV PATH=/opt/arrears/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARREARS_DATA_DIR=/var/lib/arrears \
    ARREARS_LOG_FORMAT=json
COPY --from=build /opt/arrears /opt/arrears
# An unprivileged user; the state directory (RocksDB tables) and the file-transport directory are
# created here so that named volumes mounted on them inherit its ownership.
RUN useradd --system --uid 10001 --create-home --home-dir /home/arrears arrears \
 && mkdir -p /var/lib/arrears /var/arrears \
 && chown arrears:arrears /var/lib/arrears /var/arrears
USER arrears
WORKDIR /home/arrears
# 6066: a worker's query API; 8081: an adapter's POST /results, /health and /metrics.
EXPOSE 6066 8081
ENTRYPOINT ["arrears"]
CMD ["--help"]
