"""Stores and read models: one module per resource, each implementing a port
that the code needing it declares (accounts, contacts, refresh tokens, zones,
entity snapshots, alert listings, open alerts, geofence events).
"""
