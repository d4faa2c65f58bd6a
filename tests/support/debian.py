"""Debian packages the tests and benchmarks need (PostgreSQL, Chromium, wrk), installed
with apt-get when they are missing and we are root; never needed by `make run`."""

from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["CannotInstall", "apt_install"]


class CannotInstall(Exception):
    """The packages are missing and cannot be installed here; the message says why."""


def apt_install(*packages: str, recommends: bool = True) -> None:
    """Install `packages` from Debian (with what they recommend unless told otherwise), or
    raise `CannotInstall` saying why not."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise CannotInstall(f"{', '.join(packages)}: installing needs root and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            *([] if recommends else ["--no-install-recommends"]),
            *packages,
        ],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise CannotInstall(f"{' '.join(command)} failed: {done.stderr[-500:]}")
