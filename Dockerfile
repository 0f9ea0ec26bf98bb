# syntax=docker/dockerfile:1
# Multi-stage: build a wheel and its dependencies, then copy only the installed packages into a slim runtime.
# BASE_IMAGE: any Debian-like image with Python 3.11 and its venv module as `python`; the official one by default.
# Without a registry, hack/image.sh passes one made locally with mmdebstrap (hack/base-image.sh).
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="coco-operator" \
      org.opencontainers.image.description="Kubernetes operator syncing Confluence spaces into Meilisearch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/coco-operator/coco-operator"
COPY --from=build /opt/venv /opt/venv
# MALLOC_ARENA_MAX: glibc's per-thread malloc arenas fragment a Python process that allocates from several threads
# (Meilisearch calls run in worker threads); two arenas kept a 10,000-page sync about 30 MB smaller (docs/benchmarks.md).
# LOGNAME: the user has no /etc/passwd entry (any numeric UID may run the image), and kopf names the operator with
# getpass.getuser(), which reads LOGNAME first and otherwise crashes on the missing entry.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp MALLOC_ARENA_MAX=2 \
    LOGNAME=coco-operator
# A numeric non-root user so that runAsNonRoot can be verified by the kubelet.
USER 65532:65532
EXPOSE 8000 8080
ENTRYPOINT ["coco-operator"]
CMD ["run"]
