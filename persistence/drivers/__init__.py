"""Connections to the real services, each with its pings and the translation
of its driver's errors into ``persistence.errors``: PostgreSQL (asyncpg),
Redis (redis.asyncio), MongoDB (PyMongo async, the event store) and Kafka
(aiokafka).
"""
