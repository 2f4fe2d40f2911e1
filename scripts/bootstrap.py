#!/usr/bin/env python3
"""Set-up for a fresh machine: venvs cached by lock-file hash, Chromium, NLU model (stdlib only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("FINBOT_CACHE", Path.home() / ".cache" / "finbot"))
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


class SetupError(Exception):
    """A set-up step that cannot go on; the message says what to do."""


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run_quiet(cmd: list[str]) -> None:
    """Run a set-up command; show its output only when it fails (pip is noisy here)."""
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        print(out.stdout[-4000:], file=sys.stderr)
        raise subprocess.CalledProcessError(out.returncode, cmd)


def find_python(minor: str, env_var: str) -> str:
    """Python 3.<minor>: $FINBOT_PYTHON3xx, python3.<minor> on PATH, or pyenv's versions folder."""
    candidates: list[str] = []
    if os.environ.get(env_var):
        candidates.append(os.environ[env_var])
    on_path = shutil.which(f"python3.{minor}")
    if on_path:
        candidates.append(on_path)
    if PYENV_VERSIONS.is_dir():
        for version in sorted(PYENV_VERSIONS.glob(f"3.{minor}.*"), reverse=True):
            candidates.append(str(version / "bin" / "python"))
    for exe in candidates:
        try:
            out = subprocess.run(
                [exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == f"3.{minor}":
            return exe
    raise SetupError(
        f"Python 3.{minor} not found. Set {env_var} to a python3.{minor} executable, put "
        f"python3.{minor} on PATH, or install it with pyenv (looked in {PYENV_VERSIONS})."
    )


def ensure_venv(name: str, python: str, lock: Path, link: Path, editable: bool) -> Path:
    """A venv under the cache keyed by the lock file's hash; `link` points at it."""
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
    key = hashlib.sha256(lock.read_bytes() + version.encode()).hexdigest()[:16]
    target = CACHE / "venvs" / f"{name}-{key}"
    marker = target / ".finbot-complete"
    if not marker.exists():
        started = time.monotonic()
        say(f"installing the {name} venv from {lock.relative_to(ROOT)} (first run only; minutes)")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([python, "-m", "venv", str(target)], check=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
        run_quiet([*pip, "--upgrade", "pip", "setuptools", "wheel"])
        run_quiet([*pip, "-r", str(lock)])
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        say(f"{name} venv ready in {time.monotonic() - started:.0f} s")
    else:
        say(f"{name} venv cached ({target.name})")
    if editable:
        # Cheap and idempotent: the checkout may have moved (CI clones elsewhere).
        run_quiet([str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                   "--no-build-isolation", "-e", str(ROOT)])
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == str(target):
            return target
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        else:
            link.unlink()
    link.symlink_to(target)
    return target


def ensure_chromium() -> None:
    """Debian's Chromium and a CJK font (browser tests, PDF export). Never a downloaded browser."""
    have_browser = Path("/usr/bin/chromium").exists()
    have_font = any(Path("/usr/share/fonts").glob("**/NotoSansCJK*")) if Path("/usr/share/fonts").exists() else False
    if have_browser and have_font:
        say("chromium and CJK fonts present")
        return
    if not shutil.which("apt-get"):
        raise SetupError("chromium is missing and apt-get is not available: install Debian's chromium and fonts-noto-cjk")
    say("installing Debian's chromium and fonts-noto-cjk with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium", "fonts-noto-cjk"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )


def main(argv: list[str]) -> int:
    what = set(argv) or {"bot", "rasa", "chromium"}
    try:
        if "bot" in what:
            ensure_venv("bot", find_python("11", "FINBOT_PYTHON311"), ROOT / "requirements" / "bot.lock",
                        ROOT / ".venv", editable=True)
        if "rasa" in what:
            ensure_venv("rasa", find_python("10", "FINBOT_PYTHON310"), ROOT / "requirements" / "rasa.lock",
                        ROOT / ".venv-rasa", editable=False)
        if "chromium" in what:
            ensure_chromium()
    except SetupError as exc:
        print(f"[setup] error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"[setup] error: a set-up step failed ({' '.join(map(str, exc.cmd[:4]))} ...)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
