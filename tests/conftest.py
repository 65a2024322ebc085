"""Root conftest: `tests` is a package (tests/__init__.py), so this file is imported as
`tests.conftest` with the repository root on sys.path, which makes `tests.support` importable."""

pytest_plugins = ["tests.support.servers", "tests.support.whole_mesh"]
