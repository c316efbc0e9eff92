"""Adapters to the backing services: they implement the ports that the code
needing them declares, and translate every driver error at their edge.

``drivers/`` (the connections: PostgreSQL, Redis, MongoDB, Kafka),
``stores/`` (stores and read models, one module per resource), ``outbox/``
(the transactional outbox: writer, relay, group commit, the CloudEvents
envelope), ``pushes.py`` (frames to sockets over Redis pub/sub),
``migrations.py`` with ``migrations/`` (versioned SQL) and ``errors.py``
(the one error root, ``PersistenceError``, with ``retriable``).
"""
