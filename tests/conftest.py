"""Root conftest: `tests` is a package (tests/__init__.py), so this file is imported as
`tests.conftest` with the repository root on sys.path, which makes `tests.support` importable."""

import pytest

pytest_plugins = ["tests.support.servers", "tests.support.whole_mesh"]


# The slowest modules first: run on several workers (./streamify test), the suite otherwise ends
# with one worker busy for minutes on the readme tier while the others sit idle.
SLOW_FIRST = (
    "tests/readme/",
    "tests/integration/test_transcode_corpus.py",
    "tests/integration/test_chaos.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)),
            len(SLOW_FIRST),
        )

    items.sort(key=rank)  # stable: the order inside each group stays
