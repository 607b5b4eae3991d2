# sense-preflight: the image the in-cluster Job runs (`sense-preflight in-cluster`, or the
# manifests of `sense-preflight job`). Every installed version is pinned by requirements.lock
# (.ci/lock-image.sh), so two builds hold the same packages.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY preflight ./preflight
COPY checks ./checks
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint requirements.lock .

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin preflight
# The wheels are mounted from the build stage, not copied: they never become a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/requirements.lock,target=/requirements.lock \
    pip install --no-cache-dir --no-index --find-links /wheels \
        --constraint /requirements.lock sense-preflight
USER 10001
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["sense-preflight"]
CMD ["--help"]
