"""corral.lab."""
