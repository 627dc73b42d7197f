# graphops: a slim, non-root image that runs `graphops serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 graphops
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY bot ./bot
COPY commands ./commands
COPY permissions ./permissions
COPY clients ./clients
COPY operations ./operations
COPY simulators ./simulators
RUN pip install --no-cache-dir .

USER graphops
WORKDIR /home/graphops
VOLUME ["/home/graphops/data"]
ENV GRAPHOPS_CONFIG=/home/graphops/graphops.toml
EXPOSE 3000
CMD ["graphops", "serve"]
