"""Finding the dataset: CLI path, then $CREDIT_AUDIT_DATA, then data/, then the official UCI download.

A scheduled audit must not hang on a network that is not there: the download
has a short timeout, and every failure ends in one message that says exactly
where to put the file.
"""

from __future__ import annotations

import io
import os
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd

from ._io import atomic_write_text

UCI_URL = "https://archive.ics.uci.edu/static/public/350/default+of+credit+card+clients.zip"
ENV_VAR = "CREDIT_AUDIT_DATA"
URL_ENV_VAR = "CREDIT_AUDIT_DATA_URL"  # an internal mirror of the UCI zip, for closed networks
DEFAULT_PATH = Path("data") / "UCI_Credit_Card.csv"
MSG_NOT_FOUND = (
    "The dataset was not found at {path} and could not be downloaded from {url} ({reason}).\n"
    "Download 'default of credit card clients' (UCI dataset 350) yourself and save it as CSV at\n"
    "  {path}\n"
    "or pass --data PATH, or set {env}=PATH."
)


class DatasetUnavailable(RuntimeError):
    """No local file and no download: the message tells the user what to do."""


def candidate_path(cli_path: str | Path | None) -> Path:
    if cli_path:
        return Path(cli_path)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def download_dataset(dest: Path, url: str = UCI_URL, timeout: float = 20.0) -> Path:
    """Fetch the UCI zip, convert its spreadsheet to CSV (two-row header kept) at `dest`."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
        payload = resp.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        sheet = next(n for n in zf.namelist() if n.lower().endswith((".xls", ".xlsx")))
        frame = pd.read_excel(io.BytesIO(zf.read(sheet)), header=None)
    return atomic_write_text(dest, frame.to_csv(index=False, header=False))


def locate_dataset(cli_path: str | Path | None = None, url: str | None = None, timeout: float = 20.0) -> Path:
    """Return an existing data file, downloading to the expected place if needed."""
    url = url or os.environ.get(URL_ENV_VAR) or UCI_URL
    path = candidate_path(cli_path)
    if path.exists():
        return path
    try:
        return download_dataset(path, url, timeout)
    except Exception as exc:  # any network/zip/format failure ends in the same advice
        reason = f"{type(exc).__name__}: {exc}"
        raise DatasetUnavailable(MSG_NOT_FOUND.format(path=path, url=url, reason=reason, env=ENV_VAR)) from None
