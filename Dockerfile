# The base image is a build argument so that a machine without a registry can build on a local
# stand-in (containers/local.env, made by `make images`).
ARG BASE=python:3.11-slim

# Build: resolve exactly what uv.lock pins into a virtual environment.
FROM ${BASE} AS build
# uv in a venv of its own: Debian's Python refuses `pip install` into the system (PEP 668).
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==0.13.9"
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
# The packages (.dockerignore lets in nothing else).
COPY . .
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

# Run: only the environment, as an unprivileged user.
FROM ${BASE}
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin taskapi
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
# Root-owned and not writable by the service: settings also come from ./.env, which no one but
# the image (or a mounted file) may put there.
WORKDIR /app
USER taskapi
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["taskapi", "serve", "--host", "0.0.0.0", "--port", "8000"]
