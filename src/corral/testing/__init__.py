"""Fakes for testing code that uses corral, shipped with corral (and used by its own tests).

Use a real peer wherever one can run (ipmi_sim, sushy-tools, tftp-hpa, udhcpc,
QEMU: see CONTRIBUTING.md); these are for what cannot, and each is named a fake.

- `FakeClock` (`corral.testing.clock`): time that moves only when code sleeps;
  `FakeClock().runtime()` is a `corral.power.Runtime` on it, so power retries
  and waits run in no time.
- `FakeDriver` (`corral.testing.power`): the `fake` power driver, registered
  as an entry point, so `corral node set n1 --power-driver fake --power-address
  rack1` makes `corral power on n1` work with no BMC; `failures` scripts errors.
- `FakeTftpClient`, `LossyChannel`, `simulate_transfer` (`corral.testing.tftp`):
  a model TFTP reader and a channel that loses, duplicates and reorders, to
  drive a sans-io `ReadSession` through a whole transfer in memory.
- `renewal_answered` (`corral.testing.dhcp`): not a fake but a probe, a real
  client on a real socket: does a DHCP server still ACK a node's renewal
  (after a fuzzing flood, say)?

Example, a retry schedule on the fake clock::

    clock = FakeClock()
    driver = FakeDriver.from_settings("n1", PowerSettings(address="x"), clock.runtime())
    driver.failures = [RetryableError("busy")]
    asyncio.run(driver.on())
    assert clock.sleeps == [0.5]
"""

from corral.testing.clock import FakeClock
from corral.testing.dhcp import renewal_answered
from corral.testing.power import FakeDriver
from corral.testing.tftp import FakeTftpClient, InFlight, LossyChannel, ack, simulate_transfer

__all__ = [
    "FakeClock",
    "FakeDriver",
    "FakeTftpClient",
    "InFlight",
    "LossyChannel",
    "ack",
    "renewal_answered",
    "simulate_transfer",
]
