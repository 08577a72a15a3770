"""Layered policies as units: the admin baseline, the owner file on top, and `{username}` in path settings."""

from __future__ import annotations

import hashlib
import random
from types import SimpleNamespace

import pytest
from policy_fixtures import (
    MODEL,
    RecordingAuditTrail,
    principal,
    random_policy,
    random_request,
    write_atomically,
)
from traitlets import HasTraits, Unicode

from jupyter_collab_mcp_secure.path_templates import expand, expand_path_traits
from jupyter_collab_mcp_secure.policy.engine import PolicyEngine
from jupyter_collab_mcp_secure.policy.explain import role_chains
from jupyter_collab_mcp_secure.policy.functions import implies
from jupyter_collab_mcp_secure.policy.glob import path_match
from jupyter_collab_mcp_secure.policy.layers import (
    PROBE,
    LayeredDecider,
    owner_subjects,
    parse_owner_policy,
)
from jupyter_collab_mcp_secure.policy.source import PolicyError, load_files

OWNER = "alice"
BASELINE = "p, role:owner, **, admin, allow\np, bob, shared/secret/**, read, deny\n"
SHARE = "p, bob, shared/**, write, allow\n"


def engine_for(tmp_path, baseline, owner_text=None, audit=None):
    policy = tmp_path / "baseline.csv"
    policy.write_text(baseline)
    owner_file = tmp_path / "owner.csv"
    if owner_text is not None:
        owner_file.write_text(owner_text)
    return PolicyEngine(MODEL, policy, audit_trail=audit, poll_interval=0.05, owner_policy_path=owner_file, owner=OWNER)


def test_owner_shares_within_the_baseline_and_a_baseline_deny_wins(tmp_path):
    engine = engine_for(tmp_path, BASELINE, SHARE)
    bob = principal("bob")
    assert engine.allowed(bob, "write", "shared/a.txt")
    assert engine.allowed(bob, "read", "shared")
    assert not engine.allowed(bob, "write", "shared/secret/x.txt")
    assert not engine.allowed(bob, "read", "shared/secret/x.txt")
    assert not engine.allowed(bob, "execute", "shared/a.txt")
    assert not engine.allowed(bob, "read", "elsewhere.txt")
    assert engine.allowed(principal(OWNER, owner=True), "admin", "shared/secret/x.txt")


def test_an_owner_rule_never_grants_more_than_the_owner_holds(tmp_path):
    baseline = (
        "p, role:owner, **, write, allow\np, role:owner, shared/**, admin, allow\np, alice, vault/**, read, deny\n"
    )
    engine = engine_for(tmp_path, baseline, "p, carol, **, admin, allow\n")
    carol = principal("carol")
    assert not engine.allowed(carol, "admin", "notes/n.txt")  # the owner has no admin there
    assert not engine.allowed(carol, "execute", "notes/n.txt")
    assert engine.allowed(carol, "write", "notes/n.txt")  # the owner's own write, shared
    assert engine.allowed(carol, "admin", "shared/x")
    # The owner's user name counts as the owner's: a baseline deny on it caps the owner's rules.
    assert not engine.allowed(carol, "read", "vault/v.txt")


def test_an_owner_deny_wins_over_a_baseline_allow(tmp_path):
    baseline = "p, role:owner, **, admin, allow\np, group:team, shared/**, write, allow\n"
    engine = engine_for(tmp_path, baseline, "p, bob, shared/private/**, read, deny\n")
    assert not engine.allowed(principal("bob", groups=("team",)), "read", "shared/private/x")
    assert engine.allowed(principal("bob", groups=("team",)), "write", "shared/open/x")
    assert engine.allowed(principal("carol", groups=("team",)), "write", "shared/private/x")


def test_reserved_subjects_are_ignored_with_a_reason_and_the_rest_applies(tmp_path):
    baseline = BASELINE + "p, role:hub-admin, **, admin, allow\n"
    owner_text = (
        "p, role:owner, **, read, deny\n"
        "p, role:hub-admin, **, read, deny\n"
        "g, bob, role:owner\n"
        "g, role:hub-admin, role:nobody\n"
        "p, service:backup, **, read, deny\n"
        "g, bob, service:backup\n" + SHARE
    )
    audit = RecordingAuditTrail()
    engine = engine_for(tmp_path, baseline, owner_text, audit)
    ignored = engine.owner_policy.ignored
    assert [finding.line for finding in ignored] == [1, 2, 3, 4, 5, 6]
    assert "reserved subject 'role:owner'" in str(ignored[0])
    assert "service: subjects" in str(ignored[4])
    assert engine.allowed(principal(OWNER, owner=True), "read", "x")
    assert engine.allowed(SimpleNamespace(subjects=("hubby", "role:hub-admin")), "admin", "x")
    assert engine.allowed(principal("bob"), "write", "shared/a.txt")
    assert not engine.allowed(principal("bob"), "admin", "elsewhere")  # no role:owner through the owner file
    [record] = audit.reloads
    assert record["ok"] is True
    assert record["sha256"] == hashlib.sha256(owner_text.encode()).hexdigest()
    assert record["reason"].startswith("ignored 6 owner rule(s): warning: line 1: ignored: ")


def test_owner_role_links_do_not_reach_baseline_roles(tmp_path):
    baseline = "p, role:owner, **, admin, allow\np, role:editor, **, write, allow\ng, carol, role:editor\n"
    owner_text = "g, bob, role:editor\ng, dave, role:friends\np, role:friends, shared/**, read, allow\n"
    engine = engine_for(tmp_path, baseline, owner_text)
    assert not engine.allowed(principal("bob"), "write", "x")
    assert engine.allowed(principal("carol"), "write", "x")
    assert engine.allowed(principal("dave"), "read", "shared/x")


def test_the_probe_subject_can_be_neither_written_nor_presented(tmp_path):
    owner = parse_owner_policy(f"p, {PROBE}, **, read, deny\n".encode(), "owner.csv")
    assert owner.snapshot.rules == () and [finding.line for finding in owner.ignored] == [1]
    (tmp_path / "probe.csv").write_text(f"p, {PROBE}, **, read, deny\n")
    with pytest.raises(PolicyError, match="whitespace"):
        load_files(MODEL, tmp_path / "probe.csv")
    engine = engine_for(tmp_path, BASELINE, SHARE)
    assert not engine.allowed(principal(PROBE), "read", "shared/a.txt")
    assert not engine.allowed(SimpleNamespace(subjects=(OWNER, "role:owner", PROBE)), "read", "x")


async def test_owner_file_reloads_keeps_the_last_good_rules_and_absent_means_none(tmp_path):
    audit = RecordingAuditTrail()
    engine = engine_for(tmp_path, BASELINE, None, audit)
    bob = principal("bob")
    assert not engine.allowed(bob, "write", "shared/a.txt")
    assert audit.reloads == []  # no owner file, nothing to audit at startup
    owner_file = tmp_path / "owner.csv"
    write_atomically(owner_file, SHARE)
    assert await engine.reload(baseline=False)
    assert engine.allowed(bob, "write", "shared/a.txt")
    assert audit.reloads[-1]["sha256"] == hashlib.sha256(SHARE.encode()).hexdigest()

    write_atomically(owner_file, "p, bob, shared/**, scribble, allow\n")
    assert not await engine.reload(baseline=False)
    assert audit.reloads[-1]["ok"] is False
    assert "unknown action 'scribble'" in audit.reloads[-1]["reason"]
    assert engine.allowed(bob, "write", "shared/a.txt")  # the last good owner rules

    # A baseline reload keeps the owner layer.
    write_atomically(tmp_path / "baseline.csv", BASELINE + "p, bob, shared/b.txt, write, deny\n")
    assert await engine.reload(owner=False)
    assert engine.allowed(bob, "write", "shared/a.txt")
    assert not engine.allowed(bob, "write", "shared/b.txt")

    owner_file.unlink()
    assert await engine.reload(baseline=False)
    assert not engine.allowed(bob, "write", "shared/a.txt")
    withdrawn = {"ok": True, "sha256": None, "reason": "no owner policy file", "source": str(owner_file)}
    assert audit.reloads[-1] == withdrawn


async def test_the_watcher_reloads_only_the_layer_that_changed(tmp_path):
    audit = RecordingAuditTrail()
    engine = engine_for(tmp_path, BASELINE, SHARE, audit)
    owner_file = tmp_path / "owner.csv"
    write_atomically(owner_file, SHARE + "p, bob, extra/**, read, allow\n")
    while not await engine.poll_once():
        pass
    assert [record["source"] for record in audit.reloads] == [str(owner_file), str(owner_file)]
    assert engine.allowed(principal("bob"), "read", "extra/x")


def test_a_bad_owner_file_at_startup_leaves_the_baseline_alone(tmp_path):
    audit = RecordingAuditTrail()
    engine = engine_for(tmp_path, BASELINE, "p, bob, shared/**\n", audit)
    assert engine.owner_policy is None
    assert not engine.allowed(principal("bob"), "write", "shared/a.txt")
    assert engine.allowed(principal(OWNER, owner=True), "admin", "x")
    assert audit.reloads[-1]["ok"] is False


def matching(snapshot, subjects, action, path, held_by={}):  # noqa: B006 - a cache across calls
    """(some allow matches, some deny matches), rule by rule as the bundled model says."""
    key = (snapshot.sha256, subjects)
    if key not in held_by:
        held_by[key] = {name for subject in subjects for name in role_chains(snapshot, subject)}
    held = held_by[key]
    rules = [rule for rule in snapshot.rules if rule.subject in held and path_match(path, rule.pattern)]
    allows = any(rule.effect == "allow" and implies(rule.action, action) for rule in rules)
    denies = any(rule.effect == "deny" and implies(action, rule.action) for rule in rules)
    return allows, denies


def test_layered_decisions_match_a_rule_by_rule_reference(tmp_path):
    """The composition of two indexes, checked against a plain evaluation of both files."""
    rng = random.Random(7)
    for round_ in range(3):
        baseline_path = tmp_path / f"b{round_}.csv"
        baseline_path.write_text(random_policy(rng, 120, 15) + "p, role:owner, shared/**, write, allow\n")
        baseline = load_files(MODEL, baseline_path)
        owner = parse_owner_policy(random_policy(rng, 80, 10).encode(), "owner.csv")
        capped_by = owner_subjects("alice")
        decider = LayeredDecider(baseline, owner, capped_by, cache_size=0)
        for _ in range(800):
            subjects, action, path = random_request(rng)
            base_allows, base_denies = matching(baseline, subjects, action, path)
            owner_allows, owner_denies = matching(owner.snapshot, subjects, action, path)
            cap_allows, cap_denies = matching(baseline, capped_by, action, path)
            expected = (
                not base_denies
                and not owner_denies
                and (base_allows or (owner_allows and cap_allows and not cap_denies))
            )
            assert decider.allowed(subjects, action, path) == expected, (subjects, action, path)


def test_username_and_servername_expand_in_paths():
    values = {"username": "alice", "servername": ""}
    assert expand("/etc/jupyter/{username}/policy{servername}.csv", values) == "/etc/jupyter/alice/policy.csv"
    assert expand("/srv/{username}-{servername}.csv", {"username": "bob", "servername": "gpu"}) == "/srv/bob-gpu.csv"
    assert expand("/srv/{other}/x", values) == "/srv/{other}/x"
    for bad in ("../eve", "a/b", "..", ""):
        with pytest.raises(ValueError, match="cannot expand {username}"):
            expand("/srv/{username}.csv", {"username": bad, "servername": ""}, setting="policy_file")
    with pytest.raises(ValueError, match="policy_file '/srv/{servername}'"):
        expand("/srv/{servername}", {"username": "a", "servername": "x/y"}, setting="policy_file")


def test_expand_path_traits_rewrites_every_path_setting_once():
    class Settings(HasTraits):
        policy_file = Unicode("/etc/jupyter/policies/{username}.csv")
        owner_policy_file = Unicode("/home/{username}/.jupyter/owner-{servername}.csv")
        audit_log = Unicode("stdout")
        state_dir = Unicode("/var/lib/collab/{username}/{servername}")
        unrelated = Unicode("{username}")

    settings = Settings()
    expand_path_traits(settings, "carol", environ={"JUPYTERHUB_SERVER_NAME": "big"})
    assert settings.policy_file == "/etc/jupyter/policies/carol.csv"
    assert settings.owner_policy_file == "/home/carol/.jupyter/owner-big.csv"
    assert settings.audit_log == "stdout"
    assert settings.state_dir == "/var/lib/collab/carol/big"
    assert settings.unrelated == "{username}"


def test_folder_operations_follow_the_layers_over_the_whole_subtree(tmp_path):
    engine = engine_for(tmp_path, BASELINE, SHARE + "p, bob, shared/keep/**, write, deny\n")
    bob = principal("bob")
    assert engine.allowed_subtree(bob, "write", "shared/drafts")  # the owner's share covers it
    assert not engine.allowed_subtree(bob, "write", "shared")  # an owner deny lies beneath
    assert not engine.allowed_subtree(bob, "read", "shared")  # and so does the baseline's deny on secret/
    assert not engine.allowed_subtree(bob, "write", "elsewhere")
    assert engine.allowed_subtree(principal(OWNER, owner=True), "admin", "shared")


def test_the_deciding_rule_names_its_layer(tmp_path):
    engine = engine_for(tmp_path, BASELINE, SHARE + "p, bob, shared/keep/**, write, deny\n")
    bob = principal("bob")
    assert engine.deciding_rule(bob, "write", "shared/a.txt") == "owner line 1: p, bob, shared/**, write, allow"
    assert (
        engine.deciding_rule(bob, "read", "shared/secret/x") == "baseline line 2: p, bob, shared/secret/**, read, deny"
    )
    assert engine.deciding_rule(bob, "write", "shared/keep/k") == "owner line 2: p, bob, shared/keep/**, write, deny"
    assert engine.deciding_rule(bob, "read", "elsewhere") == "no rule grants it (default deny)"
