"""The wheel, installed outside the checkout, runs a whole audit as a new user would.

The wheel is built from a copy of the sources (so the checkout gets no build/
folder) and installed into a fresh virtual environment in a temporary folder.
Then the installed console command runs `credit-audit run` on a 1,000-row
slice of the real file, `verify`, `notice`, and `review` (the app must answer
on 127.0.0.1). Every command runs with the temporary folder as its working
directory, no PYTHONPATH and a HOME of its own, so nothing can come from the
source tree.

Why the fresh environment reuses this one's dependencies: installing the full
dependency set into a new venv takes minutes (torch alone is ~750 MB), too
long for every `make test`. So the wheel is installed with `--no-deps` into a
venv created `--without-pip`, and one `.pth` file in that venv appends this
environment's site-packages (the third-party libraries) to its sys.path. That
cannot import the project from the checkout: the venv's own site-packages,
which holds the wheel's packages, comes first on sys.path, and Python does not
run the `.pth` files of a folder that a `.pth` file appended, so this
environment's editable-install hook never runs there. The test asserts it:
every project package and both template folders must resolve under the
venv's own site-packages. Whether the declared runtime dependencies alone
suffice is what the container image checks (scripts/check-image.sh installs
only requirements-runtime.lock).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flows.identity import code_version

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "flows", "reports", "review")
SLICE_ROWS = 1000
RUN_TIMEOUT_S = 480
REVIEWER = ("wheel.analyst", "wheel-test-password-0123456789")
# Prints where each project package and each template folder was imported from, and the code version.
WHERE = """
import json, flows, pipeline, reports, review
from flows.identity import code_version
from reports._env import TEMPLATES_DIR
from review._app import TEMPLATES
print(json.dumps({"packages": {m.__name__: m.__file__ for m in (pipeline, flows, reports, review)},
                  "templates": [str(TEMPLATES_DIR), str(TEMPLATES)], "code_version": code_version()}))
"""


def _build_wheel(work: Path) -> Path:
    """`pip wheel` of a copy of the project (pyproject, README and the four packages), isolated build."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = dist.glob("credit_audit-*.whl")
    return wheel


def _venv_with_wheel(work: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel, with this environment's third-party libraries appended by one .pth."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    own = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              check=True, capture_output=True, text=True).stdout.strip())
    (own / "zz_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory, data_path, prefect_api) -> dict:
    """The wheel installed in a venv outside the checkout, the environment its commands run with, a data slice."""
    work = tmp_path_factory.mktemp("wheel")
    venv = _venv_with_wheel(work, _build_wheel(work))
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CREDIT_AUDIT"))}
    env.update(HOME=str(home), PREFECT_HOME=str(home / ".prefect"), PREFECT_API_URL=prefect_api,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    data = work / "slice.csv"  # a slice of the real file, written here only (never committed)
    pd.read_csv(data_path, nrows=SLICE_ROWS).to_csv(data, index=False)
    return {"work": work, "venv": venv, "env": env, "data": data}


def _cli(installed: dict, *args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(installed["venv"] / "bin" / "credit-audit"), *args], cwd=installed["work"],
                          env=installed["env"], capture_output=True, text=True, timeout=timeout, input=stdin)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


@pytest.fixture(scope="module")
def public_key(installed) -> Path:
    """The operator's key, made by the installed command in the fresh HOME's keystore (outside every run)."""
    _cli(installed, "keys", "init")
    key = Path(installed["env"]["HOME"]) / ".config" / "credit-audit" / "keys" / "signing-key.pub"
    assert key.is_file()
    return key


@pytest.fixture(scope="module")
def run_dir(installed, public_key) -> Path:  # noqa: ARG001 - the run is signed with that key
    out = installed["work"] / "runs" / "slice"
    done = _cli(installed, "run", "--data", str(installed["data"]), "--out", str(out), "--device", "cpu",
                "--notice-limit", "5", timeout=RUN_TIMEOUT_S)
    assert f"Outputs are in {out}" in done.stdout
    return out


def test_project_is_imported_from_the_installed_wheel(installed):
    python = installed["venv"] / "bin" / "python"
    where = json.loads(subprocess.run([str(python), "-c", WHERE], cwd=installed["work"], env=installed["env"],
                                      check=True, capture_output=True, text=True).stdout)
    site_packages = (installed["venv"] / "lib").resolve()
    for name, file in where["packages"].items():
        assert Path(file).resolve().is_relative_to(site_packages), f"{name} came from {file}"
    for folder in where["templates"]:
        assert Path(folder).resolve().is_relative_to(site_packages) and any(Path(folder).glob("*.html.j2")), folder
    # the wheel holds every source and template file the checkout has: same code version
    assert where["code_version"] == code_version()


def test_run_writes_the_report_and_notices(run_dir):
    assert (run_dir / "audit.json").is_file() and (run_dir / "manifest.json").is_file()
    assert (run_dir / "reports" / "audit_report.pdf").read_bytes().startswith(b"%PDF")
    assert len(list((run_dir / "reports" / "notices").glob("*.pdf"))) == 5


def test_verify_accepts_the_run(installed, run_dir, public_key):
    done = _cli(installed, "verify", "--run", str(run_dir), "--public-key", str(public_key))
    assert "no altered, missing or removed record" in done.stdout and done.stdout.startswith("run ")


def test_notice_for_one_applicant(installed, run_dir):
    table = pd.read_parquet(run_dir / "applicants.parquet")
    applicant = str(int(table["id"].iloc[0]))
    out = installed["work"] / "one-notice"
    done = _cli(installed, "notice", "--run", str(run_dir), "--id", applicant, "--out", str(out))
    pdf = Path(done.stdout.strip().splitlines()[-1])
    assert pdf.parent == out and pdf.read_bytes().startswith(b"%PDF")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_review_app_answers_on_loopback(installed, run_dir):
    """An account made by the installed `users add` (in the fresh HOME's keystore folder) signs in to the app."""
    _cli(installed, "users", "add", REVIEWER[0], "--role", "analyst", "--password-stdin", stdin=REVIEWER[1] + "\n")
    port = _free_port()
    log_path = installed["work"] / "review.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(installed["venv"] / "bin" / "credit-audit"), "review", "--run", str(run_dir),
                                 "--port", str(port)], cwd=installed["work"], env=installed["env"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        page, deadline = None, time.monotonic() + 120
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None, f"the review app did not answer:\n{log_path.read_text()[-3000:]}"
        assert page.status_code == 303 and page.headers["location"].startswith("/login")  # no page without a sign-in
        page = httpx.get(f"http://127.0.0.1:{port}/", auth=REVIEWER, timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "wheel.analyst (analyst)" in page.text
        css = httpx.get(f"http://127.0.0.1:{port}/static/review.css", timeout=5)
        assert css.status_code == 200 and css.text == (REPO / "review" / "templates" / "review.css").read_text()
        js = httpx.get(f"http://127.0.0.1:{port}/static/review.js", timeout=5)  # the keyboard script is package data
        assert js.status_code == 200 and js.text == (REPO / "review" / "templates" / "review.js").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
