"""Docs that are generated from code stay in step with it."""

import re
from pathlib import Path

import pytest

from streamify.core.config import settings_table

pytestmark = pytest.mark.contract
DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_operations_guide_lists_every_setting_as_the_code_defines_it():
    text = (DOCS / "operations.md").read_text()
    begin, end = "<!-- settings-table:begin -->\n", "\n<!-- settings-table:end -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == settings_table(), "update docs/operations.md with `./streamify config`"


def test_every_module_the_architecture_map_names_is_where_it_says():
    """docs/architecture.md's "Repository layout": each row's folder exists and every `x.py`
    the row names is a file in that folder (a moved or renamed module fails here)."""
    root = DOCS.parent
    text = (DOCS / "architecture.md").read_text()
    table = text[text.index("## Repository layout") : text.index("**One distribution")]
    checked = 0
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) < 4 or not cells[1].strip().startswith("`"):
            continue
        folders = [
            Path(stem, part)
            for item in re.findall(r"`([^`]+)`", cells[1])
            for stem, parts in [re.fullmatch(r"([^{]*)(?:\{(.*)\})?/?", item).groups()]
            for part in (parts.split(",") if parts else [""])
        ]
        assert folders, row
        for folder in folders:
            assert (root / folder).is_dir(), f"{folder}/ named in docs/architecture.md is gone"
        for module in re.findall(r"`([a-z_/]+\.(?:py|js))`", cells[2]):
            assert any((root / f / module).is_file() for f in folders), (
                f"docs/architecture.md says {module} is in {folders[0]}/, it is not"
            )
            checked += 1
    assert checked >= 30, checked
