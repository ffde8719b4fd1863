"""corral.protocols."""
