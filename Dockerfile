# graphops: a slim, non-root image that runs `graphops serve`.
# Run it as the README's "Run with Docker" says: the config mounted read-only, the
# secrets as environment variables, and a volume for the SQLite file.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 graphops
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY core ./core
COPY bot ./bot
COPY commands ./commands
COPY permissions ./permissions
COPY clients ./clients
COPY operations ./operations
COPY simulators ./simulators
# Dependencies at the versions pinned in constraints.txt (kept in the repo).
RUN pip install --no-cache-dir -c constraints.txt .

# The data folder exists and belongs to the runtime user before it is declared a
# volume, so a new volume starts out writable by graphops.
RUN mkdir -p /home/graphops/data && chown graphops:graphops /home/graphops/data
USER graphops
WORKDIR /home/graphops
# The database lives in the volume, whatever [bot] database says in the config.
ENV GRAPHOPS_CONFIG=/home/graphops/graphops.toml \
    GRAPHOPS_DATABASE=/home/graphops/data/graphops.sqlite3
VOLUME ["/home/graphops/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["graphops", "healthcheck"]
CMD ["graphops", "serve"]
