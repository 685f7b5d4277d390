"""Carts: server-priced lines, merge on login, expiry and checkout (aggregate, service)."""
