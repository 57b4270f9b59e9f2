"""Persistence: the fleet's database (SQLite or PostgreSQL) and its content-addressed file store."""

from __future__ import annotations

from .blobs import BlobInfo, BlobStore, StagedBlob
from .db import UNSET, ApiToken, Store, SubmissionKey, open_store
from .migrations import SchemaTooNew
from .outbox import Channel, ChannelTarget, Claimed, Delivery, Webhook, WebhookTarget
from .snapshots import PlateSnapshot

__all__ = [
    "UNSET",
    "ApiToken",
    "BlobInfo",
    "BlobStore",
    "Channel",
    "ChannelTarget",
    "Claimed",
    "Delivery",
    "PlateSnapshot",
    "SchemaTooNew",
    "StagedBlob",
    "Store",
    "SubmissionKey",
    "Webhook",
    "WebhookTarget",
    "open_store",
]
