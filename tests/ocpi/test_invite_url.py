"""`manage.py ocpi_invite` prints the versions URL the server really serves (config/public_url.py): `make run`
serves on PORT (8000 unless given) and records that address, so an invitation made from another shell,
without PORT, names the port the server is on."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.public_url import RECORD, public_base_url

ROOT = Path(settings.BASE_DIR)


def test_the_address_is_derived_in_this_order(tmp_path):
    record = tmp_path / RECORD
    assert public_base_url(environ={}, var_dir=tmp_path) == "http://127.0.0.1:8000"
    record.write_text("http://127.0.0.1:8123\n")
    assert public_base_url(environ={}, var_dir=tmp_path) == "http://127.0.0.1:8123"
    assert public_base_url(environ={"PORT": "9000"}, var_dir=tmp_path) == "http://127.0.0.1:9000"
    environ = {"PORT": "8100", "EVHUB_BASE_URL": "https://hub.example.com/"}  # honcho's worker: its own PORT
    assert public_base_url(environ=environ, var_dir=tmp_path) == "https://hub.example.com"
    for junk in ("", "ftp://x", "http://a\x00b", "http://" + "a" * 300):
        record.write_text(junk)
        assert public_base_url(environ={"PORT": "x"}, var_dir=tmp_path) == "http://127.0.0.1:8000"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_on_port_and_records_the_address_every_process_gives_out():
    plan = subprocess.run(["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "EVHUB_BASE_URL": ""}).stdout
    assert re.search(r"honcho -f Procfile start -p 8123 web", plan)
    assert re.search(r'echo "\$EVHUB_BASE_URL" > "\$\{EVHUB_VAR_DIR:-var\}/base_url"', plan)
    makefile = (ROOT / "Makefile").read_text()
    assert "run: export EVHUB_BASE_URL ?= http://127.0.0.1:$(PORT)" in makefile
    assert "${PORT:-8000}" in (ROOT / "Procfile").read_text()


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the command runs in a process of its own")
@pytest.mark.parametrize("port_of_run", ["8000", "8123"])
def test_ocpi_invite_from_another_shell_prints_what_make_run_serves(transactional_db, tmp_path, port_of_run):
    (tmp_path / RECORD).write_text(f"http://127.0.0.1:{port_of_run}\n")  # what `make run` wrote
    environ = {key: value for key, value in os.environ.items() if key not in ("PORT", "EVHUB_BASE_URL")}
    environ.update(DATABASE_URL=_database_url(), EVHUB_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "manage.py", "ocpi_invite", "Shell platform"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"versions URL: http://127.0.0.1:{port_of_run}/ocpi/versions\n" in done.stdout
