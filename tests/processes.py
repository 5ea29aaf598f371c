"""Processes and HTTP in tests: the `ami` console script run as operators run it, and an endpoint read."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

AMI = str(Path(sys.executable).with_name("ami"))  # the console script of this virtual environment


@contextlib.contextmanager
def ami_process(
    *args: str, env: dict[str, str], stdout: int | IO[str] = subprocess.PIPE
) -> Iterator[subprocess.Popen[str]]:
    """`ami ARGS` in its own process, `env` over this process's environment, stderr piped, text mode; still
    running when the block is left (an assertion failed before it was stopped), it is killed."""
    proc = subprocess.Popen(
        [AMI, *args], env={**os.environ, **env}, stdout=stdout, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def http_get(url: str, timeout: float = 10) -> tuple[int, str]:
    """The status and body (UTF-8, undecodable bytes replaced) of a GET; an error status is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
