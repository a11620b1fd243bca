"""The load test's protocol client (bench/wire_client.py): a recorded browser session, replayed over the websocket."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.browser import ROOT, serve

BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def bench():
    """The bench modules, which import each other by name."""
    sys.path.insert(0, str(BENCH))
    try:
        import timed_streamlit
        import wire_client
        import wire_record

        yield wire_client, wire_record, timed_streamlit
    finally:
        sys.path.remove(str(BENCH))


def test_decoder_resolves_cached_messages(bench):
    """A ref_hash is shown as the message it refers to; one the client never cached is counted as a miss."""
    wire_client = bench[0]
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    full = ForwardMsg(hash="h1")
    full.metadata.cacheable = True
    full.metadata.delta_path[:] = [1, 0]
    full.delta.new_element.markdown.body = "Model z=16"
    dec = wire_client.Decoder()
    dec.feed(full.SerializeToString())
    assert list(dec.cache) == ["h1"]
    dec.view = wire_client.View()
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.delta_path[:] = [1, 0]
    dec.feed(ref.SerializeToString())
    assert dec.view.sidebar == ["Model z=16"] and dec.view.shows("sidebar:z=16") and not dec.view.shows("z=2")
    dec.feed(ForwardMsg(ref_hash="never-sent").SerializeToString())
    assert dec.misses == 1
    err = ForwardMsg()
    err.delta.new_element.exception.message = "boom"
    dec.feed(err.SerializeToString())
    assert dec.view.check(None) == ["exception delta: boom"]


@pytest.mark.browser
@pytest.mark.slow
def test_recorded_session_replays_in_two_protocol_sessions(bench, tmp_path):
    """Record one browser session, replay it in two websocket sessions at once: every action's run finishes at
    the client and in the server's log, with the deltas the browser got (a map click shows its reconstruction)."""
    wire_client, wire_record, timed_streamlit = bench
    log = tmp_path / "runs.jsonl"
    env = {"EXPLORER_HOME": str(tmp_path / "home"), "EXPLORER_RUN_LOG": str(log)}

    async def replay(url: str, script: dict) -> list[tuple[str, list]]:
        async def one() -> tuple[str, list]:
            s = wire_client.WireSession(url, timeout=60)
            await s.open("traverse", script["static"])
            try:
                outcomes = [await s.replay(a) for a in script["user"]]
                return s.dec.session, outcomes
            finally:
                await s.close()

        return await asyncio.gather(one(), one())

    with serve(env=env, launcher=[sys.executable, str(BENCH / "timed_streamlit.py")]) as url:
        script = asyncio.run(wire_record.record(url, rounds=1, train=False))
        sessions = asyncio.run(replay(url, script))
    names = [a["name"] for a in script["user"]]
    assert "click map point" in names and all(a["frames"] for a in script["user"])
    runs = timed_streamlit.read_runs(str(log))
    assert len({sid for sid, _ in sessions}) == 2
    for sid, outcomes in sessions:
        assert len(outcomes) == len(names)
        for action, out in zip(script["user"], outcomes):
            assert out.errors == [], (action["name"], out.errors)
            assert not out.view.exceptions
            logged = [r for r in runs[sid] if out.t0 <= r[0] and r[1] <= out.t1]
            assert logged, f"no run in the server's log for {action['name']}"
            if action["name"].startswith(("drag slider", "mouse drag", "click map")):
                assert out.view.kinds == set(action["kinds"]), action["name"]
        click = outcomes[names.index("click map point")]
        assert {"imgs", "plotly_chart"} <= click.view.kinds and "reconstruction" in click.view.texts
        assert click.fetched > 0  # the clicked point's images were fetched from /media/
