"""Media evidence: photos, audio and video attached to an alert.

The pure core decides (``sniff``: what a file is, from its bytes;
``sealing``: the encrypted at-rest format; ``policy``: who may read or
delete, and the limits); ``ports`` declares what it needs from storage;
``persistence.media`` implements those ports (filesystem or S3 objects,
PostgreSQL rows). The HTTP shell is ``gateway.routes.media``.
"""
