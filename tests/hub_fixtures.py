"""A real JupyterHub on 127.0.0.1 for the hub tests: one hub per test session, kept on one xdist worker.

DummyAuthenticator, SimpleLocalProcessSpawner with a home per user (the served root),
configurable-http-proxy from npm, users alice, bob and carol (carol is a hub admin),
the group `team`, an admin service that drives the hub's REST API, and two services
allowed onto alice's server: `alice` (named like the user on purpose) and `notebook-agent`.
Each single-user server reads a system config (`etc/jupyter_server_config.py`) that picks
its policy file from `policies/<user>.csv` (outside every home; the bundled hub baseline at first).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import free_port

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "policies" / "hub-baseline.csv"
USERS = ("alice", "bob", "carol")
HUB_ADMIN = "carol"
# Seconds: short so the tests see the hub's view of activity and revocations quickly.
ACTIVITY_INTERVAL = 1
TOKEN_CACHE_SECONDS = 3
ACTIVITY_BUMP_SECONDS = 1
# A hub service with a budget of its own on the users' servers (tests/test_hub_budgets.py); hours, so no window ends mid-test.
SERVICE_BUDGETS = {"service:budgeted-agent": {"read": "3/hour"}}


def proxy_command() -> str:
    """configurable-http-proxy as scripts/run-tests.sh installs it (project-local npm prefix), else from PATH."""
    local = REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
    found = str(local) if local.exists() else shutil.which("configurable-http-proxy")
    if found is None:
        pytest.fail("configurable-http-proxy is missing: run scripts/run-tests.sh, which installs it with npm")
    return found


@dataclass
class HubEndpoint:
    """What tests/harness.py `mcp_client` needs: the MCP URL of a server behind the proxy, and a token."""

    mcp_url: str
    token: str


class Hub:
    def __init__(self, workdir: Path, port: int, admin_token: str, service_tokens: dict[str, str]) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"
        self.admin_token = admin_token
        self.service_tokens = service_tokens
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def homes(self) -> Path:
        return self.workdir / "home"

    @property
    def policies(self) -> Path:
        return self.workdir / "policies"

    def audit_log(self, user: str) -> Path:
        return self.workdir / "audit" / f"{user}.jsonl"

    def log_text(self) -> str:
        return (self.workdir / "hub.log").read_text(errors="replace")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", {"Authorization": f"token {self.admin_token}"})
        return httpx.request(method, f"{self.url}/hub/api/{path}", timeout=30, **kwargs)

    def user_token(self, user: str, scopes: list[str] | None = None) -> str:
        body: dict[str, Any] = {"note": "hub tests", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.api("POST", f"users/{user}/tokens", json=body)
        response.raise_for_status()
        return response.json()["token"]

    def server_url(self, user: str) -> str:
        return f"{self.url}/user/{user}/"

    def endpoint(self, user: str, token: str) -> HubEndpoint:
        return HubEndpoint(self.server_url(user) + "mcp", token)

    def server_model(self, user: str) -> dict[str, Any] | None:
        response = self.api("GET", f"users/{user}")
        response.raise_for_status()
        return response.json()["servers"].get("")

    def server_pid(self, user: str) -> int:
        model = self.server_model(user)
        assert model is not None, f"{user} has no server"
        return int(model["state"]["pid"])

    def share(self, owner: str, user: str) -> None:
        self.api("POST", f"shares/{owner}/", json={"user": user}).raise_for_status()

    def unshare(self, owner: str, user: str) -> None:
        self.api("PATCH", f"shares/{owner}/", json={"user": user}).raise_for_status()

    def start_server(self, user: str, timeout: float = 120) -> None:
        """Spawn the user's server and wait until its MCP endpoint answers through the proxy."""
        response = self.api("POST", f"users/{user}/server")
        if response.status_code not in (201, 202, 400):  # 400: already running
            response.raise_for_status()
        token = self.user_token(user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(user)
            if model and model.get("ready"):
                with contextlib.suppress(httpx.HTTPError):
                    answer = httpx.post(
                        self.server_url(user) + "mcp", headers={"Authorization": f"token {token}"}, content=b"{}"
                    )
                    if answer.status_code not in (404, 502, 503):
                        return
            time.sleep(0.3)
        raise RuntimeError(f"{user}'s server did not get ready:\n{self.log_text()[-6000:]}")

    def stop_server(self, user: str, timeout: float = 120) -> None:
        response = self.api("DELETE", f"users/{user}/server")
        if response.status_code not in (202, 204, 400):
            response.raise_for_status()
        deadline = time.monotonic() + timeout
        while self.server_model(user) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{user}'s server did not stop:\n{self.log_text()[-6000:]}")
            time.sleep(0.3)

    def write_policy(self, user: str, text: str) -> Path:
        """The policy of `user`'s server (picked up at spawn, hot-reloaded after), outside every home."""
        path = self.policies / f"{user}.csv"
        staging = path.with_suffix(".tmp")
        staging.write_text(text)
        staging.replace(path)
        return path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _hub_config(hub: Hub, ports: dict[str, int], proxy: str) -> str:
    singleuser = str(Path(sys.executable).with_name("jupyterhub-singleuser"))
    services = [{"name": "hub-test-admin", "api_token": hub.admin_token}] + [
        {"name": name, "api_token": token} for name, token in hub.service_tokens.items()
    ]
    return textwrap.dedent(
        f"""
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {ports["public"]}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {ports["hub"]}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["proxy_api"]}"
        c.ConfigurableHTTPProxy.command = [{proxy!r}]
        c.ConfigurableHTTPProxy.pid_file = {str(hub.workdir / "proxy.pid")!r}
        c.JupyterHub.db_url = "sqlite:///" + {str(hub.workdir / "hub.sqlite")!r}
        c.JupyterHub.cookie_secret_file = {str(hub.workdir / "cookie_secret")!r}
        c.JupyterHub.pid_file = {str(hub.workdir / "hub.pid")!r}
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allowed_users = {set(USERS)!r}
        c.Authenticator.admin_users = {{{HUB_ADMIN!r}}}
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(hub.homes) + "/{username}"!r}
        c.Spawner.cmd = [{singleuser!r}]
        c.Spawner.args = ["--allow-root"]
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 120
        c.Spawner.environment = {{
            "PYTHONPATH": {str(REPO)!r},
            "PYTHONUNBUFFERED": "1",
            "JUPYTER_CONFIG_PATH": {str(hub.workdir / "etc")!r},
            "JUPYTERHUB_ACTIVITY_INTERVAL": "{ACTIVITY_INTERVAL}",
        }}
        c.JupyterHub.load_groups = {{"team": {{"users": ["alice", "bob"]}}}}
        c.JupyterHub.services = {services!r}
        c.JupyterHub.load_roles = [
            # What users need to share their own servers (JupyterHub 5+).
            {{"name": "user", "scopes": ["self", "shares!user", "read:users:name", "read:groups:name"]}},
            {{
                "name": "hub-test-admin",
                "scopes": [
                    "admin:users", "admin:servers", "admin:server_state", "tokens", "shares", "admin:groups", "list:users"
                ],
                "services": ["hub-test-admin"],
            }},
            {{
                "name": "alice-agents",
                "scopes": ["access:servers!server=alice/"],
                "services": ["alice", "notebook-agent", "budgeted-agent"],
            }},
        ]
        c.JupyterHub.cleanup_servers = True
        # The spawner logs each signal it sends at debug level (SIGINT, then SIGTERM, then SIGKILL).
        c.JupyterHub.log_level = "DEBUG"
        """
    )


def _singleuser_config(hub: Hub) -> str:
    return textwrap.dedent(
        f"""
        import os
        c = get_config()  # noqa
        user = os.environ["JUPYTERHUB_USER"]
        c.CollabMCP.policy_file = os.path.join({str(hub.policies)!r}, user + ".csv")
        c.CollabMCP.audit_log = os.path.join({str(hub.workdir / "audit")!r}, user + ".jsonl")
        c.CollabMCP.policy_poll_interval = 0.2
        c.CollabMCP.hub_token_cache_seconds = {TOKEN_CACHE_SECONDS}
        c.CollabMCP.activity_bump_interval = {ACTIVITY_BUMP_SECONDS}
        c.CollabMCP.rate_limits = {{action: "100000/minute" for action in ("read", "write", "execute", "admin")}}
        c.CollabMCP.rate_limit_overrides = {SERVICE_BUDGETS!r}
        c.YDocExtension.document_save_delay = 0.2
        """
    )


def start_hub(workdir: Path) -> Hub:
    proxy = proxy_command()
    ports = {"public": free_port(), "hub": free_port(), "proxy_api": free_port()}
    service_tokens = {name: secrets.token_hex(16) for name in ("alice", "notebook-agent", "budgeted-agent")}
    hub = Hub(workdir, ports["public"], secrets.token_hex(16), service_tokens)
    for folder in (hub.homes, hub.policies, workdir / "etc", workdir / "audit"):
        folder.mkdir(parents=True, exist_ok=True)
    (workdir / "jupyterhub_config.py").write_text(_hub_config(hub, ports, proxy))
    (workdir / "etc" / "jupyter_server_config.py").write_text(_singleuser_config(hub))
    for user in USERS:
        hub.write_policy(user, BASELINE.read_text())
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTERHUB_")}
    env["PYTHONPATH"] = str(REPO)
    log = open(workdir / "hub.log", "ab")
    hub.proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(workdir / "jupyterhub_config.py")],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if hub.proc.poll() is not None:
            raise RuntimeError(f"jupyterhub exited:\n{hub.log_text()[-6000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if hub.api("GET", "users/alice").status_code == 200:
                return hub
        time.sleep(0.3)
    hub.stop()
    raise RuntimeError(f"jupyterhub did not get ready:\n{hub.log_text()[-6000:]}")


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(tmp_path_factory.mktemp("hub"))
    try:
        yield running
    finally:
        for user in USERS:
            with contextlib.suppress(Exception):
                if running.server_model(user) is not None:
                    running.stop_server(user)
        running.stop()


@pytest.fixture(scope="session")
def alice_server(hub: Hub) -> Hub:
    """alice's server running under the hub (started once; tests restore what they change)."""
    hub.start_server("alice")
    return hub


@pytest.fixture
def alice_policy(hub: Hub) -> Iterator[Callable[[str], None]]:
    """Replace the policy of alice's running server for one test; the baseline comes back after it."""
    baseline = BASELINE.read_text()

    def write(text: str) -> None:
        if (hub.policies / "alice.csv").read_text() == text:
            return
        loads = policy_loads(hub, "alice", text)
        hub.write_policy("alice", text)
        wait_for_policy(hub, "alice", text, after=loads)

    yield write
    write(baseline)


def policy_loads(hub: Hub, user: str, text: str) -> int:
    """How often the user's server has audited loading exactly this policy text."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return sum(
        record.get("event") == "policy_reload" and record.get("policy_sha256") == digest
        for record in read_audit(hub, user)
    )


def wait_for_policy(hub: Hub, user: str, text: str, *, after: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while policy_loads(hub, user, text) <= after:
        if time.monotonic() > deadline:
            raise AssertionError(f"{user}'s server did not load the new policy")
        time.sleep(0.1)


def read_audit(hub: Hub, user: str) -> list[dict[str, Any]]:
    path = hub.audit_log(user)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep `xdist_group` tests together on pytest 9.2, where xdist 3.8's grouping silently stopped working.

    xdist marks a grouped test by suffixing `@<group>` to its node id through the old `_nodeid`
    field, which pytest 9.2's structured ids ignore (pytest-xdist issue #1386): the one hub would
    then start once per worker. This sets the same suffix on the structured id.
    """
    if not config.getoption("loadgroup", default=False):
        return
    for item in items:
        groups = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            from _pytest.nodeid import coerce_node_id

            item._id = coerce_node_id(item.nodeid + suffix)
