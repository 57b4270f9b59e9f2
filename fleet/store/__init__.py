"""Persistence: the fleet's database (SQLite or PostgreSQL) and its content-addressed file store."""

from __future__ import annotations

from .blobs import BlobInfo, BlobStore, StagedBlob
from .db import UNSET, ApiToken, Store, SubmissionKey, open_store
from .migrations import SchemaTooNew
from .snapshots import PlateSnapshot

__all__ = [
    "UNSET",
    "ApiToken",
    "BlobInfo",
    "BlobStore",
    "PlateSnapshot",
    "SchemaTooNew",
    "StagedBlob",
    "Store",
    "SubmissionKey",
    "open_store",
]
