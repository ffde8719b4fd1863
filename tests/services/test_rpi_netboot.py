"""Raspberry Pi 4 network boot from `corral serve`, by a REPLAY of the bootloader.

No emulator boots a Pi 4 from the network, so `tests.helpers.rpi_replay`
replays the bootloader's documented DHCP and TFTP sequence (see its
docstring for the sources) against a real `corral serve` in a namespace:

- with corral as the DHCP server,
- on a home network: dnsmasq (the router) hands out addresses, and corral
  runs `--proxy-dhcp` beside it, and
- in HTTP boot mode (7), at the HTTP_HOST / HTTP_PORT / HTTP_PATH that
  `corral rpi eeprom-config --http` prints: the boot.img and boot.sig are
  checked as the bootloader checks them (the sha256, the RSA-2048 signature
  with `openssl dgst -verify` and the public key that command prints) and the
  FAT image's contents read with mtools.

The image is the tiny arm64 image (Debian's arm64 busybox-static and arm64
kernel, with the kernel package's Raspberry Pi device trees), packed with
corral's arm64 initramfs. Debian's raspi-firmware is in non-free-firmware,
which this machine's apt sources lack: `start4.elf` and `fixup4.dat` in the
image are STAND-INS (marked bytes at the paths the package installs), so the
test shows they are served from the image, not that they boot a board.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.actions import LocalActions
from corral.app import Corral
from corral.config import Settings
from corral.images import api, artifacts
from corral.images.records import Artifacts
from corral.images.tiny import build_tiny_tree
from corral.lab.netns import Topology, ns_argv
from tests.conftest import need_tool
from tests.helpers.clients import stop, wait_for_text
from tests.helpers.serve import corral_serve
from tests.images.conftest import cache_dir

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(900)]

PI_MAC = "dc:a6:32:01:02:03"
PI_SERIAL = "1a2b3c4d"
PI_IP = "10.77.0.21"
UNKNOWN_MAC = "dc:a6:32:0a:0b:0c"
SERVER = "10.77.0.1"
ROUTER = "10.77.0.2"
STAND_IN = b"STAND-IN for raspi-firmware's %s (non-free, not in this machine's sources)\n"


@pytest.fixture(scope="module")
def arm64_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("dpkg", "apt-get", "depmod", "readelf")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    dest = tmp_path_factory.mktemp("arm64") / "rootfs"
    build_tiny_tree(dest, cache, "arm64")
    firmware = dest / "usr/lib/raspi-firmware"
    firmware.mkdir(parents=True)
    for name in ("start4.elf", "fixup4.dat"):
        (firmware / name).write_bytes(STAND_IN % name.encode())
    return dest


def pi_inventory(arm64_tree: Path) -> tuple[LocalActions, Artifacts]:
    app = Corral(Settings.from_env())
    actions = LocalActions(app)
    actions.add_network(
        {
            "name": "home",
            "cidr": "10.77.0.0/24",
            "gateway": ROUTER,
            "dynamic_range": "10.77.0.200-10.77.0.210",
        }
    )
    actions.add_profile({"name": "pi", "networks": ["home"], "image": "arm"})
    actions.add_nodes(["pi1"], {"profiles": ["pi"]}, mac=PI_MAC, ip=PI_IP)
    actions.set_nodes(["pi1"], {"rpi_serial": PI_SERIAL})
    api.import_image(app, str(arm64_tree), "arm")
    arts = artifacts.pack_image(app, "arm", f"http://{SERVER}:9480")
    return actions, arts


@pytest.fixture
def home_lab(topo: Topology) -> Iterator[tuple[str, str, str]]:
    """(server ns, router ns, Pi ns) on one bridge."""
    srv = topo.namespace("srv")
    topo.bridge(srv, "br0", f"{SERVER}/24")
    router = topo.namespace("rtr")
    topo.attach(router, srv, "br0", address=f"{ROUTER}/24")
    pi = topo.namespace("pi")
    topo.attach(pi, srv, "br0", mac=PI_MAC)
    yield srv, router, pi


def replay(
    pi_ns: str, tmp: Path, mac: str, serial: str, *files: str, http: str | None = None
) -> dict[str, object]:
    out = tmp / f"replay-{serial}.json"
    argv = [sys.executable, "-m", "tests.helpers.rpi_replay", *(["--http", http] if http else [])]
    argv += ["eth0", mac, serial, str(out)]
    proc = subprocess.run(
        ns_argv(pi_ns, [*argv, *files]), check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_boot(result: dict[str, object], arts: Artifacts, home: Path, tree: Path) -> None:
    """What the replayed board got is the node's files, from the image and corral."""
    assert result.get("ip") == PI_IP, result
    assert result["tftp"] == SERVER
    boot_offers = [o for o in result["offers"] if o["option43"]]  # type: ignore[attr-defined]
    assert boot_offers and b"Raspberry Pi Boot".hex() in boot_offers[0]["option43"]
    assert result["probe"] == {"probe": 6}  # OACK, then the bootloader abandons the probe
    files = result["files"]
    assert isinstance(files, dict)
    config = files["config.txt"]["text"]
    assert "kernel=kernel8.img" in config and "initramfs corral-initramfs.img" in config
    cmdline = files["cmdline.txt"]["text"]
    assert "corral.node=pi1" in cmdline and f"corral.mac={PI_MAC}" in cmdline
    # the API as an iPXE script names it: HTTPS, which the initramfs insists on
    assert f"corral.server=https://{SERVER}:" in cmdline
    assert "corral.token=" in cmdline and cmdline.endswith("\n") and cmdline.count("\n") == 1
    assert files["kernel8.img"]["sha256"] == arts.kernel.sha256
    assert files["corral-initramfs.img"]["sha256"] == arts.initramfs.sha256
    assert files["start4.elf"]["sha256"] == sha(tree / "usr/lib/raspi-firmware/start4.elf")
    (dtb,) = tree.glob("usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb")
    assert files["bcm2711-rpi-4-b.dtb"]["sha256"] == sha(dtb)
    assert result["unknown_prefix"]["error"] == 1  # file not found at once: the prefix fallback


def test_pi4_replay_boots_from_corral_dhcp_and_tftp(
    home_lab: tuple[str, str, str], corral_home: Path, tmp_path: Path, arm64_tree: Path
) -> None:
    srv, _router, pi = home_lab
    _actions, arts = pi_inventory(arm64_tree)
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-seeder"):
        result = replay(pi, tmp_path, PI_MAC, PI_SERIAL)
    check_boot(result, arts, corral_home, arm64_tree)
    # the initramfs the board loads holds arm64 programs (ELF machine 0xb7), not the host's
    for program in ("bin/busybox", "usr/bin/aria2c", "usr/bin/openssl"):
        assert elf_machine(arts.initramfs.path(corral_home), program) == 0xB7


def elf_machine(initramfs: Path, member: str) -> int:
    unpacked = subprocess.run(
        f"zstd -dc {initramfs} | cpio -i --quiet --to-stdout {member}",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout
    assert unpacked[:4] == b"\x7fELF"
    return int.from_bytes(unpacked[18:20], "little")


def test_unknown_pi_is_recorded_with_the_serial_from_option_97(
    home_lab: tuple[str, str, str], corral_home: Path, tmp_path: Path, arm64_tree: Path
) -> None:
    srv, _router, pi = home_lab
    actions, _arts = pi_inventory(arm64_tree)
    subprocess.run(ns_argv(pi, ["ip", "link", "set", "eth0", "address", UNKNOWN_MAC]), check=True)
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-seeder"):
        replay(pi, tmp_path, UNKNOWN_MAC, "00c0ffee", "config.txt")
    seen = {d["mac"]: d for d in actions.discovered()}
    assert seen[UNKNOWN_MAC]["rpi_serial"] == "00c0ffee"
    assert seen[UNKNOWN_MAC]["suggested_name"] == "rpi-00c0ffee"
    assert seen[UNKNOWN_MAC]["rpi_revision"] == "0xc03111"


def test_pi4_replay_boots_on_a_home_network_with_proxy_dhcp(
    home_lab: tuple[str, str, str], corral_home: Path, tmp_path: Path, arm64_tree: Path
) -> None:
    need_tool("dnsmasq")
    srv, router, pi = home_lab
    _actions, arts = pi_inventory(arm64_tree)
    log = tmp_path / "dnsmasq.log"
    dnsmasq = subprocess.Popen(
        ns_argv(
            router,
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                f"--pid-file={tmp_path / 'dnsmasq.pid'}",
                f"--dhcp-leasefile={tmp_path / 'leases'}",
                "--log-dhcp",
                "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h",
                f"--dhcp-host={PI_MAC},{PI_IP}",  # the router's reservation for the board
                f"--dhcp-option=option:router,{ROUTER}",
            ],
        ),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for_text(log, "DHCP, IP range", 10, dnsmasq), log.read_text()
        with corral_serve(srv, corral_home, "--proxy-dhcp", "--address", SERVER, "--no-seeder"):
            result = replay(pi, tmp_path, PI_MAC, PI_SERIAL)
    finally:
        stop(dnsmasq)
    address_offers = [o for o in result["offers"] if o["yiaddr"] == PI_IP]  # type: ignore[attr-defined]
    assert address_offers and address_offers[0]["server_id"] == ROUTER, result
    check_boot(result, arts, corral_home, arm64_tree)


def eeprom_settings(node: str) -> tuple[dict[str, str], str]:
    """What `corral rpi eeprom-config NODE --http` tells the admin: settings and public key."""
    argv = [sys.executable, "-m", "corral.cli", "rpi", "eeprom-config", node]
    out = subprocess.run(
        [*argv, "--server-ip", SERVER, "--http"], capture_output=True, text=True, check=True
    ).stdout
    settings = dict(line.split("=", 1) for line in out.splitlines() if "=" in line[:20])
    begin, end = out.index("-----BEGIN PUBLIC KEY-----"), out.index("-----END PUBLIC KEY-----")
    return settings, out[begin : end + len("-----END PUBLIC KEY-----")] + "\n"


def fat(image: Path, *args: str) -> bytes:
    """An mtools command on the FAT image (mdir, mtype, mcopy), its output."""
    env = {"PATH": "/usr/bin:/bin", "MTOOLS_SKIP_CHECK": "1"}
    return subprocess.run(
        [*args[:1], "-i", str(image), *args[1:]], capture_output=True, check=True, env=env
    ).stdout


def test_pi4_http_boot_replay_gets_a_boot_img_signed_with_the_site_key(
    home_lab: tuple[str, str, str], corral_home: Path, tmp_path: Path, arm64_tree: Path
) -> None:
    need_tool("openssl", "mdir", "mtype", "mcopy", "fsck.fat")
    srv, _router, pi = home_lab
    _actions, arts = pi_inventory(arm64_tree)
    settings, public_key = eeprom_settings("pi1")
    assert settings["BOOT_ORDER"] == "0xf17" and settings["HTTP_HOST"] == SERVER
    base = f"{settings['HTTP_HOST']}:{settings['HTTP_PORT']}/{settings['HTTP_PATH']}"
    with corral_serve(srv, corral_home, "--interface", "br0", "--no-seeder"):
        result = replay(pi, tmp_path, PI_MAC, PI_SERIAL, http=base)
    assert result.get("ip") == PI_IP, result
    assert result["http"] == {  # type: ignore[comparison-overlap]
        "boot.sig": {"status": 200, "size": (tmp_path / "boot.sig").stat().st_size},
        "boot.img": {"status": 200, "size": (tmp_path / "boot.img").stat().st_size},
    }, result
    image, sig = tmp_path / "boot.img", (tmp_path / "boot.sig").read_text()
    # boot.sig: the image's sha256, `ts:`, and an RSA-2048 signature the EEPROM's key verifies
    digest, ts, rsa = sig.splitlines()
    assert digest == sha(image)
    assert ts.startswith("ts: ") and ts[4:].isdigit()
    assert rsa.startswith("rsa2048: ") and len(bytes.fromhex(rsa[9:])) == 256
    (tmp_path / "sig.bin").write_bytes(bytes.fromhex(rsa[9:]))
    (tmp_path / "pub.pem").write_text(public_key)
    verify = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
         "-signature", str(tmp_path / "sig.bin"), str(image)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and "Verified OK" in verify.stdout, verify
    # boot.img: a clean FAT file system with what the board boots, at its root
    check = subprocess.run(
        ["fsck.fat", "-n", str(image)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    names = set(fat(image, "mdir", "-b", "::").decode().split())
    wanted = {"config.txt", "cmdline.txt", "kernel8.img", "corral-initramfs.img", "start4.elf"}
    assert {f"::/{n}" for n in (*wanted, "fixup4.dat", "bcm2711-rpi-4-b.dtb")} <= names, names
    config = fat(image, "mtype", "::config.txt").decode()
    assert "kernel=kernel8.img" in config and "kernel_2712" not in config  # one kernel for both
    cmdline = fat(image, "mtype", "::cmdline.txt").decode()
    assert "corral.node=pi1" in cmdline and "corral.token=" in cmdline
    assert f"corral.server=https://{SERVER}:" in cmdline
    kernel = hashlib.sha256(fat(image, "mcopy", "::kernel8.img", "-")).hexdigest()
    initramfs = hashlib.sha256(fat(image, "mcopy", "::corral-initramfs.img", "-")).hexdigest()
    assert (kernel, initramfs) == (arts.kernel.sha256, arts.initramfs.sha256)
    stored = corral_home / "rpi-http" / PI_SERIAL / "boot.img"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600  # it holds a boot token
