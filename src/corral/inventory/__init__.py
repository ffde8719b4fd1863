"""corral.inventory."""
