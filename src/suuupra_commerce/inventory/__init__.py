"""Inventory: stock per SKU and location, reservations, thresholds (aggregate, service)."""
