"""`jupyter collab-mcp demo`: JupyterLab with the extension on a demo folder, ready for an MCP client."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

import nbformat

_NOTEBOOK_CELLS = [
    ("markdown", "# Analysis with an agent\nOpen this notebook in JupyterLab and ask your agent to extend it."),
    ("code", "import math\nradius = 3\narea = math.pi * radius ** 2\narea"),
    ("code", "for i in range(3):\n    print('step', i)"),
]
_NOTES = "Meeting notes\n=============\n\n- The agent edits this file live; watch it in JupyterLab.\n"


def add_parser(families: argparse._SubParsersAction) -> None:
    demo = families.add_parser("demo", help="start JupyterLab with the MCP extension on a demo folder")
    demo.add_argument("--folder", default="demo", help="demo folder (created with sample files if missing)")
    demo.add_argument("--port", type=int, default=8888, help="port on 127.0.0.1")
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


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder).resolve()
    create_demo_folder(folder)
    token = secrets.token_hex(24)
    url = f"http://127.0.0.1:{args.port}/mcp"
    client_config = {
        "mcpServers": {"jupyter": {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}}
    }
    print(
        f"\nMCP endpoint : {url}\n"
        f"Token        : {token}\n"
        f"Authenticate : send the header 'Authorization: Bearer <token>' (never put it in the URL)\n"
        f"JupyterLab   : http://127.0.0.1:{args.port}/lab?token={token}\n"
        f"Demo folder  : {folder}\n\n"
        f"MCP client configuration:\n{json.dumps(client_config, indent=2)}\n",
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
        f"--IdentityProvider.token={token}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers often run as root; Jupyter refuses that unless told.
        command.append("--allow-root")
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 0
