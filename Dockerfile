# The relay: one image for `relay serve` (the default) and `relay work`.
#   docker build -t relay .
#   docker run -e RELAY_REDIS_URL=redis://redis:6379/0 -e RELAY_CALLFIRE_SECRETS=... relay serve
#   docker run -e RELAY_REDIS_URL=redis://redis:6379/0 relay work
# No Redis inside: RELAY_REDIS_URL must name one (the embedded Redis is for laptops).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY relay ./relay
# The versions pinned in constraints.txt (`make lock`); without the `embedded` extra: no Redis
# is compiled into the image.
RUN python -m venv /opt/relay \
    && /opt/relay/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8080 \
    RELAY_LOG_FORMAT=json
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --no-create-home --shell /usr/sbin/nologin relay
COPY --from=build /opt/relay /opt/relay
USER 10001:10001
EXPOSE 8080
# No curl in a slim image: Python asks /healthz; any error or non-2xx answer fails the check.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RELAY_PORT', '8080'), timeout=2)"]
# Exec form: relay is PID 1 and receives SIGTERM itself, so it drains before exiting.
ENTRYPOINT ["relay"]
CMD ["serve"]
