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
# Dependencies first, from the hashed lock (requirements/runtime.txt: the runtime only, without the
# embedded broker and PostgreSQL or the test tools): rebuilt only when the lock changes, and pip
# refuses any file whose hash the lock does not list. Then the project itself, without dependencies.
COPY requirements/build.txt requirements/runtime.txt requirements/
RUN pip install --require-hashes -r requirements/build.txt \
 && pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml ./
COPY warden ./warden
COPY services ./services
RUN pip install --no-deps --no-build-isolation . \
 && pip check \
 && warden --help >/dev/null

# --- sbom: a CycloneDX SBOM (JSON) of exactly the virtualenv the runtime stage carries, made by a
# tool installed apart (requirements/sbom.txt, hashed), so that the tool is in neither.
FROM ${PYTHON_IMAGE} AS sbom
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /opt/venv /opt/venv
WORKDIR /src
COPY requirements/sbom.txt requirements/
COPY pyproject.toml ./
RUN python -m venv /opt/sbom-tool \
 && /opt/sbom-tool/bin/pip install --require-hashes -r requirements/sbom.txt \
 && mkdir -p /sbom \
 && /opt/sbom-tool/bin/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
        --of JSON -o /sbom/warden.cdx.json /opt/venv

# --- runtime: the virtualenv on a clean slim Python, run as an unprivileged user
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="warden" \
      org.opencontainers.image.description="Warden services: intake, legal-review, disclosure, moderation" \
      dev.warden.sbom="/usr/share/doc/warden/sbom.cdx.json"
RUN groupadd --system --gid 10001 warden \
 && useradd --system --uid 10001 --gid warden --home-dir /home/warden --create-home \
        --shell /usr/sbin/nologin warden
COPY --from=build /opt/venv /opt/venv
# What the image holds, for scanners and audits: `docker run --rm --entrypoint cat IMAGE /usr/share/doc/warden/sbom.cdx.json`
COPY --from=sbom /sbom/warden.cdx.json /usr/share/doc/warden/sbom.cdx.json
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
