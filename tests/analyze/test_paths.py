from __future__ import annotations

import pytest

from shopseq.analyze.paths import PathsConfig, paths


def _session(user, session, actions, start=0):
    return [(user, session, "x", a, start + i, "c", 1.0) for i, a in enumerate(actions)]


def test_paths_to_purchase_and_exit_on_a_known_log(make_events):
    rows = [
        *_session("u1", "s1", ["view", "view", "cart", "purchase", "view"]),
        *_session("u2", "s2", ["view", "cart", "purchase"]),
        *_session("u3", "s3", ["search", "view", "view", "cart", "view", "cart", "purchase"]),
        *_session("u4", "s4", ["view", "view"]),
        *_session("u5", "s5", ["view"]),
        *_session("u6", "s6", ["search", "view", "cart"]),
    ]
    result = paths(make_events(rows), PathsConfig(max_steps=3, flow_steps=2))
    assert (result.n_sessions, result.n_purchase_sessions) == (6, 3)
    to_purchase = {p.path: p.n for p in result.to_purchase}
    # repeats collapse; s3's 6 steps are cut to the last 3 with a leading ellipsis
    assert to_purchase == {("view", "cart", "purchase"): 2, ("…", "view", "cart", "purchase"): 1}
    assert result.to_purchase[0].share == pytest.approx(2 / 3)
    to_exit = {p.path: p.n for p in result.to_exit}
    assert to_exit == {("view",): 2, ("search", "view", "cart"): 1}
    flows = {(f.source, f.target): f.n for f in result.flows}
    assert flows == {
        ("1. view", "2. cart"): 2,  # s1, s2 (s2 goes on to a purchase at step 3: "continues")
        ("2. cart", "continues"): 2,
        ("1. search", "2. view"): 2,
        ("2. view", "continues"): 2,
        ("1. view", "exit"): 2,  # s4 (collapsed to one view) and s5
    }


def test_flows_stop_at_the_first_purchase(make_events):
    rows = _session("u1", "s1", ["view", "purchase", "view", "cart"])
    result = paths(make_events(rows), PathsConfig(flow_steps=4))
    assert {(f.source, f.target): f.n for f in result.flows} == {("1. view", "2. purchase"): 1}
