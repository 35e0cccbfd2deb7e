# The two commands of the README: `make audit` and `make test`. Both set up
# everything they need on a fresh machine (Debian packages when root, .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA ?= $(or $(CREDIT_AUDIT_DATA),data/UCI_Credit_Card.csv)
OUT ?=
DEVICE ?= auto
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: audit test lint bench setup

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	bash scripts/system-deps.sh
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

audit: $(STAMP)
	$(VENV)/bin/credit-audit run --data "$(DATA)" --device $(DEVICE) $(if $(OUT),--out "$(OUT)")

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/explain.py
