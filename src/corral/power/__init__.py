"""corral.power."""
