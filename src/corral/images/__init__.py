"""corral.images."""
