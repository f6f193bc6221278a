# tickwatch production image. `docker compose up` adds a Redis server (docker-compose.yml).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY daemon ./daemon
RUN pip install . && useradd --system --home /app tickwatch

COPY alerts.yaml ./
COPY rules ./rules
COPY data ./data
RUN mkdir -p /app/var && chown tickwatch /app/var

USER tickwatch
# Validate the shipped config at build time: a broken rule file never makes it into an image.
RUN tickwatch check --config alerts.yaml

ENTRYPOINT ["tickwatch"]
CMD ["run", "--config", "alerts.yaml"]
