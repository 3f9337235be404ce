"""scripts/ensure-test-tools, which `make test` runs first: it installs chromium and Node.js with apt-get when missing.

Each case runs the real script with PATH narrowed to a directory of stand-ins: a recording
apt-get (whose `install` puts the packages' commands in place, as Debian's would), and, where a
case needs them, chromium, node, npx, sudo and an `id` that answers a non-root uid. Nothing on
this machine is installed or removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-test-tools"
BASH = shutil.which("bash") or "/bin/bash"
# What each Debian package puts on PATH, for the stand-in apt-get.
PROVIDES = {"chromium": ["chromium"], "nodejs": ["node"], "npm": ["npx", "npm"]}


class Machine:
    """A PATH of stand-ins, and the log of what apt-get and sudo were asked."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.log"
        self.log.touch()
        for tool in ("env", "id", "true"):
            os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", self.bin / tool)

    def stub(self, name: str, body: str = "exit 0") -> None:
        path = self.bin / name
        if path.exists() or path.is_symlink():
            path.unlink()
        path.write_text(f"#!{BASH}\n{body}\n", encoding="utf-8")
        path.chmod(0o755)

    def apt(self, *, fails: bool = False) -> None:
        installs = "\n".join(
            f'    [ "$p" = {pkg} ] && for c in {" ".join(cmds)}; do printf "#!{BASH}\\nexit 0\\n" > "{self.bin}/$c"; '
            f'chmod 755 "{self.bin}/$c"; done'
            for pkg, cmds in PROVIDES.items()
        )
        self.stub("apt-get", f"""echo "apt-get $*" >> "{self.log}"
[ -n "${{DEBIAN_FRONTEND:-}}" ] && echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "{self.log}"
{"exit 100" if fails else ""}
if [ "$1" = install ]; then
  for p in "$@"; do
{installs}
  done
fi
exit 0""")

    def non_root(self, *, sudo: bool) -> None:
        self.stub("id", 'if [ "$1" = -u ]; then echo 1000; else echo "uid=1000(dev)"; fi')
        if sudo:
            self.stub("sudo", f'echo "sudo $*" >> "{self.log}"\n[ "$1" = -n ] && shift\nexec "$@"')

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BASH, str(SCRIPT)], env={"PATH": str(self.bin), **env},
                              capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_nothing_is_installed_when_the_browser_and_npx_are_there(machine: Machine) -> None:
    machine.apt()
    machine.stub("chromium")
    machine.stub("npx")
    result = machine.run()
    assert result.returncode == 0
    assert f"headless browser: {machine.bin}/chromium" in result.stdout
    assert f"npx: {machine.bin}/npx" in result.stdout
    assert machine.calls() == []


def test_root_installs_chromium_nodejs_and_npm_when_missing(machine: Machine) -> None:
    machine.apt()
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert machine.calls() == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends chromium nodejs npm",
        "DEBIAN_FRONTEND=noninteractive",
    ]
    assert f"headless browser: {machine.bin}/chromium" in result.stdout
    assert f"npx: {machine.bin}/npx" in result.stdout


def test_only_npm_when_node_is_there_without_npx(machine: Machine) -> None:
    machine.apt()
    machine.stub("chromium")
    machine.stub("node")
    assert machine.run().returncode == 0
    assert "apt-get install -y -qq --no-install-recommends npm" in machine.calls()


def test_password_less_sudo_installs_through_sudo(machine: Machine) -> None:
    machine.apt()
    machine.non_root(sudo=True)
    machine.stub("npx")
    assert machine.run().returncode == 0
    calls = machine.calls()
    assert "sudo -n true" in calls
    assert "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium" in calls
    assert "apt-get install -y -qq --no-install-recommends chromium" in calls


def test_without_root_or_sudo_it_says_what_is_missing_and_installs_nothing(machine: Machine) -> None:
    machine.apt()
    machine.non_root(sudo=False)
    result = machine.run()
    assert result.returncode == 0
    assert "chromium nodejs npm missing; not root and no password-less sudo" in result.stdout
    assert machine.calls() == []


def test_a_failing_apt_get_is_reported_and_the_tests_still_run(machine: Machine) -> None:
    machine.apt(fails=True)
    result = machine.run()
    assert result.returncode == 0
    assert "apt-get could not install chromium nodejs npm" in result.stdout


def test_without_apt_get_it_says_so(machine: Machine) -> None:
    result = machine.run()
    assert result.returncode == 0
    assert "no apt-get here" in result.stdout


def test_skip_variables_mean_nothing_is_installed(machine: Machine) -> None:
    machine.apt()
    result = machine.run(ARREARS_SKIP_BROWSER="1", ARREARS_SKIP_NODE="1")
    assert result.returncode == 0
    assert machine.calls() == []
    assert "ARREARS_SKIP_BROWSER=1" in result.stdout and "ARREARS_SKIP_NODE=1" in result.stdout


def test_a_named_browser_is_used_and_a_missing_one_is_reported_not_replaced(machine: Machine, tmp_path: Path) -> None:
    machine.apt()
    machine.stub("npx")
    chrome = tmp_path / "chrome"
    chrome.write_text(f"#!{BASH}\nexit 0\n", encoding="utf-8")
    chrome.chmod(0o755)
    assert f"headless browser: {chrome}" in machine.run(ARREARS_BROWSER=str(chrome)).stdout
    result = machine.run(ARREARS_BROWSER=str(tmp_path / "no-such-chrome"))
    assert "is not an executable file" in result.stdout
    assert machine.calls() == []
