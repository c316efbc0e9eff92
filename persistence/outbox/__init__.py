"""The transactional outbox: events written in the transaction that changes
state (``writer.py``), delivered at least once to Kafka and the MongoDB event
store (``relay.py``; ``panic_alert.relay_root`` runs it as a service), the CloudEvents
envelope and where each topic is stored (``events.py``), and the group commit
that lets concurrent entity commits share one statement (``group_commit.py``).
"""
