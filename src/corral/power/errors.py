"""What a power driver can raise, and what a caller should catch.

PowerError               anything a driver reports; the message never holds a secret
├── RetryableError       may succeed if tried again (timeout, refused, BMC busy);
│                        the base class retries these with backoff
└── FinalError           trying again will not help (bad password, bad settings)
    ├── NotSupported     the driver lacks the capability (e.g. `ssh` cannot power on)
    └── SettingsError    the node's power settings are missing or wrong (names the key)
"""

from __future__ import annotations


class PowerError(Exception):
    """A power action failed; the message is safe to show (secrets scrubbed)."""


class RetryableError(PowerError):
    """The action may succeed if tried again."""


class FinalError(PowerError):
    """The action will not succeed by trying again."""


class NotSupported(FinalError):
    """The driver cannot do this action."""


class SettingsError(FinalError):
    """The power settings are incomplete or invalid."""
