"""`jupyter collab-mcp demo`: JupyterLab with the extension on a demo folder, ready for an MCP client."""

from __future__ import annotations

import argparse
import errno
import json
import os
import secrets
import socket
import stat
import sys
from pathlib import Path

import nbformat
from jupyter_core.paths import jupyter_data_dir

_NOTEBOOK_CELLS = [
    ("markdown", "# Analysis with an agent\nOpen this notebook in JupyterLab and ask your agent to extend it."),
    ("code", "import math\nradius = 3\narea = math.pi * radius ** 2\narea"),
    ("code", "for i in range(3):\n    print('step', i)"),
]
_NOTES = "Meeting notes\n=============\n\n- The agent edits this file live; watch it in JupyterLab.\n"
TOKEN_ENV = "COLLAB_MCP_DEMO_TOKEN"


def default_token_file() -> Path:
    return Path(jupyter_data_dir()) / "collab_mcp_secure" / "demo-token"


def add_parser(families: argparse._SubParsersAction) -> None:
    demo = families.add_parser("demo", help="start JupyterLab with the MCP extension on a demo folder")
    demo.add_argument("--folder", default="demo", help="demo folder (created with sample files if missing)")
    demo.add_argument("--port", type=int, default=8888, help="port on 127.0.0.1 (default 8888)")
    demo.add_argument(
        "--token-file",
        default=None,
        help=f"file keeping the token across restarts, created 0600 if missing (default: {default_token_file()}); "
        f"${TOKEN_ENV} gives the token instead",
    )
    demo.set_defaults(run=run)


def create_demo_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    notebook = folder / "analysis.ipynb"
    if not notebook.exists():
        cells = [
            nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
            for kind, source in _NOTEBOOK_CELLS
        ]
        nb = nbformat.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, notebook)
    notes = folder / "notes.md"
    if not notes.exists():
        notes.write_text(_NOTES)


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def stored_token(path: Path) -> str:
    """The token kept in `path` (0600), made on first use so that client configurations survive restarts."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            # Readable by others, it would let any local user act as the owner.
            path.chmod(0o600)
        token = path.read_text().strip()
        if not token:
            raise SystemExit(f"The token file {path} is empty: delete it to get a new token.") from None
        return token
    token = secrets.token_hex(24)
    with os.fdopen(fd, "w") as file:
        file.write(token)
    return token


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder).resolve()
    if port_in_use(args.port):
        # Before any credential is printed: a config for a server that never started is worse than none.
        print(
            f"Port {args.port} on 127.0.0.1 is already in use (another Jupyter server?). "
            f"Start the demo on another port: bash scripts/demo.sh --port {args.port + 1}",
            file=sys.stderr,
        )
        return 1
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        token, token_source = given, f"${TOKEN_ENV}"
    else:
        token_file = Path(args.token_file).expanduser().resolve() if args.token_file else default_token_file()
        if token_file == folder or folder in token_file.parents:
            print(f"The token file {token_file} must not be inside the served folder {folder}.", file=sys.stderr)
            return 1
        token, token_source = stored_token(token_file), str(token_file)
    # Jupyter takes the token from its environment (readable by this user only), never from the command
    # line, which every local user can read with `ps`.
    env = {**{k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN_FILE"}, "JUPYTER_TOKEN": token}
    create_demo_folder(folder)
    url = f"http://127.0.0.1:{args.port}/mcp"
    client_config = {
        "mcpServers": {"jupyter": {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}}
    }
    print(
        f"\nMCP endpoint : {url}\n"
        f"Token        : {token}\n"
        f"Token kept in: {token_source} (the same token on every start; delete the file for a new one)\n"
        f"Authenticate : send the header 'Authorization: Bearer <token>' (never put it in the URL)\n"
        f"JupyterLab   : http://127.0.0.1:{args.port}/lab?token={token}\n"
        f"Demo folder  : {folder}\n"
        f"Stop it      : Ctrl+C in this terminal, or kill {os.getpid()}\n\n"
        f"MCP client configuration (Claude Code, VS Code, Cursor: see docs/clients.md):\n"
        f"{json.dumps(client_config, indent=2)}\n",
        flush=True,
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={folder}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers often run as root; Jupyter refuses that unless told.
        command.append("--allow-root")
    sys.stdout.flush()
    # exec keeps this process id, so the printed `kill` stops the server.
    os.execvpe(command[0], command, env)
    return 0
