"""Live updates: the server-sent event stream the open pages listen to."""

from __future__ import annotations

import time

from flask import Response, request

from ..events import event_stream
from .base import dashboard, web


@web.get("/events")
def events() -> Response:
    board = dashboard()
    sub = board.hub.subscribe()
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if sub is None:
        # Full: the browser tries again later instead of holding one of the server's threads.
        return Response(f"retry: {board.busy_retry_ms}\n\n", mimetype="text/event-stream", headers=headers)
    # Waitress tells when the browser has gone (it reads ahead on the connection), so a closed tab frees
    # its place among the live clients at once rather than at the next heartbeat.
    gone = request.environ.get("waitress.client_disconnected")
    stream = event_stream(
        board.hub,
        sub,
        lifetime_s=board.stream_lifetime_s,
        heartbeat_s=board.heartbeat_s,
        clock=time.monotonic,
        disconnected=gone if callable(gone) else (lambda: False),
    )
    return Response(stream, mimetype="text/event-stream", headers=headers)
