"""Point 11: deploy/build-base-images.sh takes the Debian archive from the host's own apt
configuration -- one-line ``sources.list`` and ``*.list`` files, and deb822 ``*.sources`` -- and names
no mirror host itself; with none configured it stops with a clear line. The configurations here use
reserved ``.example`` names, never a real mirror."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.faults.helpers import ROOT

SCRIPT = ROOT / "deploy" / "build-base-images.sh"


def _mirror(apt: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    full.update(env, RUNNER_APT_DIR=str(apt))
    return subprocess.run(["bash", str(SCRIPT), "--print-mirror"], capture_output=True, text=True, env=full, timeout=30)


def _apt(tmp_path: Path, files: dict[str, str]) -> Path:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (apt / name).write_text(text)
    return apt


DEB822 = """\
Types: deb
# a comment line inside the stanza
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://archive.example/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"sources.list": "deb http://one.example/debian bookworm main\n"}, "http://one.example/debian"),
        (
            {
                "sources.list": "# deb http://commented.example/debian bookworm main\n"
                "deb-src http://src.example/debian bookworm main\n"
                "deb http://sec.example/debian-security bookworm-security main\n"
                "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://opts.example/debian bookworm main\n"
            },
            "https://opts.example/debian",
        ),
        (
            {"sources.list.d/local.list": "deb http://list-d.example/debian stable main\n"},
            "http://list-d.example/debian",
        ),
        ({"sources.list.d/debian.sources": DEB822}, "http://archive.example/debian"),
        (
            {
                "sources.list.d/a.sources": "Types: deb\nURIs: http://off.example/debian\n"
                "Suites: bookworm\nEnabled: no\n",
                "sources.list.d/b.sources": "Types: deb-src deb\nURIs: http://on.example/debian\nSuites: bookworm\n",
            },
            "http://on.example/debian",
        ),
        (
            {"sources.list.d/x.list.off": "deb http://disabled.example/debian bookworm main\n", "sources.list": ""},
            None,
        ),
    ],
    ids=["one-line", "options-and-noise", "list-d", "deb822", "deb822-enabled", "none"],
)
def test_the_archive_comes_from_apt(files: dict[str, str], expected: str | None, tmp_path: Path) -> None:
    proc = _mirror(_apt(tmp_path, files))
    if expected is None:
        assert proc.returncode == 1 and proc.stdout == ""
        assert "no Debian archive found" in proc.stderr and "DEBIAN_MIRROR" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected


def test_debian_mirror_overrides(tmp_path: Path) -> None:
    proc = _mirror(_apt(tmp_path, {"sources.list": ""}), DEBIAN_MIRROR="http://chosen.example/debian")
    assert proc.returncode == 0 and proc.stdout.strip() == "http://chosen.example/debian"


def test_no_apt_configuration_at_all(tmp_path: Path) -> None:
    proc = _mirror(tmp_path / "nowhere")
    assert proc.returncode == 1 and "no Debian archive found" in proc.stderr


def test_the_script_names_no_host() -> None:
    """No URL at all in the script: whatever it fetches from comes from the machine's configuration."""
    text = SCRIPT.read_text()
    assert not re.search(r"(?i)\b(?:https?|ftp)://[a-z0-9]", text), "a host is named in the script"
