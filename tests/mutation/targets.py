"""What is mutated, and which unit tests must notice.

Each target is one module (or, for authz, the methods that decide a request) with the unit
test files that exercise it: a mutant survives when all of them still pass. `first` names tests
(substrings of node ids) run before the others because they kill the most mutants, which only
makes a killed mutant's run shorter (pytest stops at the first failure).

AUDIT lists the hand-written mutants of the code-health audit that survived the unit tier
(docs/testing.md); `python -m tests.mutation --audit` runs just those. A generated mutant with
the same source carries the audit's label instead of being run twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

ROOT_TESTS = "tests/unit"


@dataclass(frozen=True)
class Target:
    name: str
    path: str  # repository-relative
    tests: tuple[str, ...]
    scope: tuple[str, ...] | None = None  # only these functions ("Class.method"), else all
    first: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """services/metadata/streamify/metadata/page_tokens.py -> streamify.metadata.page_tokens"""
        parts = PurePosixPath(self.path).with_suffix("").parts
        return ".".join(parts[parts.index("streamify") :])

    @property
    def package_dir(self) -> str:
        """The regular package holding the module (services/x/streamify/x): an overlay copies
        all of it, because a regular package is found in the first sys.path entry only."""
        parts = PurePosixPath(self.path).parts
        return str(PurePosixPath(*parts[: parts.index("streamify") + 2]))


def _t(name: str) -> str:
    return f"{ROOT_TESTS}/{name}"


_METADATA = (_t("test_metadata_rules.py"), _t("test_metadata_lifecycle.py"))
_DAG = (
    _t("test_orchestrator_dag.py"),
    _t("test_orchestrator_plan.py"),
    _t("test_orchestrator_tasks.py"),
    _t("test_orchestrator_assembly.py"),
    _t("test_orchestrator_bounds.py"),
    _t("test_media_errors.py"),
)
_MEDIA = (
    _t("test_media_plan.py"),
    _t("test_media_ladder.py"),
    _t("test_media_grid.py"),
    _t("test_worker_convert.py"),
    _t("test_orchestrator_bounds.py"),  # the plan's limits: ladder.plan_chunks(max_chunks=)
)
_GRANTS = (_t("test_media_grants.py"), _t("test_media_authz.py"))

TARGETS: tuple[Target, ...] = (
    Target(
        "metadata/state_machine", "services/metadata/streamify/metadata/state_machine.py", _METADATA
    ),
    Target(
        "metadata/page_tokens", "services/metadata/streamify/metadata/page_tokens.py", _METADATA
    ),
    Target(
        "upload/parts",
        "services/upload/streamify/upload/parts.py",
        (_t("test_upload_parts.py"), _t("test_upload_client.py")),
    ),
    Target("transcode/dag", "services/transcode/streamify/transcode/orchestrator/dag.py", _DAG),
    Target(
        "transcode/assembly",
        "services/transcode/streamify/transcode/orchestrator/assembly.py",
        _DAG,
    ),
    Target("transcode/ladder", "services/transcode/streamify/transcode/media/ladder.py", _MEDIA),
    Target("transcode/grid", "services/transcode/streamify/transcode/media/grid.py", _MEDIA),
    Target(
        "transcode/rotation",
        "services/transcode/streamify/transcode/media/rotation.py",
        (*_MEDIA, _t("test_media_rotation.py")),
    ),
    Target(
        "core/validation",
        "services/shared/streamify/core/validation.py",
        (_t("test_validation_edges.py"), _t("test_validation.py")),
        first=("validationtest.Rules",),
    ),
    Target("core/media_grants", "services/shared/streamify/core/media_grants.py", _GRANTS),
    Target(
        "gateway/authz",
        "services/gateway/streamify/gateway/authz.py",
        _GRANTS,
        scope=(
            "MediaAuthorizer.media_key_of",
            "MediaAuthorizer.cached",
            "MediaAuthorizer.quick",
            "MediaAuthorizer.decide",
        ),
    ),
)


@dataclass(frozen=True)
class AuditMutant:
    target: str
    old: str  # text in the module (kept short: others reformat code)
    new: str
    label: str
    occurrence: int = 1  # which occurrence of `old`


AUDIT: tuple[AuditMutant, ...] = (
    AuditMutant("metadata/state_machine", "UPLOADED: frozenset({PROCESSING, FAILED})",
                "UPLOADED: frozenset({PROCESSING})", "UPLOADED -> FAILED removed"),
    AuditMutant("metadata/state_machine", "FAILED: frozenset({UPLOADED, PROCESSING})",
                "FAILED: frozenset({PROCESSING})", "FAILED -> UPLOADED removed"),
    AuditMutant("metadata/state_machine", "FAILED: frozenset({UPLOADED, PROCESSING})",
                "FAILED: frozenset({UPLOADED, PROCESSING, UPLOADING})", "FAILED -> UPLOADING allowed"),
    AuditMutant("metadata/page_tokens", "_MAC_BYTES = 16", "_MAC_BYTES = 2",
                "page-token signature shortened to 2 bytes"),
    AuditMutant("upload/parts", "part_count=-(-total_size // part_size)",
                "part_count=total_size // part_size + 1", "part count rounded up wrongly"),
    AuditMutant("upload/parts", "return self.total_size - self.part_size * (self.part_count - 1)",
                "return self.total_size % self.part_size", "last part size as a remainder"),
    AuditMutant("upload/parts", "max(preferred_part_size, MIN_PART_BYTES, needed)",
                "max(preferred_part_size, MIN_PART_BYTES)", "10,000-part cap ignored"),
    AuditMutant("upload/parts", "if part_size > MAX_PART_BYTES:", "if part_size >= MAX_PART_BYTES:",
                "5 GiB part cap off by one"),
    AuditMutant("transcode/dag", "first_segment_index=c.first_segment_index,",
                "first_segment_index=c.index,", "chunk spec's first segment is the chunk index"),
    AuditMutant("transcode/dag", "rotation_degrees=info.video.rotation_degrees,",
                "rotation_degrees=0,", "rotation dropped from the plan"),
    # the first `rotation_degrees=plan...` is the chunk spec's, the second the poster spec's
    AuditMutant("transcode/dag", "rotation_degrees=plan.rotation_degrees,", "",
                "rotation dropped from the chunk spec"),
    AuditMutant("transcode/dag", "rotation_degrees=plan.rotation_degrees,", "",
                "rotation dropped from the poster spec", occurrence=2),
    AuditMutant("transcode/ladder", "_UPSCALE_TOLERANCE = 1.02", "_UPSCALE_TOLERANCE = 1.0",
                "upscale tolerance removed"),
    AuditMutant("transcode/ladder", "if src_w < 2 or src_h < 2:", "if src_w < 2:",
                "too-small check on the width only"),
)  # fmt: skip
