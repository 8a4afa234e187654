"""Adapters: the HTTP API (inbound), PostgreSQL and JWT verification (outbound)."""
