"""corral: bare-metal cluster provisioning."""

__version__ = "0.1.0"
