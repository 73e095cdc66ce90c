"""The job store: content-addressed keys, states, resume, JSON-only storage."""
import json
import math
import sqlite3

import pytest

import nas_eval
from nas_eval.jobs import Job, run_job
from nas_eval.store import StoreBusy, Storage


def selftest_jobs(n, **extra):
    return [Job("selftest", {"seed": s, "n": 3, **extra}) for s in range(n)]


def test_key_is_content_addressed(monkeypatch):
    a = Job("retrain", {"space": "darts", "arch": "x1", "seed": 0, "config": {"lr": 20.0}})
    # same content spelled differently: key order, tuple vs list
    b = Job("retrain", {"config": {"lr": 20.0}, "seed": 0, "arch": "x1", "space": "darts"})
    assert a.key == b.key and a == b and len({a, b}) == 1
    assert Job("t", {"v": (1, 2)}).key == Job("t", {"v": [1, 2]}).key
    assert Job("retrain", {**a.params, "seed": 1}).key != a.key
    assert Job("search", a.params).key != a.key
    assert Job("retrain", {**a.params, "config": {"lr": 10.0}}).key != a.key
    old = a.key
    monkeypatch.setattr(nas_eval, "__version__", "999.0")
    assert a.key != old  # a new release never reuses an old result
    with pytest.raises(ValueError):
        Job("t", {"x": math.nan})  # NaN has no canonical spelling


def test_add_is_idempotent(tmp_path):
    st = Storage(tmp_path)
    keys = st.add(selftest_jobs(3))
    st.mark_running(keys[0])
    st.mark_done(keys[0], run_job("selftest", st.get(keys[0])["params"]))
    assert st.add(selftest_jobs(4)) == keys + [selftest_jobs(4)[3].key]
    assert len(st) == 4
    assert st.get(keys[0])["state"] == "done"  # re-adding did not reset a done job
    assert st.state_counts() == {"pending": 3, "running": 0, "done": 1, "failed": 0,
                                 "stale": 0}


def test_state_transitions_and_resume(tmp_path):
    st = Storage(tmp_path / "study.db")
    k0, k1, k2 = st.add(selftest_jobs(3))
    st.mark_running(k0)
    rec = st.get(k0)
    assert rec["state"] == "running" and rec["owner"] == st.owner and rec["attempts"] == 1
    payload = run_job("selftest", rec["params"])
    st.mark_done(k0, payload)
    st.mark_running(k1)
    st.mark_failed(k1, "Traceback ...\nValueError: boom")
    st.close()

    st2 = Storage(tmp_path / "study.db")  # reopen: a new driver
    done = st2.get(k0)
    assert done["state"] == "done" and done["result"] == payload["result"]
    assert done["provenance"]["nas_eval"] == nas_eval.__version__
    assert done["wall_time"] == pytest.approx(payload["wall_time"])
    assert [r["key"] for r in st2.pending()] == [k2]  # done and failed are not rerun
    assert st2.get(k1)["error"].endswith("ValueError: boom")
    assert [r["key"] for r in st2.pending(retry_failed=True)] == [k1, k2]
    assert st2.events("failed")["key"].tolist() == [k1]
    with pytest.raises(KeyError):
        st2.get("nope")


def test_stale_reset_only_for_other_owners(tmp_path):
    st = Storage(tmp_path)
    k0, k1 = st.add(selftest_jobs(2))
    st.mark_running(k0, owner="deadhost:1:abc")  # left by a driver that died
    st.mark_running(k1)                            # ours
    with st.driver():
        assert st.get(k0)["state"] == "stale"
        assert st.get(k1)["state"] == "running"
    assert [r["key"] for r in st.pending()] == [k0]
    assert st.events("stale")["key"].tolist() == [k0]


def test_only_one_live_driver(tmp_path):
    a, b = Storage(tmp_path), Storage(tmp_path)
    with a.driver():
        with pytest.raises(StoreBusy):
            b.acquire_driver()
    with b.driver():  # released when the first driver is done
        pass


def test_results_dataframe(tmp_path):
    st = Storage(tmp_path)
    keys = st.add(selftest_jobs(3, config={"lr": 1.0}) + [Job("other", {"seed": 9})])
    for k in keys[:2]:
        st.mark_running(k)
        st.mark_done(k, run_job("selftest", st.get(k)["params"]))
    df = st.results()
    assert len(df) == 4
    assert {"key", "kind", "state", "params.seed", "params.n", "params.config.lr",
            "wall_time", "attempts", "error", "finished", "result", "provenance"} \
        <= set(df.columns)
    assert df["state"].tolist() == ["done", "done", "pending", "pending"]
    assert df.loc[0, "result"]["seed"] == 0
    assert len(st.results("selftest")) == 3

    tab = st.results_table("selftest", ["mean", "curve.loss", "missing"])
    cols = list(tab.columns)
    assert cols[0] == "key" and cols[-4:] == ["wall_time", "mean", "curve.loss", "missing"]
    assert set(cols[1:-4]) == {"params.seed", "params.n", "params.config.lr"}
    assert len(tab) == 2 and tab["curve.loss"][0] == [2.0, 1.0]
    assert tab["missing"].isna().all()
    full = st.results_table("selftest")
    assert "values" in full.columns and "curve.epoch" in full.columns
    assert math.isinf(full["diverged_ppl"][0])  # non-finite results round-trip


def test_store_is_json_and_wal(tmp_path):
    st = Storage(tmp_path)
    (k,) = st.add(selftest_jobs(1))
    st.mark_running(k)
    st.mark_done(k, run_job("selftest", {"seed": 0, "n": 3}))
    st.set_meta("config", {"preset": "tiny", "epochs": 2})
    assert st.get_meta("config") == {"preset": "tiny", "epochs": 2}
    assert st.get_meta("absent", 7) == 7
    st.close()

    raw = sqlite3.connect(tmp_path / "study.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    params, result, prov = raw.execute(
        "SELECT params, result, provenance FROM jobs WHERE key=?", (k,)).fetchone()
    for text in (params, result, prov):  # plain JSON text, not a pickle blob
        assert isinstance(text, str)
        json.loads(text)
    assert json.loads(result)["seed"] == 0
    assert json.loads(raw.execute("SELECT value FROM meta").fetchone()[0])["epochs"] == 2
    types = {t for (t,) in raw.execute(
        "SELECT DISTINCT typeof(result) FROM jobs UNION SELECT typeof(value) FROM meta")}
    assert "blob" not in types


def test_path_is_file_or_directory(tmp_path):
    assert Storage(tmp_path / "a.sqlite").path == str(tmp_path / "a.sqlite")
    assert Storage(tmp_path / "run.v2").path == str(tmp_path / "run.v2" / "study.db")
