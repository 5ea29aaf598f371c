"""The project's own IPFS node for development and tests: js-ipfs from npm, loopback only, its own repo.

`LocalIpfsNode` initialises a repo in a folder, restricts every address to 127.0.0.1 (the API on a fixed free
port so that a restarted node keeps its URL; swarm, gateway and gRPC on ports the OS picks), removes bootstrap
peers and MDNS, starts `jsipfs daemon` from the npm folder in its own process group, waits until
`/api/v0/version` answers, and stops it by its process group. It serves the Kubo RPC API, so the client
works unchanged against a real kubo.

Run one in the foreground for a demo: `python -m offchain.ipfs.node --repo DIR [--port N]` or `ami ipfs node`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from offchain.ipfs.errors import IpfsNodeError

JSNODE_DIR = Path(__file__).resolve().parent / "jsnode"
"""The npm folder (package.json + lock file) that `scripts/setup.sh` installs with `npm ci`."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def jsipfs_executable(jsnode_dir: Path = JSNODE_DIR) -> Path:
    """Path of the installed `jsipfs` launcher; raises `IpfsNodeError` telling how to install it."""
    exe = jsnode_dir / "node_modules" / ".bin" / "jsipfs"
    if not exe.exists():
        raise IpfsNodeError(
            f"the local IPFS node is not installed ({exe} is missing): run ./scripts/setup.sh"
        )
    if shutil.which("node") is None:
        raise IpfsNodeError(
            "Node.js (`node`, version 20) is not on PATH: install it, then run ./scripts/setup.sh"
        )
    return exe


class LocalIpfsNode:
    """A js-ipfs daemon on loopback with its repo in `repo`; a context manager that starts and stops it.

    Args:
        repo: the repo folder (created and initialised on first start; kept across restarts).
        port: API port on 127.0.0.1; a free one is picked when None, and kept for restarts.
        jsnode_dir: the npm folder holding `node_modules/.bin/jsipfs`.
        startup_timeout: seconds to wait for the API to answer before giving up.
    """

    def __init__(
        self,
        repo: Path | str,
        port: int | None = None,
        *,
        jsnode_dir: Path = JSNODE_DIR,
        startup_timeout: float = 60.0,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.port = port if port is not None else free_port()
        if not 0 < self.port < 65536:
            raise IpfsNodeError(f"port must be between 1 and 65535, not {self.port}")
        self.jsnode_dir = jsnode_dir
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        """Base URL of the Kubo RPC API, e.g. `http://127.0.0.1:5001` (without `/api/v0`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the running daemon, None when stopped."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        """The daemon's stdout and stderr (appended to across restarts)."""
        return self.repo / "daemon.log"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IPFS_PATH"] = str(self.repo)
        # No telemetry, no colours in the log.
        env["NO_COLOR"] = "1"
        return env

    def _init_repo(self, exe: Path) -> None:
        if (self.repo / "config").exists():
            return
        self.repo.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(exe), "init", "--profile", "test", "--empty-repo"],
            env=self._env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise IpfsNodeError(
                f"jsipfs init failed in {self.repo}: {result.stderr.decode(errors='replace')[-2000:]}"
            )

    def _configure(self) -> None:
        path = self.repo / "config"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise IpfsNodeError(f"cannot read the IPFS repo config {path}: {exc}") from exc
        loopback = "/ip4/127.0.0.1/tcp"
        addresses = config.setdefault("Addresses", {})
        addresses.update(
            {
                "API": f"{loopback}/{self.port}",
                "Gateway": f"{loopback}/0",
                "RPC": f"{loopback}/0",
                "Swarm": [f"{loopback}/0"],
                "Announce": [],
                "Delegates": [],
            }
        )
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery["MDNS"] = {"Enabled": False, "Interval": 10}
        discovery["webRTCStar"] = {"Enabled": False}
        path.write_text(json.dumps(config, indent=2))

    def _clear_stale_lock(self) -> None:
        # A daemon killed hard leaves its repo lock behind, and js-ipfs then refuses to start on that repo.
        lock = self.repo / "repo.lock"
        pid_file = self.repo / "daemon.pid"
        if not lock.exists():
            return
        old_pid = int(pid_file.read_text()) if pid_file.exists() and pid_file.read_text().isdigit() else None
        if old_pid is not None and _alive(old_pid):
            raise IpfsNodeError(f"another IPFS daemon (pid {old_pid}) already uses the repo {self.repo}")
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            lock.unlink(missing_ok=True)
        (self.repo / "api").unlink(missing_ok=True)

    def start(self) -> LocalIpfsNode:
        """Initialise the repo if needed, start the daemon and wait until its API answers."""
        if self.pid is not None:
            return self
        exe = jsipfs_executable(self.jsnode_dir)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise IpfsNodeError(f"port {self.port} on 127.0.0.1 is already in use")
        self._init_repo(exe)
        self._configure()
        self._clear_stale_lock()
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [str(exe), "daemon"],
                env=self._env(),
                cwd=self.repo,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches node's children too
            )
        finally:
            log.close()
        (self.repo / "daemon.pid").write_text(str(self._proc.pid))
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        request = urllib.request.Request(f"{self.api_url}/api/v0/version", method="POST")
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self._proc = None
                raise IpfsNodeError(f"the IPFS daemon exited during start-up; its log ends with:\n{tail}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise IpfsNodeError(
                    f"the IPFS daemon did not answer on {self.api_url} within {self.startup_timeout}s"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the daemon (SIGTERM to its process group, SIGKILL after `timeout` seconds). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        (self.repo / "daemon.pid").unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same repo and the same API port."""
        self.stop()
        self.start()

    def __enter__(self) -> LocalIpfsNode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_foreground(repo: Path, port: int | None) -> None:
    """Start a node, print its API URL, and keep it running until interrupted (Ctrl-C or SIGTERM)."""
    node = LocalIpfsNode(repo, port)
    stopping = False

    def _on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_term)
    with node:
        print(f"IPFS node ready: API {node.api_url} (repo {node.repo}, pid {node.pid})", flush=True)
        try:
            while not stopping and node.pid is not None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("IPFS node stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the project's local IPFS node in the foreground.")
    parser.add_argument(
        "--repo", type=Path, default=Path(".ami/ipfs"), help="repo folder (default .ami/ipfs)"
    )
    parser.add_argument("--port", type=int, default=5001, help="API port on 127.0.0.1 (default 5001)")
    args = parser.parse_args(argv)
    try:
        run_foreground(args.repo, args.port)
    except IpfsNodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
