"""Orders: lifecycle, payment, shipments, cancellation and returns (aggregate, service)."""
