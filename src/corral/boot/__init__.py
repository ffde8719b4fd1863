"""corral.boot."""
