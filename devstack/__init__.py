"""Local stand-ins for the cloud parts: Azurite, throwaway PostgreSQL, the demo database, the host.

Nothing in here is deployed: it exists so that the same function code can run on a laptop or a
CI machine with real storage and real databases on loopback.
"""
