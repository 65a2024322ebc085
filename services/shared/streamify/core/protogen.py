"""Generates the Python stubs (messages, .pyi types, gRPC stubs) from proto/ into one place.

Output goes to services/shared: `streamify/v1/*` for our contracts and `buf/validate/*` for the
vendored protovalidate rules. Those files are generated, never edited by hand; the test suite
regenerates them into a temporary directory and fails when the committed copies are stale.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
PROTO_ROOT = REPO_ROOT / "proto"
OUTPUT_ROOT = REPO_ROOT / "services" / "shared"
GENERATED_PACKAGES = ("streamify/v1", "buf/validate")


def proto_files() -> list[Path]:
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    well_known = resources.files("grpc_tools") / "_proto"
    # mypy-protobuf's plugins write the type stubs: `*_pb2.pyi` (messages, enums, typed
    # extensions) and `*_pb2_grpc.pyi` (stubs and servicers). A dev dependency, installed
    # beside this interpreter.
    plugins = Path(sys.executable).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
        f"--mypy_out={out_dir}",
        f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out={out_dir}",
        *map(str, proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")


def _generated_files(root: Path) -> dict[str, Path]:
    files = {}
    for package in GENERATED_PACKAGES:
        for path in (root / package).glob("*.py*"):
            files[str(path.relative_to(root))] = path
    return files


def stale_files() -> list[str]:
    """Names of generated files that differ from what the protos generate now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh, committed = _generated_files(fresh_root), _generated_files(OUTPUT_ROOT)
        names = sorted(set(fresh) | set(committed))
        return [
            n
            for n in names
            if n not in fresh
            or n not in committed
            or not filecmp.cmp(fresh[n], committed[n], shallow=False)
        ]


def write() -> None:
    for package in GENERATED_PACKAGES:
        shutil.rmtree(OUTPUT_ROOT / package, ignore_errors=True)
    generate(OUTPUT_ROOT)
    for package in GENERATED_PACKAGES:
        (OUTPUT_ROOT / package / "README.md").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--check" in argv:
        stale = stale_files()
        for name in stale:
            print(f"stale: {name}")
        return 1 if stale else 0
    write()
    print(f"generated stubs for {len(proto_files())} proto files into {OUTPUT_ROOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
