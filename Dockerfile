# credit-audit: runs the audit flow on a mounted data file.
FROM python:3.11.7-slim-bookworm

# Pango/HarfBuzz for weasyprint (HarfBuzz subsetting for fast font embedding), a font.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 audit
WORKDIR /app

# CPU build of PyTorch; the rest exactly as locked.
COPY requirements.lock ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock

COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY flows ./flows
COPY reports ./reports
COPY templates ./templates
RUN pip install --no-cache-dir --no-deps . \
 && mkdir -p /app/data /app/runs && chown -R audit:audit /app

USER audit
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_HOME=/home/audit/.prefect \
    CREDIT_AUDIT_DATA=/app/data/UCI_Credit_Card.csv
VOLUME ["/app/data", "/app/runs"]
CMD ["credit-audit", "run", "--device", "cpu"]
