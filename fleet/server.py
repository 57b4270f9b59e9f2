"""Wires the fleet together from its configuration and serves the HTTP app with waitress."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from .config import FleetConfig
from .lab import MAX_UPLOAD_CEILING
from .service import FleetService
from .store import BlobStore, Store, open_store

log = logging.getLogger(__name__)


@dataclass
class Fleet:
    """The fleet's parts, opened from one configuration; ``close()`` releases them."""

    config: FleetConfig
    store: Store
    blobs: BlobStore
    service: FleetService

    @classmethod
    def open(cls, config: FleetConfig) -> Fleet:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_dir, 0o700)
        store = open_store(config.database_url, config.data_dir)
        blobs = BlobStore(config.blob_dir)
        return cls(config, store, blobs, FleetService(store, blobs))

    def close(self) -> None:
        self.store.close()


def make_server(fleet: Fleet) -> Any:
    """A waitress server bound to the configured address (port 0 picks a free one)."""
    from waitress.server import create_server

    from .api import create_app

    app = create_app(fleet.service)
    return create_server(
        app,
        host=fleet.config.host,
        port=fleet.config.port,
        threads=fleet.config.threads,
        max_request_body_size=MAX_UPLOAD_CEILING,
        ident="crowdfab",
    )


def serve(config: FleetConfig) -> None:
    fleet = Fleet.open(config)
    server = make_server(fleet)
    host, port = server.effective_host, server.effective_port
    print(f"CrowdFab fleet serving on http://{host}:{port}/api/v1 (data in {config.data_dir})", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        fleet.close()
