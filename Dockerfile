# tickwatch production image. `docker compose up` adds a Redis server (docker-compose.yml).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# /healthz and /metrics on a fixed port inside the container (alerts.yaml reads
# ${TICKWATCH_HTTP_LISTEN}); publish it with -p 127.0.0.1:9464:9464 to scrape /metrics.
# The HEALTHCHECK below asks this port: change both together (tests/unit/test_dockerfile.py).
ENV TICKWATCH_HTTP_LISTEN=0.0.0.0:9464
WORKDIR /app

COPY pyproject.toml README.md ./
COPY daemon ./daemon
# a numeric uid, so `runAsNonRoot` (Kubernetes) can tell the user is not root
RUN pip install . && useradd --system --uid 10001 --home /app tickwatch

COPY alerts.yaml ./
COPY rules ./rules
COPY data ./data
RUN mkdir -p /app/var && chown 10001 /app/var

USER 10001
# Validate the shipped config at build time: a broken rule file never makes it into an image.
RUN tickwatch check --config alerts.yaml

EXPOSE 9464
# healthy while /healthz answers 200 ("ok", or "degraded" while a feed or Redis is away and every
# stage retries); 503 "failing" or no answer: unhealthy. The slim image has no curl: Python's
# urllib raises on a 503 or a refused connection, and the exception is the nonzero exit.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["tickwatch"]
CMD ["run", "--config", "alerts.yaml"]
