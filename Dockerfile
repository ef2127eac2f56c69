# One image for the Dagster webserver, the daemon and the code location.
#   docker build -t crime-assets .
#   docker run -p 3000:3000 -v crime-data:/app/data crime-assets                      # webserver on :3000
#   docker run -v crime-data:/app/data crime-assets dagster-daemon run -w workspace.yaml   # the daemon
#   docker run -p 8800:8800 -v crime-data:/app/data crime-assets \
#     uvicorn crime_assets.serving.app:app --host 0.0.0.0 --port 8800                 # scoring service on :8800
# Production (PostgreSQL storage, queued runs, the DuckLake warehouse): DAGSTER_HOME=/app/prod, DAGSTER_PG_*
# and CRIME_WAREHOUSE=ducklake set, see deploy/docker-compose.yaml and deploy/README.md. Same image, a
# different instance file.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/app \
    CRIME_DATA_DIR=/app/data

WORKDIR /app

# Dependencies first, pinned by the lock file, so code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY crime_assets ./crime_assets
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 1000 crime \
    && mkdir -p /app/data /app/lake /app/.dagster_home /app/prod \
    && chown -R crime:crime /app/data /app/lake /app/.dagster_home /app/prod
COPY dagster.yaml workspace.yaml ./
# The production instance: DAGSTER_HOME=/app/prod (writable: Dagster keeps small UI state there).
COPY --chown=crime:crime deploy/dagster.prod.yaml ./prod/dagster.yaml
COPY --chown=crime:crime deploy/workspace.prod.yaml ./prod/workspace.yaml

USER crime
EXPOSE 3000 8800
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
