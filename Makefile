# The two commands of the README: `make audit` and `make test`. Both set up
# everything they need on a fresh machine (Debian packages when root, .venv).
# .venv is the development environment: requirements.lock (runtime + dev, pinned)
# and the project editable with its `dev` extra. The image installs only
# requirements-runtime.lock; the supply-chain tools live in .venv-tools.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS ?= .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
SUPPLY := build/supply-chain
DATA ?= $(or $(CREDIT_AUDIT_DATA),data/UCI_Credit_Card.csv)
OUT ?=
DEVICE ?= auto
PIP := --quiet --disable-pip-version-check
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: audit test lint bench setup wheel image sbom pip-audit lock-runtime

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	bash scripts/system-deps.sh
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP) -r requirements.lock
	# the dev extra, resolved against what the lock installed (nothing new is fetched)
	$(PY) -m pip install $(PIP) --no-build-isolation -c requirements.lock -e '.[dev]'
	touch $(STAMP)

audit: $(STAMP)
	# the operator's signing key (outside the run); created once, kept in the keystore
	$(VENV)/bin/credit-audit keys show > /dev/null 2>&1 || $(VENV)/bin/credit-audit keys init
	$(VENV)/bin/credit-audit run --data "$(DATA)" --device $(DEVICE) $(if $(OUT),--out "$(OUT)")

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/explain.py

# The distributable wheel in dist/ (templates included as package data).
wheel: $(STAMP)
	$(PY) -m pip wheel $(PIP) --no-deps -w dist .

# Build the container image and audit a slice of the real file in it (podman; see the README).
image:
	bash scripts/check-image.sh

lock-runtime:
	bash scripts/lock-runtime.sh

$(TOOLS_STAMP): requirements-tools.lock
	test -x $(TOOLS)/bin/python || python3.11 -m venv $(TOOLS) || python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install $(PIP) -r requirements-tools.lock
	touch $(TOOLS_STAMP)

# CycloneDX SBOMs of the locked environments: what the image ships, and the whole development tree.
sbom: $(TOOLS_STAMP)
	mkdir -p $(SUPPLY)
	$(TOOLS)/bin/cyclonedx-py requirements requirements-runtime.lock --pyproject pyproject.toml \
	  --output-reproducible -o $(SUPPLY)/sbom-runtime.cdx.json
	$(TOOLS)/bin/cyclonedx-py requirements requirements.lock --pyproject pyproject.toml \
	  --output-reproducible -o $(SUPPLY)/sbom-full.cdx.json
	@echo "SBOMs written: $(SUPPLY)/sbom-runtime.cdx.json, $(SUPPLY)/sbom-full.cdx.json"

# Known vulnerabilities in the pinned tree (requirements.lock holds the runtime lock's pins too).
pip-audit: $(TOOLS_STAMP)
	python3 scripts/pip_audit_report.py $(TOOLS)/bin/pip-audit requirements.lock $(SUPPLY)
