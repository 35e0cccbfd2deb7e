# credit-audit: the audit flow on a mounted data file, and the review app, as a non-root user.
#
# The base is a build ARG so a closed network can use its own copy of the same Debian
# bookworm Python 3.11 image (../shared/tools/oci-build.sh provides a local stand-in).
# PyTorch is the CPU wheel pinned in requirements-runtime.lock: pip takes it from whatever
# pip is configured with (a mirror or a wheel folder), or from TORCH_INDEX_URL when given
# (on an open network: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the project's wheel only (sources do not reach the runtime image) ----------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY flows ./flows
COPY reports ./reports
COPY review ./review
RUN python -m pip wheel --no-cache-dir --no-deps -w /dist .

# ---- runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG TORCH_INDEX_URL=

# Pango/HarfBuzz for WeasyPrint (HarfBuzz subsetting for fast font embedding), one font family.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

# Exactly the runtime lock, nothing resolved beyond it (--no-deps), then checked whole:
# a CUDA build of torch would want nvidia-* packages the lock lacks and fail `pip check`.
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps ${TORCH_INDEX_URL:+--extra-index-url=$TORCH_INDEX_URL} \
      -r /tmp/requirements-runtime.lock \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c "import torch; assert torch.version.cuda is None, 'not the CPU build of torch'" \
 && rm /tmp/requirements-runtime.lock

COPY --from=wheel /dist /tmp/dist
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

RUN useradd --create-home --uid 10001 audit \
 && mkdir -p /app/data /app/runs && chown audit:audit /app/data /app/runs
USER audit
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    PREFECT_HOME=/home/audit/.prefect \
    MPLCONFIGDIR=/home/audit/.cache/matplotlib \
    CREDIT_AUDIT_DATA=/app/data/UCI_Credit_Card.csv
VOLUME ["/app/data", "/app/runs"]
ENTRYPOINT ["credit-audit"]
CMD ["run", "--device", "cpu"]
