"""Ray bootstrap, shard placement and the typed actor client.

Every Ray API call of the code base lives in this package.
"""
