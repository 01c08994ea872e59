"""The per-user sequence models: encoder hooks, censored log-normal likelihood, planted signals,
and windows that read only events before the cut-off."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import lognorm

from shopseq.errors import ConfigError
from shopseq.metrics.classification import macro_f1, mean_absolute_error, roc_auc
from shopseq.nextitem.gru4rec import GRU4RecConfig, GRU4RecNet
from shopseq.nextitem.sasrec import SASRecConfig, SASRecNet
from shopseq.runs.sequence_encoders import SEQUENCE_ENCODERS
from shopseq.schema import ACTION_CODES, Action
from shopseq.training import torch_threads
from shopseq.users.baselines import ActionMarkov
from shopseq.users.sequence import (
    EventWindows,
    SequenceConfig,
    SequenceModel,
    event_windows,
    lognormal_nll,
)
from shopseq.users.tasks import TASKS, Examples

GRU = SEQUENCE_ENCODERS["gru"]
SMALL = SequenceConfig(hidden_size=16, max_len=6, batch_size=64, min_steps=250, dropout=0.0)


# --- the encoders' inputs hook -------------------------------------------------------------


def test_sasrec_inputs_hook_reproduces_the_item_embedding_path() -> None:
    torch.manual_seed(0)
    net = SASRecNet(30, SASRecConfig(max_len=8, hidden_size=16, dropout=0.0)).eval()
    items = torch.tensor([[0, 0, 3, 7, 2, 9, 1, 4], [0, 0, 0, 0, 0, 0, 5, 6]])
    plain = net(items)
    hooked = net(items, inputs=net.item_emb(items) * net.scale)
    assert torch.allclose(plain, hooked)
    other = net(items, inputs=torch.randn(2, 8, 16))
    assert not torch.allclose(plain, other)  # the given vectors are what the blocks read


def test_gru4rec_inputs_hook_reproduces_the_item_embedding_path() -> None:
    torch.manual_seed(0)
    for constrained in (True, False):
        config = GRU4RecConfig(layers=(12,), constrained_embedding=constrained, embedding=12)
        net = GRU4RecNet(30, config).eval()
        items = torch.tensor([[0, 0], [3, 0], [7, 5], [2, 6]])  # (T, B) time-major
        table = net.Wy.weight if net.E is None else net.E.weight
        plain = net.final_state(items)
        assert torch.allclose(plain, net.final_state(items, inputs=F.embedding(items, table)))
        assert not torch.allclose(plain, net.final_state(items, inputs=torch.randn(4, 2, 12)))


# --- the censored log-normal likelihood ----------------------------------------------------


def test_lognormal_likelihood_is_the_density_and_the_survival() -> None:
    mu = torch.tensor([9.0, 9.0, 11.0])
    log_sigma = torch.tensor([0.0, 0.5, -0.3])
    t = torch.tensor([5_000.0, 20_000.0, 50_000.0])
    for observed in (True, False):
        flags = torch.tensor([observed] * 3)
        got = [float(lognormal_nll(mu[i : i + 1], log_sigma[i : i + 1], t[i : i + 1],
                                   flags[i : i + 1])) for i in range(3)]  # fmt: skip
        dist = lognorm(s=np.exp(log_sigma.numpy()), scale=np.exp(mu.numpy()))
        want = -(dist.logpdf(t.numpy()) if observed else dist.logsf(t.numpy()))
        np.testing.assert_allclose(got, want, rtol=1e-4)


def _fit_constant(seconds: np.ndarray, observed: np.ndarray) -> tuple[float, float]:
    mu = torch.tensor(float(np.log(seconds).mean()), requires_grad=True)
    log_sigma = torch.tensor(0.0, requires_grad=True)
    t, flags = torch.from_numpy(seconds), torch.from_numpy(observed)
    optimiser = torch.optim.LBFGS([mu, log_sigma], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = lognormal_nll(mu.expand(len(t)), log_sigma.expand(len(t)), t, flags)
        loss.backward()
        return loss

    with torch_threads(1):
        optimiser.step(closure)
    return float(mu.detach()), float(log_sigma.detach().exp())


def test_censored_rows_pull_the_fit_past_the_horizon_as_they_should() -> None:
    rng = np.random.default_rng(0)
    true = rng.lognormal(mean=10.0, sigma=1.0, size=4000)
    horizon = float(np.exp(10.4))  # ~34 % of the delays come after it
    observed = true < horizon
    seconds = np.minimum(true, horizon)
    mu, sigma = _fit_constant(seconds, observed)
    assert abs(mu - 10.0) < 0.08 and abs(sigma - 1.0) < 0.08, (mu, sigma)
    # Treating censored rows as events at the horizon, or dropping them, biases the fit low.
    naive_mu, _ = _fit_constant(seconds, np.ones_like(observed))
    dropped_mu, _ = _fit_constant(seconds[observed], observed[observed])
    assert naive_mu < mu - 0.15 and dropped_mu < naive_mu, (mu, naive_mu, dropped_mu)


# --- planted signals on generated windows --------------------------------------------------


def _windows(
    actions: np.ndarray, gaps: np.ndarray, items: np.ndarray | None = None
) -> EventWindows:
    n, length = actions.shape
    item = np.full((n, length), None, object) if items is None else items
    category = np.full((n, length), None, object)
    return EventWindows(
        (actions + 1).astype(np.int64), item, category, np.log1p(gaps).astype(np.float32),
        np.zeros(n, np.float32),
    )  # fmt: skip


def _examples(windows: EventWindows, y: np.ndarray, observed: np.ndarray | None = None) -> Examples:
    n = len(y)
    keys = pa.table({"user_id": [f"u{i}" for i in range(n)]})
    last = (windows.action[:, -1] - 1).astype(np.float32)[:, None]  # what Markov reads
    flags = np.ones(n, bool) if observed is None else observed
    return Examples(keys, last, ("last_action",), y, flags).with_windows(windows)


@pytest.mark.parametrize("encoder", ["gru", "sasrec"])
def test_next_action_head_sees_a_second_order_signal_markov_cannot(encoder: str) -> None:
    rng = np.random.default_rng(1)
    view, cart, purchase = (ACTION_CODES[a] for a in (Action.VIEW, Action.CART, Action.PURCHASE))

    def make(n: int) -> Examples:
        actions = rng.choice([view, ACTION_CODES[Action.SEARCH], cart], size=(n, 6))
        # Planted: a purchase follows when the event *before* the last was a cart.
        y = np.where(actions[:, -2] == cart, purchase, view).astype(np.int64)
        return _examples(_windows(actions, np.full((n, 6), 60.0)), y)

    train, valid, test = make(2000), make(300), make(1000)
    config = SMALL.model_copy(update={"encoder": encoder})
    model = SequenceModel(TASKS["next-action"], config, SEQUENCE_ENCODERS[encoder])
    predicted = model.fit(train, valid).predict(test)
    assert predicted.shape == (len(test), 7)
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-5)
    markov = ActionMarkov().fit(train).predict(test)
    ours = macro_f1(test.y, predicted.argmax(axis=1))
    theirs = macro_f1(test.y, markov.argmax(axis=1))
    assert ours > 0.9 and ours > theirs + 0.3, (ours, theirs)


def _habits(rng: np.random.Generator, n: int, horizon: float) -> Examples:
    habit = rng.choice([600.0, 86_400.0], size=n)  # ten minutes or a day between events
    gaps = habit[:, None] * rng.lognormal(0.0, 0.3, size=(n, 6))
    delay = habit * rng.lognormal(0.0, 0.5, size=n)
    observed = delay < horizon
    actions = np.zeros((n, 6), np.int64)
    return _examples(_windows(actions, gaps), np.minimum(delay, horizon), observed)


def test_time_head_learns_habitual_gaps_a_constant_cannot() -> None:
    rng = np.random.default_rng(2)
    horizon = 2 * 86_400.0
    train, test = _habits(rng, 2000, horizon), _habits(rng, 1000, horizon)
    config = SMALL.model_copy(update={"horizon_seconds": horizon})
    predicted = SequenceModel(TASKS["next-time"], config, GRU).fit(train).predict(test)
    assert predicted.max() <= horizon
    ours = mean_absolute_error(test.y, predicted)
    constant = mean_absolute_error(test.y, np.full(len(test), np.median(train.y)))
    assert ours < 0.5 * constant, (ours, constant)


def test_censored_flags_change_the_time_head_fit() -> None:
    rng = np.random.default_rng(3)
    horizon = 86_400.0  # most daily returners are censored
    train = _habits(rng, 1500, horizon)
    assert 0.2 < 1 - train.observed.mean() < 0.6
    config = SMALL.model_copy(update={"horizon_seconds": 10 * horizon})  # no cap on the median
    as_censored = SequenceModel(TASKS["next-time"], config, GRU).fit(train).predict(train)
    all_observed = Examples(train.keys, train.features, train.feature_names, train.y,
                            np.ones(len(train), bool), train.windows)  # fmt: skip
    as_events = SequenceModel(TASKS["next-time"], config, GRU).fit(all_observed).predict(train)
    daily = train.windows is not None and train.windows.gap[:, -1] > np.log1p(3600)
    # A censored daily returner is known to come back after the horizon: its median goes past it.
    assert np.median(as_censored[daily]) > horizon > np.median(as_events[daily])


def test_binary_head_learns_a_path_signal_and_calibrates_on_validation() -> None:
    rng = np.random.default_rng(4)
    cart = ACTION_CODES[Action.CART]

    def make(n: int) -> Examples:
        actions = rng.choice([0, 1, cart], size=(n, 6), p=[0.6, 0.3, 0.1])
        dwell = rng.lognormal(4.0, 1.0, size=(n, 6))
        # Planted: long dwell on a carted item -> buys, whatever the last action.
        score = ((actions == cart) * (dwell > 60)).sum(axis=1)
        y = (rng.random(n) < 0.1 + 0.35 * np.minimum(score, 2)).astype(np.float64)
        return _examples(_windows(actions, dwell), y)

    train, valid, test = make(2000), make(1000), make(1000)
    model = SequenceModel(TASKS["session-intent"], SMALL, GRU).fit(train, valid)
    predicted = model.predict(test)
    assert model.calibration_ is not None and 0 <= predicted.min() <= predicted.max() <= 1
    assert roc_auc(test.y, predicted) > 0.7
    assert abs(predicted.mean() - test.y.mean()) < 0.05


def test_sequence_model_saves_loads_and_refuses_misuse(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    train = _habits(rng, 300, 86_400.0)
    config = SMALL.model_copy(update={"min_steps": 10, "encoder": "sasrec"})
    model = SequenceModel(TASKS["next-time"], config, SEQUENCE_ENCODERS["sasrec"]).fit(train)
    model.save(tmp_path / "m")
    again = SequenceModel.load(tmp_path / "m", SEQUENCE_ENCODERS["sasrec"])
    np.testing.assert_allclose(again.predict(train), model.predict(train), rtol=1e-6)
    with pytest.raises(Exception, match="windows"):
        model.predict(Examples(train.keys, train.features, train.feature_names, train.y,
                               train.observed))  # fmt: skip
    with pytest.raises(Exception, match="clv"):
        SequenceModel(TASKS["clv"])
    with pytest.raises(ConfigError, match="encoder"):
        SequenceModel(TASKS["next-time"], config).fit(train)


# --- windows read only events before the cut-off --------------------------------------------

T0 = datetime(2024, 1, 1)


def _log(rng: np.random.Generator, future_variant: int) -> pa.Table:
    rows = []
    for u in range(12):
        for e in range(30):
            ts = T0 + timedelta(hours=int(rng.integers(0, 240)), seconds=e)
            future = ts >= T0 + timedelta(days=5)
            if future and future_variant:
                ts = ts + timedelta(minutes=future_variant)  # move, relabel and re-item the future
            rows.append({
                "user_id": f"u{u}", "ts": ts, "session_id": f"u{u}-s{(ts - T0).days}",
                "item_id": f"future{future_variant}-{e}" if future else f"u{u}-e{e}",
                "action": list(Action)[(e + future_variant * future) % 4].value,
                "category_id": "c1", "source_file_id": 0, "source_row": u * 100 + e,
            })  # fmt: skip
    return pa.Table.from_pylist(rows)


def _user_windows(log: pa.Table, max_len: int) -> EventWindows:
    events = ibis.duckdb.connect().create_table("events", log)
    cutoffs = [T0 + timedelta(days=5)] * 12
    keys = pa.table({"user_id": [f"u{u}" for u in range(12)],
                     "cutoff": pa.array(cutoffs, pa.timestamp("us"))})  # fmt: skip
    return event_windows(events, keys, "user", max_len)


def test_user_windows_read_only_events_before_the_cutoff_and_ignore_the_future() -> None:
    log = _log(np.random.default_rng(6), 0)
    windows = _user_windows(log, 50)
    read = windows.item[windows.action > 0]
    assert len(read) and not any(str(v).startswith("future") for v in read)
    before = log.to_pandas()
    before = before[before.ts < T0 + timedelta(days=5)]
    counts = before.groupby("user_id").size().reindex([f"u{u}" for u in range(12)]).to_numpy()
    np.testing.assert_array_equal((windows.action > 0).sum(axis=1), counts)
    # Latest event last, in time order.
    last = before.sort_values(["ts", "source_row"]).groupby("user_id").item_id.last()
    assert list(windows.item[:, -1]) == [last[f"u{u}"] for u in range(12)]
    # Changing every event at or after the cut-off changes no window.
    other = _user_windows(_log(np.random.default_rng(6), 7), 50)
    for name in ("action", "item", "category", "gap", "elapsed"):
        np.testing.assert_array_equal(getattr(windows, name), getattr(other, name))
    short = _user_windows(log, 4)
    assert list(short.item[:, -1]) == list(windows.item[:, -1])
    assert (short.action > 0).sum(axis=1).max() == 4


def test_session_windows_read_the_first_k_events_of_the_session_only() -> None:
    log = _log(np.random.default_rng(8), 0)
    events = ibis.duckdb.connect().create_table("events", log)
    frame = log.to_pandas().sort_values(["ts", "source_row"])
    sessions = frame.groupby("session_id").filter(lambda g: len(g) >= 3)
    first = sessions.groupby("session_id").head(3)
    chosen = first.session_id.unique()[:5]
    keys = pa.table({
        "user_id": [first[first.session_id == s].user_id.iloc[0] for s in chosen],
        "session_id": list(chosen), "k": [2, 3, 1, 2, 3],
        "cutoff": pa.array([first[first.session_id == s].ts.iloc[k - 1]
                            for s, k in zip(chosen, [2, 3, 1, 2, 3], strict=True)],
                           pa.timestamp("us")),
    })  # fmt: skip
    windows = event_windows(events, keys, "session", 10)
    for row, (session, k) in enumerate(zip(chosen, [2, 3, 1, 2, 3], strict=True)):
        own = first[first.session_id == session]
        got = [v for v in windows.item[row] if v is not None]
        # The session's first k events last; before them only other sessions' earlier events.
        assert got[-k:] == list(own.item_id.iloc[:k])
        moment = own.ts.iloc[k - 1]
        earlier = frame[(frame.user_id == own.user_id.iloc[0]) & (frame.session_id != session)
                        & (frame.ts < moment)]  # fmt: skip
        assert got[:-k] == list(earlier.item_id.iloc[-(10 - k) :]) if len(earlier) else not got[:-k]


# --- the runs layer: same examples, same leaderboard, scoring with a sequence model ----------


@pytest.mark.slow
def test_predict_ranks_sequence_models_beside_lightgbm_and_scores_with_them(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from shopseq.ingest import BUILTIN_LAYOUTS, IngestConfig, ingest_files
    from shopseq.prepare import PrepareConfig, prepare_events
    from shopseq.runs.predict import (
        PredictConfig,
        _current_examples,
        _score_table,
        _sequence_configs,
        _with_windows,
        build_task_examples,
        predict_users,
    )
    from shopseq.sequences import LabelConfig, SnapshotConfig, event_time_range, plan_snapshots
    from shopseq.store import open_store
    from shopseq.synthetic import GeneratorConfig, generate_events, write_events
    from shopseq.users.train import train_task

    generated = GeneratorConfig(n_events=20_000, n_days=45, seed=4)
    write_events(generate_events(generated), tmp_path / "e.parquet", generated)
    store_path = tmp_path / "s.duckdb"
    with open_store(store_path, threads=1) as store:
        ingest_files([tmp_path / "e.parquet"], IngestConfig(layout=BUILTIN_LAYOUTS["shopseq"]),
                     store)  # fmt: skip
        prepare_events(store, PrepareConfig())
    span = timedelta(days=3)
    config = PredictConfig(
        task="next-time",
        labels=LabelConfig(next_event_horizon=span, purchase_horizon=span, churn_horizon=span,
                           spend_horizon=span),
        snapshots=SnapshotConfig(n_train=3, step=span),
        n_estimators=20,
        models=("lightgbm", "gru", "sasrec"),
        sequence=SequenceConfig(hidden_size=8, max_len=10, min_steps=20, n_epochs=1),
        out=tmp_path / "run",
    )  # fmt: skip
    result = predict_users(config, store_path)
    names = {row["model"] for row in result.leaderboard.rows}
    assert {"lightgbm", "gru", "sasrec", "median_gap"} <= names
    assert (tmp_path / "run" / "sequence" / "gru" / "weights.pt").is_file()
    saved = SequenceModel.load(
        tmp_path / "run" / "sequence" / "sasrec", SEQUENCE_ENCODERS["sasrec"]
    )
    assert saved.horizon_ == 3 * 86_400
    # Scoring owners now with a sequence model (as when it is chosen on validation).
    with open_store(store_path, read_only=True, threads=1) as store:
        events = store.table("events_prepared")
        plan = plan_snapshots(*event_time_range(events), config.labels, config.snapshots)
        train, valid, test = (_with_windows(events, e, config)
                              for e in build_task_examples(events, config, plan))  # fmt: skip
        trained = train_task(TASKS["next-time"], train, valid, test, config.labels,
                             sequence={n: SequenceModel(TASKS["next-time"], c, SEQUENCE_ENCODERS[n])
                                       for n, c in _sequence_configs(config).items()})  # fmt: skip
        trained = replace(trained, leaderboard=replace(trained.leaderboard, chosen="gru"))
        current = _current_examples(events, config, plan, trained, test)
        scored, score = _score_table(trained, current, config)
    assert current.windows is not None and len(current) == scored.num_rows > 0
    assert set(scored.column("model").to_pylist()) == {"gru"}
    assert np.all((score >= 0) & (score <= 3 * 86_400))
    assert "sequence model" in scored.column("reasons")[int(np.argmax(score))].as_py()
