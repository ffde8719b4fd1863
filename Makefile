# corral: the two commands are `make demo` and `make test`.
# Both install what they need (Debian packages as root, a venv in .venv).

SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
# Debian packages the test suite, the lab and the demo use (real peers, not mocks).
APT_PACKAGES := openssh-server python3-venv postgresql udhcpc isc-dhcp-client isc-dhcp-relay tftp-hpa atftp \
	qemu-system-x86 qemu-utils ipxe-qemu ovmf ipxe busybox-static kmod cpio aria2 iproute2 \
	openipmi ipmitool snmpd snmp skopeo umoci debootstrap zstd rsync dropbear-bin openssh-client e2fsprogs xfsprogs fdisk gcc curl \
	bind9-dnsutils dnsmasq-base dnsperf chromium chromium-driver \
	qemu-system-arm qemu-efi-aarch64 binutils python3-gi gir1.2-nm-1.0 dosfstools mtools qemu-user-static \
	g++ libtorrent-rasterbar-dev \
	binfmt-support

.PHONY: all deps venv lint typecheck test test-fast demo bench clean

all: test

deps:
	@./scripts/apt-install $(APT_PACKAGES)
	@# arm64 packages for arm64 initramfs and boards (docs/boards.md)
	@dpkg --print-foreign-architectures | grep -qx arm64 || \
		{ dpkg --add-architecture arm64 && apt-get -o DPkg::Lock::Timeout=600 update -qq; }
	@# arm64 programs run under QEMU user emulation (corral image build --arch arm64)
	@mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
	@update-binfmts --enable qemu-aarch64 2>/dev/null || true

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache

typecheck: venv
	$(VENV)/bin/mypy

# two workers: a TCG VM keeps one core busy, so VM tests run two at a time (tests/conftest.py
# and tests/helpers/xdist_scopes.py: a module, or modules sharing a lab, on one worker; VM
# tests first)
JOBS ?= 2
# CI stops the job at 90 min; past 65 no new test starts, so a slow run still ends with its report
SESSION_TIMEOUT ?= 3900

test: deps venv lint typecheck
	CORRAL_TEST_REQUIRE_ALL=1 $(VENV)/bin/pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder \
		--session-timeout=$(SESSION_TIMEOUT)

test-fast: venv
	$(VENV)/bin/pytest -m "not slow and not vm"

demo: deps venv
	@./scripts/demo

# what only the benchmarks run against: Kea's perfdhcp (bench/dhcp_bench.py; a tool, no daemon)
BENCH_APT_PACKAGES := kea-admin

# `make bench` lists the benchmarks; `make bench B=provision ARGS='--n 8'` runs one
bench: deps venv
	@if [ "$(B)" = dhcp_bench ]; then ./scripts/apt-install $(BENCH_APT_PACKAGES); fi
	$(PY) -m bench $(B) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
