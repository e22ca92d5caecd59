"""The shipped systemd units pass `systemd-analyze verify` with their paths pointing at this checkout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .processes import ROOT

UNITS = ["lprserver.service", "lprserver-websocket.service", "lprserver-retention.service",
         "lprserver-retention.timer"]
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is not installed (./setup.sh test)")


@pytest.fixture
def unit_dir(tmp_path) -> Path:
    venv = Path(sys.prefix)
    env_file = tmp_path / "lprserver.env"
    env_file.write_text("FLASK_CONFIG=production\n")
    for unit in UNITS:
        text = (ROOT / "systemd" / unit).read_text()
        text = text.replace("/opt/lprserver/.venv", str(venv)).replace("/opt/lprserver", str(ROOT))
        text = text.replace("/etc/lprserver/lprserver.env", str(env_file))
        (tmp_path / unit).write_text(text)
    return tmp_path


@pytest.mark.parametrize("unit", UNITS)
def test_unit_passes_systemd_analyze_verify(unit_dir, unit):
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit_dir / unit)],
                            capture_output=True, text=True, cwd=unit_dir,
                            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"})
    problems = [line for line in result.stderr.splitlines() if unit.split(".")[0] in line]
    assert result.returncode == 0 and not problems, result.stderr


def test_services_are_hardened_and_restart_always():
    for unit in ("lprserver.service", "lprserver-websocket.service"):
        text = (ROOT / "systemd" / unit).read_text()
        for line in ("Restart=always", "User=lprserver", "NoNewPrivileges=true", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/lprserver /var/log/lprserver", "PrivateTmp=true",
                     "ProtectHome=true", "After=network.target postgresql.service",
                     "Wants=postgresql.service", "EnvironmentFile=/etc/lprserver/lprserver.env"):
            assert line in text.splitlines(), (unit, line)
    web = (ROOT / "systemd" / "lprserver.service").read_text()
    assert "--worker-class gevent --workers ${WEB_WORKERS}" in web and "--bind unix:/run/lprserver/web.sock" in web
    # One worker unless the settings file, which systemd lets override Environment=, says WEB_WORKERS=N.
    assert "Environment=WEB_WORKERS=1" in web.splitlines()
