"""Storage of media evidence: the ports ``media.ports`` declares.

``objects``: :class:`~persistence.media.objects.ObstoreObjects`, the
``ObjectStore`` on the local filesystem or an S3-compatible bucket.
"""
