# Panic Alert API + embedded Ray. Build: docker build -t panic-alert .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY panic_alert panic_alert
COPY actors actors
COPY gateway gateway
COPY persistence persistence
COPY geo geo
COPY cluster cluster
COPY notify notify
RUN pip install --no-cache-dir . && useradd --system --uid 10001 panic
USER panic
EXPOSE 8000 8265
CMD ["panic-alert", "serve", "--host", "0.0.0.0"]
