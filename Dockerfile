# Panic Alert API + embedded Ray + the dispatcher console. Build: docker build -t panic-alert .
# The console is built from web/ exactly as package-lock.json pins it.
FROM node:20-bookworm-slim AS console
WORKDIR /web
COPY web/package.json web/package-lock.json web/tsconfig.base.json ./
COPY web/shared/package.json shared/package.json
COPY web/console/package.json console/package.json
RUN npm ci --no-audit --no-fund
COPY web/shared shared
COPY web/console console
RUN npm run build --workspace console

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# ffmpeg renders the media evidence (posters, MP4 and Opus renditions).
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml uv.lock README.md ./
COPY panic_alert panic_alert
COPY config config
COPY actors actors
COPY gateway gateway
COPY persistence persistence
COPY geo geo
COPY cluster cluster
COPY notify notify
COPY media media
# The Python client, a path dependency ([tool.uv.sources]) `panic-alert demo` drives the API with.
COPY clients/python clients/python
COPY --from=console /web/console/dist web/console/dist
# Exactly the versions uv.lock pins, into /app/.venv (no dev tools).
RUN pip install --no-cache-dir uv==0.13.9 \
    && UV_PROJECT_ENVIRONMENT=/app/.venv uv sync --frozen --no-dev --no-editable --no-cache \
    && useradd --system --uid 10001 panic
ENV PATH=/app/.venv/bin:$PATH
USER panic
EXPOSE 8000 8265
CMD ["panic-alert", "serve", "--host", "0.0.0.0"]
