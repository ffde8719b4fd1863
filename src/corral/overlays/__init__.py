"""corral.overlays."""
