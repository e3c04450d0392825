"""The lock files the setup installs (``pip install --require-hashes``) match the pins people
edit: a pin changed in requirements*.txt without running scripts/lock.sh fails here, not on an
operator's machine."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonical(match[1])] = match[2]
    return found


def hashed(path: Path) -> dict[str, str]:
    """Each locked package's version, checked to carry at least one sha256."""
    text = path.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    found = {}
    for entry in entries:
        match = PIN.match(entry)
        if match:
            assert "--hash=sha256:" in entry, f"{match[1]} has no hash in {path.name}"
            found[canonical(match[1])] = match[2]
    return found


def test_every_pin_is_locked_at_the_same_version_with_hashes():
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    runtime_lock = hashed(ROOT / "requirements.lock")
    dev_lock = hashed(ROOT / "requirements-dev.lock")
    assert runtime and dev
    for name, version in runtime.items():
        assert runtime_lock.get(name) == version, f"{name}: run scripts/lock.sh"
    for name, version in {**runtime, **dev}.items():
        assert dev_lock.get(name) == version, f"{name}: run scripts/lock.sh"


def test_tests_run_the_versions_that_ship():
    runtime_lock = hashed(ROOT / "requirements.lock")
    dev_lock = hashed(ROOT / "requirements-dev.lock")
    differ = {
        name: (version, dev_lock.get(name))
        for name, version in runtime_lock.items()
        if dev_lock.get(name) != version
    }
    assert not differ
