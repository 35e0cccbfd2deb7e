"""Where things are in a run directory (docs/outputs.md): names only, importable without numpy or pandas.

Every module that reads or writes a run's files takes the names from here, so
the layout is stated once; the command line's help texts use them too without
paying for the data libraries.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
AUDIT_JSON = "audit.json"
APPLICANTS = "applicants.parquet"
MODEL_DIR = "model"
REPORT_PDF = Path("reports") / "audit_report.pdf"
NOTICES_DIR = Path("reports") / "notices"
BACKGROUND = "background.parquet"
FAIRNESS = "fairness.parquet"
FLAGS = "flags.parquet"
SCHEMA_FILE = "schema.toml"  # a copy of the lender's schema file the run was made with (none: the default)
# Signed addenda to the manifest: files added to a sealed run later (re-issued notices), NNNN.json each.
ADDENDA_DIR = "manifest-addendum"
