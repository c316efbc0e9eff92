"""Adapters to the backing services and the transactional outbox.

``postgres`` (asyncpg, PostGIS), ``migrations`` (versioned SQL files),
``mongo`` (the CloudEvents event store on PyMongo's async API), ``redis``,
``kafka`` (CloudEvents publisher and consumer on aiokafka), ``outbox``
(enqueue inside a transaction; the relay to Kafka and MongoDB), ``events``
(the CloudEvent envelope and topic-to-collection routing) and ``errors``
(the one error root, ``PersistenceError``, with ``retriable``).
"""
