"""corral's HTTP server: REST API, boot endpoints, artifacts (aiohttp)."""
