"""The package as pip builds it: the MIT LICENSE travels in the wheel, the console script is
`acs`, and the metadata has the project URLs and classifiers (README "Install and run")."""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cliutil import REPO_ROOT
from tests.test_readme import fresh_copy


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The wheel pip builds from a copy of the project (a build leaves build/ in its source)."""
    base = tmp_path_factory.mktemp("wheel")
    copy = fresh_copy(base / "acs")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(copy), "-w", str(base / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = (base / "dist").glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info") and n.endswith(f"/{name}")]
    return wheel.read(path).decode()


def test_the_license_file_is_mit() -> None:
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) " in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_the_wheel_carries_the_license(wheel: zipfile.ZipFile) -> None:
    assert dist_info(wheel, "LICENSE") == (REPO_ROOT / "LICENSE").read_text()
    metadata = email.message_from_string(dist_info(wheel, "METADATA"))
    assert metadata["License-Expression"] == "MIT"


def test_the_console_script_is_acs(wheel: zipfile.ZipFile) -> None:
    entry_points = dist_info(wheel, "entry_points.txt")
    assert "[console_scripts]\nacs = acs_cli.__main__:entry\n" in entry_points
    from acs_cli.__main__ import entry

    assert callable(entry)


def test_the_metadata_names_urls_and_classifiers(wheel: zipfile.ZipFile) -> None:
    metadata = email.message_from_string(dist_info(wheel, "METADATA"))
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Issues", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier")
    for needed in ("Environment :: Console", "Topic :: Utilities"):
        assert needed in classifiers
    versions = sorted(c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.1"))
    assert versions == ["3.11", "3.12", "3.13"]
    assert metadata["Requires-Python"] == f">={versions[0]}"
    assert "llm" in metadata["Keywords"].split(",")
    assert metadata["Author"]


def test_the_wheel_holds_every_module_and_the_sample(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "acs_cli").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "acs_cli/data/rust.sse" in names  # `acs replay` with no file plays it
    assert not any(n.startswith("tests/") for n in names)


def test_pyproject_is_what_the_wheel_says() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert project["scripts"] == {"acs": "acs_cli.__main__:entry"}
    assert Path(REPO_ROOT / project["readme"]).exists()
