"""``panic-alert demo``: simulated responders and users driving a running server
through its API with the Python client (``plan``: the decisions, pure;
``accounts``: the demo's accounts; ``run``: the driver)."""
