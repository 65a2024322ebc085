"""Docs that are generated from code stay in step with it."""

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
