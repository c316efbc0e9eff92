"""Pure geometry for Panic Alert: H3 cells, distances, zones. No I/O.

``actors`` imports from here, never the other way round.
"""
