"""The reference pages are generated from the code and current; every setting has help and a range check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir
from traitlets import Float, Int, TraitError
from traitlets.traitlets import EventHandler

from jupyter_collab_mcp_secure.cli.main import main
from jupyter_collab_mcp_secure.cli.reference import config_classes, own_config_traits, pages
from jupyter_collab_mcp_secure.extension import CollabMCP
from jupyter_collab_mcp_secure.registry import TOOLS

DOCS = Path(__file__).resolve().parent.parent / "docs"
SETTINGS = {name: trait for cls in config_classes() for name, trait in own_config_traits(cls).items()}
NUMERIC = sorted(name for name, trait in SETTINGS.items() if isinstance(trait, (Int, Float)))


@pytest.mark.parametrize("page", sorted(pages()))
def test_checked_in_page_is_current(page):
    generated = pages()[page]
    checked_in = (DOCS / page).read_text(encoding="utf-8")
    assert checked_in == generated, f"docs/{page} is stale: run `jupyter collab-mcp docs`"


def test_docs_check_fails_on_a_stale_page_and_writing_makes_it_pass(tmp_path, capsys):
    assert main(["docs", "--check", "--docs-dir", str(tmp_path)]) == 1
    assert not any(tmp_path.iterdir())
    assert main(["docs", "--docs-dir", str(tmp_path)]) == 0
    assert {page.name: page.read_text(encoding="utf-8") for page in tmp_path.iterdir()} == pages()
    assert main(["docs", "--check", "--docs-dir", str(tmp_path)]) == 0
    (tmp_path / "tools.md").write_text("hand-edited\n", encoding="utf-8")
    assert main(["docs", "--check", "--docs-dir", str(tmp_path)]) == 1
    assert "tools.md: stale" in capsys.readouterr().err


def test_docs_without_the_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["docs", "--docs-dir", str(tmp_path / "missing")]) == 2
    assert "run from the repository root" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_config_page_documents_every_setting_once_without_this_machines_paths():
    page = pages()["config.md"]
    documented = re.findall(r"^### `CollabMCP\.(\w+)`$", page, flags=re.MULTILINE)
    assert sorted(documented) == sorted(SETTINGS)
    assert set(SETTINGS) >= {"owner", "audit_log", "policy_file", "rate_limits", "event_store_max_age", "fork_ttl"}
    for machine_path in (jupyter_data_dir(), jupyter_config_dir(), str(Path.home())):
        assert machine_path not in page
    assert "default: `<jupyter data dir>/collab_mcp_secure`" in page


def test_tools_page_has_one_row_per_tool_with_its_action_and_path_arguments():
    rows = [line for line in pages()["tools.md"].splitlines() if line.startswith("| `")]
    assert len(rows) == len(TOOLS)
    for spec, row in zip(TOOLS, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[0] == f"`{spec.name}`"
        assert cells[3] == (f"`{spec.action}`" if spec.action else "none")
        assert cells[4] == ", ".join(f"`{name}`" for name in spec.path_args)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_has_help(name):
    assert len(SETTINGS[name].help.split()) >= 5, f"CollabMCP.{name} needs help text"


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_setting_refuses_a_negative_value(name):
    with pytest.raises(TraitError, match=name):
        CollabMCP(**{name: -1})


@pytest.mark.parametrize(
    "name",
    # max_argument_bytes: RateLimitConfig's check was hidden by AuditConfig's handler of the same name.
    [
        "max_argument_bytes",
        "max_edit_chars",
        "fork_ttl",
        "policy_poll_interval",
        "event_store_max_age",
        "output_max_chars",
    ],
)
def test_sizes_timeouts_and_intervals_refuse_zero(name):
    with pytest.raises(TraitError, match=f"{name} must be positive"):
        CollabMCP(**{name: 0})


@pytest.mark.parametrize(
    "name", ["audit_rotate_bytes", "event_store_max_events", "policy_decision_cache_size", "jwt_jwks_refetch_seconds"]
)
def test_zero_is_accepted_where_it_means_off_or_at_once(name):
    assert getattr(CollabMCP(**{name: 0}), name) == 0


def test_no_mixin_handler_is_hidden_by_another_of_the_same_name():
    # traitlets registers handlers by attribute name: a clash leaves one mixin's checks or defaults unapplied
    # (upstream classes override one another's on purpose, so only this package's are checked).
    hidden = [
        f"{cls.__name__}.{attribute}"
        for cls in config_classes()
        for attribute, member in vars(cls).items()
        if isinstance(member, EventHandler) and getattr(CollabMCP, attribute) is not member
    ]
    assert hidden == []
