"""The small fixed cluster every overlay test renders (and the golden files show)."""

from __future__ import annotations

from corral.inventory.index import Inventory
from corral.inventory.models import Cluster

BMC_PASSWORD = "bmc-Secret-7f3a9"

CLUSTER = {
    "cluster": {
        "name": "demo",
        "domain": "demo.example",
        "ssh_authorized_keys": [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3rA1U0bL9nL1I5d0oN3m0r1qvJ2bq8T1x2Yk6m7hF"
            " admin@head"
        ],
    },
    "networks": [
        {
            "name": "cluster",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dns_servers": ["10.77.0.1", "10.77.0.2"],
            "domain": "demo.example",
            "dynamic_range": "10.77.0.200-10.77.0.250",
        },
        {"name": "ib", "cidr": "10.78.0.0/16", "mtu": 65520, "ntp_servers": ["10.78.0.1"]},
    ],
    "profiles": [
        {
            "name": "compute",
            "image": "debian-12",
            "networks": ["cluster"],
            "kernel_args": ["console=ttyS0"],
            "power": {"driver": "ipmi", "username": "admin", "password": BMC_PASSWORD},
            "tags": {"partition": "batch"},
        },
        {
            "name": "disk",
            "boot": "stateful",
            "disk": {
                "device": "/dev/nvme0n1",
                "partitions": [
                    {"label": "efi", "size_mib": 512, "format": "vfat", "mount": "/boot/efi"},
                    {"label": "swap", "size_mib": 2048, "format": "swap"},
                    {"label": "root", "format": "ext4", "mount": "/"},
                ],
            },
        },
    ],
    "nodes": [
        {
            "name": "n1",
            "profiles": ["compute"],
            "power": {"address": "10.77.1.11", "password": BMC_PASSWORD},
            "tags": {"rack": "r1"},
            "interfaces": [
                {"network": "cluster", "mac": "52:54:00:00:00:01", "ip": "10.77.0.11"},
                {"network": "ib", "ip": "10.78.0.11", "device": "ib0"},
            ],
        },
        {
            "name": "n2",
            "profiles": ["compute", "disk"],
            "tags": {"role": "controller"},
            "facts": {"gpus": 2, "memory_mib": 4096},
            "interfaces": [{"network": "cluster", "mac": "52:54:00:00:00:02", "ip": "10.77.0.12"}],
        },
        {
            "name": "n3",
            "profiles": ["compute"],
            "boot": "stateless",
            "interfaces": [{"network": "cluster", "mac": "52:54:00:00:00:03"}],
        },
    ],
}


def inventory() -> Inventory:
    return Inventory.from_cluster(Cluster.model_validate(CLUSTER))
