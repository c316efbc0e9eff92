"""HTTP and WebSocket gateway (FastAPI). Build it with ``gateway.app.create_app``.

Nothing outside ``gateway`` imports it, except the command-line composition
root (``panic_alert.cli``).
"""
