#!/usr/bin/env bash
# What the image smoke tests (tests/test_image.py) need: buildah, which builds and runs images
# without a Docker engine, and a stand-in for the `python:3.11-slim` base the Dockerfile starts
# from (no registry to pull it from here): Debian bookworm's python3 in a minimal root
# filesystem, with `python3 -m venv /usr/local` giving it `python` and `pip` where the official
# image has them. The test session builds the project's image on top of it.
set -euo pipefail

BASE=localhost/python:3.11-slim
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot

if ! command -v buildah >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends buildah mmdebstrap
fi

if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "stand-in base $BASE already built"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/base.tar"
  cat > "$work/Containerfile" <<'CONTAINERFILE'
FROM scratch
ADD base.tar /
RUN python3 -m venv /usr/local
ENV LANG=C.UTF-8
CMD ["python3"]
CONTAINERFILE
  buildah bud --quiet --layers=false -t "$BASE" -f "$work/Containerfile" "$work"
fi
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$BASE"
