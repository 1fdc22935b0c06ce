"""`python -m maillink_ingest.migrate_blobs`: copies raw MIME stored by the previous version in
ingest's database (`blobs` + `blob_chunks`) into the object store (`MAILLINK_BLOB_URL`).

Idempotent and resumable: a blob already in the object store is skipped, so a rerun after an
interruption (or while ingest keeps running) only copies what is missing. Every copy is verified
(size and sha256 against its id) before it is written; a blob that fails is reported and left where
it is. The legacy collections are only read: ingest keeps serving from them (read-through) until
they are dropped by hand, which is safe once a run reports no failures.
"""
import argparse
import asyncio
import hashlib
import sys
from dataclasses import dataclass, field

from tqdm import tqdm

from maillink_runtime import mongo

from maillink_runtime.blobs.store import BlobStore, open_blob_store
from .adapters.legacy_blobs import LegacyBlobs, LegacyManifest
from maillink_runtime.blobs import BlobSettings
from maillink_runtime.settings import ServiceSettings


@dataclass
class Outcome:
    copied: int = 0
    present: int = 0
    failed: dict[str, str] = field(default_factory=dict)


async def migrate(legacy: LegacyBlobs, blobs: BlobStore, *, batch: int = 64, progress=None) -> Outcome:
    outcome, pending = Outcome(), []
    async for manifest in legacy.manifests():
        pending.append(manifest)
        if len(pending) == batch:
            await _copy(pending, legacy, blobs, outcome, progress)
            pending = []
    await _copy(pending, legacy, blobs, outcome, progress)
    return outcome


async def _copy(manifests: list[LegacyManifest], legacy: LegacyBlobs, blobs: BlobStore, outcome: Outcome,
                progress) -> None:
    present = await asyncio.gather(*(blobs.exists(m.blob_id) for m in manifests))
    todo = [m for m, there in zip(manifests, present) if not there]
    outcome.present += len(manifests) - len(todo)
    read = await asyncio.gather(*(_read_verified(legacy, m) for m in todo))
    good = {m.blob_id: raw for m, raw in zip(todo, read) if isinstance(raw, bytes)}
    outcome.failed.update({m.blob_id: raw for m, raw in zip(todo, read) if isinstance(raw, str)})
    await blobs.put_many(good)
    outcome.copied += len(good)
    if progress is not None:
        progress.update(len(manifests))


async def _read_verified(legacy: LegacyBlobs, manifest: LegacyManifest) -> bytes | str:
    """The blob's bytes, or why they cannot be trusted."""
    try:
        raw = b"".join([chunk async for chunk in legacy.chunks(manifest)])
    except LookupError as exc:
        return str(exc)
    if len(raw) != manifest.size:
        return f"{len(raw)} bytes stored, manifest says {manifest.size}"
    if hashlib.sha256(raw).hexdigest() != manifest.blob_id:
        return "stored bytes do not hash to the blob id"
    return raw


class _Settings(ServiceSettings, BlobSettings):
    """The store to read the old blobs from, and the object store to copy them into."""


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maillink_ingest.migrate_blobs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="blobs read and written concurrently")
    args = parser.parse_args(argv)
    settings = _Settings()
    client = mongo.connect(settings.mongodb_url)
    try:
        legacy = LegacyBlobs(client[settings.database("ingest")])
        blobs = open_blob_store(settings.blob_store_url(), owner=f"{settings.namespace}ingest",
                                endpoint=settings.aws_endpoint_url, region=settings.aws_region,
                                allow_http=settings.aws_allow_http)
        with tqdm(total=await legacy.count(), unit="blob", file=sys.stderr) as progress:
            outcome = await migrate(legacy, blobs, batch=args.batch, progress=progress)
    finally:
        await client.close()
    print(f"copied {outcome.copied}, already there {outcome.present}, failed {len(outcome.failed)} "
          f"(into {settings.blob_store_url()})")
    for blob_id, reason in outcome.failed.items():
        print(f"  FAILED {blob_id}: {reason}", file=sys.stderr)
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
