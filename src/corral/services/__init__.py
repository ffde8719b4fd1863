"""corral.services."""
