"""The claim-check object store for raw MIME, shared by the services that receive mail (ingest,
bcc-gateway): content-addressed blobs under each owner's prefix, local files or S3 through obstore."""
from .settings import BlobSettings
from .store import Blob, BlobStore, CorruptBlob, open_blob_store

__all__ = ["Blob", "BlobSettings", "BlobStore", "CorruptBlob", "open_blob_store"]
