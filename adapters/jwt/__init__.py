"""JWT adapters: verify bearer tokens for the ``TokenVerifier`` port."""
