# Build the wheel in one stage, run it as a non-root user in a slim one.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY mappings ./mappings
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 diarybridge
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER diarybridge
WORKDIR /home/diarybridge
# Configuration comes only from the environment (see README); SQLite under /home by default.
ENV DATABASE_URL=sqlite:////home/diarybridge/diarybridge.sqlite3 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
# Workers and threads come from DIARYBRIDGE_WORKERS / DIARYBRIDGE_THREADS (see README); the config
# module gives the workers one page-token key, shared metrics and a per-instance control socket.
CMD ["gunicorn", "--config", "python:service.gunicorn_config", "--bind", "0.0.0.0:8080", "service.app:create_app()"]
