FROM python:3.11-slim
WORKDIR /srv/prefhub
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
RUN pip install --no-cache-dir -e .
EXPOSE 8000
# Migrates on start, then serves with the number of workers given in PREFHUB_WORKERS.
CMD ["sh", "-c", "prefhub db upgrade && prefhub serve --host 0.0.0.0 --port 8000 --no-migrate --workers ${PREFHUB_WORKERS:-4}"]
