"""corral.discovery."""
