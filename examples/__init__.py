"""Examples of host services built on suuupra_commerce (run and tested in CI, not in the wheel)."""
