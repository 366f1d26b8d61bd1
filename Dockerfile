# syntax=docker/dockerfile:1
# One image for every Warden service: `docker run IMAGE service NAME`
# (NAME: intake, legal-review, disclosure, moderation); also the `warden` CLI
# (`docker run IMAGE topics create`, `docker run IMAGE authority list`, ...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: compilers may be needed for wheels; none of this reaches the final image
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (pinned in pyproject.toml): this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY warden ./warden
COPY services ./services
RUN pip install --no-deps . \
 && warden --help >/dev/null

# --- runtime: the virtualenv on a clean slim Python, run as an unprivileged user
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="warden" \
      org.opencontainers.image.description="Warden services: intake, legal-review, disclosure, moderation"
RUN groupadd --system --gid 10001 warden \
 && useradd --system --uid 10001 --gid warden --home-dir /home/warden --create-home \
        --shell /usr/sbin/nologin warden
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WARDEN_HTTP_HOST=0.0.0.0 \
    WARDEN_HTTP_PORT=8080
WORKDIR /home/warden
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["warden"]
CMD ["service", "intake"]
