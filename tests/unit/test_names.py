"""Resource names and object keys: one format, parsed back exactly, anything else refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamify.core import names, storage_keys
from streamify.core.auth import Principal

ids = st.from_regex(rf"\A{names.ID}\Z", fullmatch=True)
subjects = st.from_regex(rf"\A{names.SUBJECT}\Z", fullmatch=True)
COLLECTIONS = [names.VIDEOS, names.UPLOADS, names.TRANSCODE_JOBS]


@pytest.mark.parametrize("collection", COLLECTIONS, ids=lambda c: c.plural)
@given(resource_id=ids)
def test_a_name_parses_back_to_its_id(collection, resource_id):
    assert collection.id_of(collection.name(resource_id)) == resource_id
    assert collection.id_in(collection.name(resource_id)) == resource_id


@given(subject=subjects)
def test_a_user_name_parses_back_to_the_subject(subject):
    assert names.USERS.id_of(names.USERS.name(subject)) == subject
    assert names.is_subject(subject)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "videos/",
        "videos",
        "uploads/abc",
        "videos/abc/",
        "videos/abc/def",
        "videos/ABC",
        "videos/-abc",
        "videos/a_b",
        "videos/abc\n",
        "/videos/abc",
        "videos/" + "a" * 64,
        "Videos/abc",
    ],
)
def test_anything_but_one_video_name_has_no_video_id(name):
    assert names.VIDEOS.id_of(name) is None
    with pytest.raises(ValueError, match="not a name of videos"):
        names.VIDEOS.id_in(name)


def test_the_longest_id_is_63_characters():
    assert names.VIDEOS.id_of("videos/" + "a" * 63) == "a" * 63


@pytest.mark.parametrize("subject", ["", "Alice", "_alice", "alice\n", "al ice", "a" * 64, "é"])
def test_a_subject_outside_the_alphabet_is_refused(subject):
    assert not names.is_subject(subject)
    assert names.USERS.id_of(f"users/{subject}") is None


def test_a_service_never_has_a_users_name():
    user = Principal(subject="upload", kind="user")
    service = Principal(subject="upload", kind="service")
    assert user.user_name == "users/upload"
    assert service.user_name == "services/upload"


@given(job=ids, task=st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z", fullmatch=True))
def test_a_task_name_parses_back(job, task):
    assert names.parse_task(names.task(job, task)) == (job, task)


@pytest.mark.parametrize(
    "resource",
    ["transcodeJobs/abc/tasks/", "transcodeJobs/abc/tasks/x\n", "transcodeJobs/ABC/tasks/x"],
)
def test_a_task_name_with_an_empty_or_foreign_part_names_no_task(resource):
    assert names.parse_task(resource) is None


@given(video=ids, upload=ids)
def test_an_uploads_key_lies_under_its_videos_source_prefix(video, upload):
    key = storage_keys.source_key(video, upload)
    assert key.startswith(storage_keys.source_prefix(video))
    assert key.removeprefix(storage_keys.source_prefix(video)) == upload


@given(video=ids, upload=ids)
def test_an_incoming_key_is_never_under_any_videos_source_prefix(video, upload):
    # the Transcode service reads only below sources/: bytes a replayed URL writes must not be
    assert not storage_keys.incoming_key(video, upload).startswith("sources/")
    assert storage_keys.incoming_key(video, upload) != storage_keys.source_key(video, upload)


def test_one_videos_prefix_is_not_a_prefix_of_anothers():
    # "videos/ab/" must not cover "videos/abc/": the trailing slash is what scopes a grant
    assert not storage_keys.media_prefix("abc").startswith(storage_keys.media_prefix("ab"))
    assert not storage_keys.source_prefix("abc").startswith(storage_keys.source_prefix("ab"))
