"""The whole service on one machine: Temporal dev server, one worker with every lane, and the API.

``make run`` runs this module; the end-to-end tests start the same stack on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from app.temporal import SEARCH_ATTRIBUTE_NAMES

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _terminate_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child when its parent exits (prctl PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tool(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} is not installed; run 'make run', which installs it")
    return found


@dataclass
class DevStack:
    data_dir: Path
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int | None = 8233
    """Temporal Web UI port; ``None`` runs the server without the UI."""
    temporal_in_memory: bool = False
    """Keep Temporal's state in memory instead of ``data_dir/temporal.db``; tests and benchmarks."""
    log_dir: Path | None = None
    """Folder of the per-process log files; ``None`` leaves the output on this terminal."""
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_lanes: tuple[str, ...] = ("",)
    """One worker process per entry, serving the lanes it lists (``media`` or ``light,documents``);
    an empty entry serves every lane."""
    die_with_parent: bool = False
    """Have the kernel stop the children if this process dies, even by SIGKILL.

    It sets ``preexec_fn``, which is unsafe when the parent runs threads, so only the
    single-threaded ``make run`` process turns it on."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "WORKLANE_DATA_DIR": str(self.data_dir.resolve()),
                "WORKLANE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
                "WORKLANE_API_HOST": "127.0.0.1",
                "WORKLANE_API_PORT": str(self.api_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, command: list[str]) -> None:
        log: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = (self.log_dir / f"{name}.log").open("ab")
        # Each process leads its own group, so stopping it also stops what it started.
        self.processes[name] = subprocess.Popen(
            command,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=True,
            preexec_fn=_terminate_with_parent if self.die_with_parent else None,
        )
        if log is not None:
            log.close()

    def log_tail(self, name: str, lines: int = 15) -> str:
        """Return the last lines of a process's log, to show with an error."""
        if self.log_dir is None or not (self.log_dir / f"{name}.log").exists():
            return ""
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
        return f"\nlast lines of {self.log_dir / name}.log:\n" + "\n".join(text[-lines:])

    def _wait(self, name: str, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited with code {process.returncode} while starting"
                    + self.log_tail(name)
                )
            if ready():
                return
            time.sleep(0.1)
        raise StackError(
            f"{name} did not become ready within {START_TIMEOUT_SECONDS:.0f} s ({what})"
            + self.log_tail(name)
        )

    def start(self) -> None:
        for port in (self.temporal_port, self.api_port, self.ui_port):
            if port is not None and _port_open(port):
                raise StackError(
                    f"port {port} on 127.0.0.1 is already in use; stop the other service "
                    "(perhaps an earlier 'make run') and try again"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_temporal()
            for name in self.worker_names:
                self.start_worker(name)
            self.start_api()
        except BaseException:
            self.stop()
            raise

    @property
    def worker_names(self) -> list[str]:
        if len(self.worker_lanes) == 1:
            return ["worker"]
        return [f"worker-{number}" for number in range(1, len(self.worker_lanes) + 1)]

    def start_worker(self, name: str) -> None:
        """Start (or start again) the worker ``name`` with its lanes."""
        lanes = self.worker_lanes[self.worker_names.index(name)]
        self._spawn(name, [sys.executable, "worker.py", *(["--lanes", lanes] if lanes else [])])

    def start_api(self) -> None:
        self._spawn(
            "api",
            [
                sys.executable, "-m", "uvicorn", "app.api.main:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(self.api_port), "--no-access-log",
            ],
        )  # fmt: skip
        self._wait("api", self._api_ready, f"GET {self.api_url}/readyz")

    def restart_temporal(self) -> None:
        """Stop the Temporal server and start it again on the same port and database file."""
        self.stop_process("temporal")
        self._start_temporal()

    def _start_temporal(self) -> None:
        command = [
            _tool("temporal"), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(self.temporal_port),
            "--log-level", "warn",
            # Hands an activity to the worker that scheduled it, skipping a matching round trip.
            "--dynamic-config-value", "system.enableActivityEagerExecution=true",
        ]  # fmt: skip
        if not self.temporal_in_memory:
            command += ["--db-filename", str(self.data_dir / "temporal.db")]
            # WAL with synchronous=NORMAL survives a crash of the server; only a power loss can
            # drop the last moments of history.
            command += [
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
            ]
        for name in SEARCH_ATTRIBUTE_NAMES:
            command += ["--search-attribute", f"{name}=Keyword"]
        if self.ui_port is None:
            command.append("--headless")
        else:
            command += ["--ui-ip", "127.0.0.1", "--ui-port", str(self.ui_port)]
            command.append("--ui-disable-news-fetch")
        self._spawn("temporal", command)
        self._wait("temporal", lambda: _port_open(self.temporal_port), "gRPC port open")

    def _api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_process(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send ``sig`` to the process group of ``name``, then SIGKILL if it does not exit."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Stop the API, then the workers, then Temporal; each gets SIGTERM, then SIGKILL."""
        for name in ("api", *self.worker_names, "temporal"):
            self.stop_process(name)

    def create_dev_key(self) -> str:
        key_file = self.data_dir / "dev-api-key"
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "dev-setup", "--key-file", str(key_file)],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run Temporal, a worker and the API on this machine."
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".data"))
    args = parser.parse_args()

    stack = DevStack(data_dir=args.data_dir, log_dir=args.data_dir / "logs", die_with_parent=True)
    try:
        key = stack.create_dev_key()
        stack.start()
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"error: setting up the development workspace failed:\n{err.stderr}", file=sys.stderr)
        return 1

    print(
        f"""
Worklane is running.
  API:             {stack.api_url}   (OpenAPI docs: {stack.api_url}/docs)
  Temporal Web UI: http://127.0.0.1:{stack.ui_port}
  Logs:            {stack.log_dir}/
  Development API key (workspace "development"): {key}

Try:
  curl -s -H "Authorization: Bearer {key}" {stack.api_url}/v1/tools/image-compress-api

Press Ctrl-C to stop everything.""",
        flush=True,
    )
    stopping = False

    def _request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP arrives when the terminal closes; it stops the stack like Ctrl-C.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_stop)
    try:
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(
                        f"error: {name} exited with code {process.returncode}; stopping"
                        + stack.log_tail(name),
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
