"""The UploadService servicer: checks declarations, signs URLs, verifies with storage and
records the completed upload together with its outbox entry."""

from __future__ import annotations

import base64
import hashlib
import secrets

import grpc

from streamify.core import errors, names, storage_keys
from streamify.core.auth import Principal, current_principal
from streamify.core.clock import now_us, timestamp_of
from streamify.core.config import UploadSettings
from streamify.core.db import run_in_thread
from streamify.core.humanize import human_bytes
from streamify.core.metadata_client import MetadataClient
from streamify.upload.abandon import abort_upload
from streamify.upload.models import UploadRow
from streamify.upload.outbox import OutboxRelay
from streamify.upload.parts import PartPlan, plan_parts
from streamify.upload.storage import UploadStorage
from streamify.upload.store import ABORTED, COMPLETED, PENDING, UploadStore
from streamify.v1 import metadata_service_pb2 as meta
from streamify.v1 import upload_service_pb2 as api
from streamify.v1 import upload_service_pb2_grpc
from streamify.v1.upload_service_pb2 import UploadState
from streamify.v1.video_pb2 import VideoStatus

DEFAULT_LIST_PARTS_PAGE = 1000
TOO_MANY_PENDING = "too many unfinished uploads at once: this upload was refused"


def new_id() -> str:
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def video_request_id(owner: str, request_id: str) -> str:
    """The idempotency key of the CreateVideo an upload makes. Upload calls Metadata under its one
    service identity, so the key must carry the user: another user's request_id (guessed or
    copied) must never answer with their video. A digest keeps it inside the 64-character limit
    whatever the lengths of owner and request_id."""
    if not request_id:
        return ""
    digest = hashlib.sha256(f"{owner}\n{request_id}".encode()).hexdigest()[:48]
    return f"upload-{digest}"


class UploadService(upload_service_pb2_grpc.UploadServiceServicer):
    def __init__(
        self,
        *,
        store: UploadStore,
        storage: UploadStorage,
        metadata: MetadataClient,
        relay: OutboxRelay,
        limits: UploadSettings,
    ) -> None:
        self._store = store
        self._storage = storage
        self._metadata = metadata
        self._relay = relay
        self._limits = limits

    # --- creating ---------------------------------------------------------------------------

    async def CreateUpload(
        self,
        request: api.CreateUploadRequest,
        context: grpc.aio.ServicerContext[api.CreateUploadRequest, api.Upload],
    ) -> api.Upload:
        principal = self._user()
        limits = self._limits
        if request.size_bytes > limits.max_bytes:
            raise errors.invalid_argument(
                [
                    (
                        "size_bytes",
                        (
                            f"the file is {human_bytes(request.size_bytes)}; the largest upload accepted is "
                            f"{human_bytes(limits.max_bytes)}"
                        ),
                    )
                ],
                reason="FILE_TOO_LARGE",
            )
        if request.request_id:
            existing = await run_in_thread(
                self._store.by_request_id, principal.subject, request.request_id
            )
            if existing is not None:
                if (existing.file_name, existing.size_bytes, existing.content_type) != (
                    request.file_name,
                    request.size_bytes,
                    request.content_type,
                ):
                    raise errors.invalid_argument(
                        [
                            (
                                "request_id",
                                (
                                    f"already used for another upload ({existing.file_name}, {existing.size_bytes} bytes); "
                                    "a new upload needs a new request_id"
                                ),
                            )
                        ],
                        reason="REQUEST_ID_REUSED",
                    )
                return self._to_proto(existing)
        pending = await run_in_thread(self._store.pending_count, principal.subject)
        if pending >= limits.max_pending_per_user:  # the cheap check; insert() makes it exact
            raise self._too_many_pending(pending)
        multipart = request.multipart or request.size_bytes > limits.single_put_max_bytes
        plan = None
        if multipart:
            try:
                plan = plan_parts(request.size_bytes, limits.part_size_bytes)
            except ValueError as exc:
                raise errors.invalid_argument([("size_bytes", str(exc))]) from None

        video = await self._metadata.create_video(
            owner=principal.user_name,
            title=request.title or request.file_name,
            description=request.description,
            size_bytes=request.size_bytes,
            visibility=request.visibility,
            request_id=video_request_id(principal.subject, request.request_id),
        )
        video_id = names.VIDEOS.id_in(video.name)
        upload_id = new_id()
        # A single PUT lands outside `sources/`: its URL can be replayed until it expires, so
        # only the copy CompleteUpload seals is ever transcoded. A multipart upload is sealed
        # by completing it (its part URLs die with the storage upload id).
        key = (
            storage_keys.source_key(video_id, upload_id)
            if multipart
            else storage_keys.incoming_key(video_id, upload_id)
        )
        s3_upload_id = (
            await run_in_thread(self._storage.start_multipart, key, request.content_type)
            if multipart
            else ""
        )
        created = now_us()
        row = UploadRow(
            id=upload_id,
            owner=principal.subject,
            video_id=video_id,
            file_name=request.file_name,
            size_bytes=request.size_bytes,
            content_type=request.content_type,
            sha256=request.sha256,
            state=PENDING,
            multipart=multipart,
            bucket=self._storage.bucket,
            object_key=key,
            s3_upload_id=s3_upload_id,
            part_size=plan.part_size if plan else 0,
            part_count=plan.part_count if plan else 0,
            request_id=request.request_id,
            create_time_us=created,
            expire_time_us=created + int(limits.expiry_seconds * 1e6),
            end_reason="",
        )
        if not await run_in_thread(self._store.insert, row, limits.max_pending_per_user):
            # another CreateUpload of this user took the last slot since the check above: the
            # video made for this one ends FAILED with the reason, and nothing was signed
            if s3_upload_id:
                await run_in_thread(self._storage.abort_multipart, key, s3_upload_id)
            await self._metadata.update_status(
                meta.UpdateVideoStatusRequest(
                    name=video.name,
                    status=VideoStatus.VIDEO_STATUS_FAILED,
                    failure_reason=TOO_MANY_PENDING,
                )
            )
            raise self._too_many_pending(limits.max_pending_per_user)
        return self._to_proto(row)

    async def GetUpload(
        self,
        request: api.GetUploadRequest,
        context: grpc.aio.ServicerContext[api.GetUploadRequest, api.Upload],
    ) -> api.Upload:
        return self._to_proto(await self._owned(request.name))

    # --- parts --------------------------------------------------------------------------------

    async def SignParts(
        self,
        request: api.SignPartsRequest,
        context: grpc.aio.ServicerContext[api.SignPartsRequest, api.SignPartsResponse],
    ) -> api.SignPartsResponse:
        row = await self._owned(request.name)
        self._require_pending_multipart(row)
        plan = self._plan(row)
        out_of_range = [
            (
                f"part_numbers[{i}]",
                f"part {n} does not exist; this upload has {plan.part_count} parts",
            )
            for i, n in enumerate(request.part_numbers)
            if n > plan.part_count
        ]
        if out_of_range:
            raise errors.invalid_argument(out_of_range)
        expires = timestamp_of(now_us() + self._limits.url_ttl_seconds * 1_000_000)

        def sign_all() -> list[api.SignedPart]:  # ~0.2 ms a part: off the event loop
            return [
                api.SignedPart(
                    part_number=n,
                    size_bytes=plan.length_of(n),
                    expire_time=expires,
                    url=self._storage.sign_part(
                        row.object_key, row.s3_upload_id, n, plan.length_of(n)
                    ),
                )
                for n in request.part_numbers
            ]

        return api.SignPartsResponse(parts=await run_in_thread(sign_all))

    async def ListParts(
        self,
        request: api.ListPartsRequest,
        context: grpc.aio.ServicerContext[api.ListPartsRequest, api.ListPartsResponse],
    ) -> api.ListPartsResponse:
        row = await self._owned(request.name)
        self._require_pending_multipart(row)
        stored = await run_in_thread(self._storage.list_parts, row.object_key, row.s3_upload_id)
        if stored is None:
            raise errors.failed_precondition(
                f"storage no longer holds the parts of {request.name}; start a new upload",
                reason="UPLOAD_GONE",
            )
        after = 0
        if request.page_token:
            if not request.page_token.isdigit():
                raise errors.invalid_argument([("page_token", "is not a token this server issued")])
            after = int(request.page_token)
        size = request.page_size or DEFAULT_LIST_PARTS_PAGE
        page = [p for p in stored if p.number > after][:size]
        more = bool(page) and any(p.number > page[-1].number for p in stored)
        return api.ListPartsResponse(
            parts=[
                api.UploadedPart(part_number=p.number, size_bytes=p.size, etag=p.etag) for p in page
            ],
            next_page_token=str(page[-1].number) if more else "",
        )

    # --- finishing ----------------------------------------------------------------------------

    async def CompleteUpload(
        self,
        request: api.CompleteUploadRequest,
        context: grpc.aio.ServicerContext[api.CompleteUploadRequest, api.Upload],
    ) -> api.Upload:
        row = await self._owned(request.name)
        if row.state == COMPLETED:
            return self._to_proto(row)  # a retry after a lost reply: nothing is queued twice
        if row.state == ABORTED:
            raise errors.failed_precondition(
                f"{request.name} was aborted ({row.end_reason}); start a new upload",
                reason="UPLOAD_ABORTED",
            )
        sealed = row.source_key
        if row.multipart:
            await self._complete_in_storage(row, request)
        elif row.object_key != sealed:
            await run_in_thread(self._storage.seal, row.object_key, sealed)
        await self._check_sealed(row, sealed)
        if row.object_key != sealed:
            await run_in_thread(self._storage.delete, row.object_key)
        await run_in_thread(self._store.complete, row)
        self._relay.kick()
        return self._to_proto(await self._owned(request.name))

    async def AbortUpload(
        self,
        request: api.AbortUploadRequest,
        context: grpc.aio.ServicerContext[api.AbortUploadRequest, api.Upload],
    ) -> api.Upload:
        row = await self._owned(request.name)
        if row.state == ABORTED:
            return self._to_proto(row)
        if row.state == COMPLETED:
            raise errors.failed_precondition(
                f"{request.name} is already complete", reason="UPLOAD_COMPLETED"
            )
        await abort_upload(self._store, self._storage, row, "the upload was abandoned by its owner")
        self._relay.kick()
        return self._to_proto(await self._owned(request.name))

    # --- helpers -------------------------------------------------------------------------------

    async def _check_sealed(self, row: UploadRow, sealed: str) -> None:
        """The sealed object is exactly the declared file, or it is discarded: a single PUT can
        be sent again, a completed multipart upload cannot and is aborted."""
        name = names.UPLOADS.name(row.id)
        stored_size = await run_in_thread(self._storage.size_of, sealed)
        if stored_size is None:
            raise errors.failed_precondition(
                f"nothing has been uploaded for {name} yet; PUT the file first",
                reason="OBJECT_MISSING",
            )
        if stored_size != row.size_bytes:
            problem = f"storage holds {stored_size} bytes but {row.size_bytes} were declared"
            await self._discard(row, sealed, problem)
            raise errors.failed_precondition(
                f"{problem}; {self._again(row)}", reason="SIZE_MISMATCH"
            )
        if row.sha256:
            stored_sha256 = await run_in_thread(self._storage.sha256_of, sealed)
            if stored_sha256 != row.sha256:
                problem = (
                    f"the stored file's SHA-256 is {stored_sha256}, not the declared {row.sha256}"
                )
                await self._discard(row, sealed, problem)
                raise errors.failed_precondition(
                    f"{problem}; {self._again(row)}", reason="CHECKSUM_MISMATCH"
                )

    async def _discard(self, row: UploadRow, sealed: str, problem: str) -> None:
        if row.multipart:
            await abort_upload(self._store, self._storage, row, problem)
            self._relay.kick()
        else:
            await run_in_thread(self._storage.delete, sealed)

    @staticmethod
    def _again(row: UploadRow) -> str:
        if row.multipart:
            return "the upload is aborted; start a new upload with the right file"
        return "PUT the whole file again, then complete"

    async def _complete_in_storage(
        self, row: UploadRow, request: api.CompleteUploadRequest
    ) -> None:
        stored = await run_in_thread(self._storage.list_parts, row.object_key, row.s3_upload_id)
        if stored is None:
            return  # completed in storage by an earlier attempt; the size check that follows decides
        plan = self._plan(row)
        by_number = {p.number: p for p in stored}
        missing = [n for n in range(1, plan.part_count + 1) if n not in by_number]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise errors.failed_precondition(
                f"{len(missing)} of {plan.part_count} parts are missing (part {shown}); upload them and complete again",
                reason="PARTS_MISSING",
                metadata={"missing_parts": ",".join(map(str, missing[:100]))},
            )
        wrong = [
            p for p in stored if p.number <= plan.part_count and p.size != plan.length_of(p.number)
        ]
        if wrong:
            p = wrong[0]
            raise errors.failed_precondition(
                f"part {p.number} is {p.size} bytes but must be {plan.length_of(p.number)}; upload it again",
                reason="PART_SIZE_MISMATCH",
            )
        for given in request.parts:
            held = by_number.get(given.part_number)
            if held is not None and given.etag.strip('"') != held.etag.strip('"'):
                raise errors.failed_precondition(
                    f"part {given.part_number} in storage has ETag {held.etag}, not {given.etag}; upload it again",
                    reason="PART_ETAG_MISMATCH",
                )
        parts = [by_number[n] for n in range(1, plan.part_count + 1)]
        await run_in_thread(
            self._storage.complete_multipart, row.object_key, row.s3_upload_id, parts
        )

    @staticmethod
    def _too_many_pending(pending: int) -> errors.ApiError:
        return errors.resource_exhausted(
            f"you already have {pending} unfinished uploads; complete or abort some first",
            reason="TOO_MANY_PENDING_UPLOADS",
        )

    def _user(self) -> Principal:
        principal = current_principal()
        if principal.is_service:
            raise errors.permission_denied("uploads belong to users; call with a user token")
        return principal

    async def _owned(self, name: str) -> UploadRow:
        principal = current_principal()
        upload_id = names.UPLOADS.id_of(name)
        row = None if upload_id is None else await run_in_thread(self._store.get, upload_id)
        if row is None or not (principal.is_service or row.owner == principal.subject):
            raise errors.not_found(name)
        return row

    @staticmethod
    def _require_pending_multipart(row: UploadRow) -> None:
        name = names.UPLOADS.name(row.id)
        if not row.multipart:
            raise errors.failed_precondition(
                f"{name} is a single PUT, not a multipart upload", reason="NOT_MULTIPART"
            )
        if row.state != PENDING:
            raise errors.failed_precondition(
                f"{name} is {UploadState.Name(UploadState.ValueType(row.state)).removeprefix('UPLOAD_STATE_')}",
                reason="UPLOAD_NOT_PENDING",
            )

    @staticmethod
    def _plan(row: UploadRow) -> PartPlan:
        return PartPlan(
            part_size=row.part_size, part_count=row.part_count, total_size=row.size_bytes
        )

    def _to_proto(self, row: UploadRow) -> api.Upload:
        upload = api.Upload(
            name=names.UPLOADS.name(row.id),
            video=names.VIDEOS.name(row.video_id),
            owner=names.USERS.name(row.owner),
            file_name=row.file_name,
            size_bytes=row.size_bytes,
            content_type=row.content_type,
            sha256=row.sha256,
            state=UploadState.ValueType(row.state),
            create_time=timestamp_of(row.create_time_us),
            expire_time=timestamp_of(row.expire_time_us),
        )
        if row.multipart:
            upload.multipart.part_size_bytes = row.part_size
            upload.multipart.part_count = row.part_count
        elif row.state == PENDING:
            url, headers = self._storage.sign_put(
                row.object_key, row.content_type, row.size_bytes, row.sha256
            )
            upload.single_put.url = url
            upload.single_put.headers.update(headers)
            upload.single_put.expire_time.CopyFrom(
                timestamp_of(now_us() + self._limits.url_ttl_seconds * 1_000_000)
            )
        return upload
