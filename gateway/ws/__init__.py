"""The WebSocket ``/ws``: frames, the pure per-socket protocol, the push hub, the I/O shell."""
