# The delivery service. Every service's Dockerfile follows this one pattern; build from the repository root:
#   docker build -f docker/delivery.Dockerfile -t dronedelivery/delivery .
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# uv from PyPI (no other registry is needed to build).
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
RUN /opt/uv/bin/uv sync --locked --no-dev --no-install-workspace --package delivery

# Phase 2: the shared library and this service, installed non-editable.
COPY libs/dronecommon/ libs/dronecommon/
COPY services/delivery/ services/delivery/
RUN /opt/uv/bin/uv sync --locked --no-dev --no-editable --package delivery

FROM ${BASE_IMAGE}
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DELIVERY_HOST=0.0.0.0 \
    DELIVERY_PORT=8080
COPY --from=build --chown=0:0 /app/.venv /app/.venv
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "delivery"]
