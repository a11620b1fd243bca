"""``streamlit`` with a clock inside the server: run it as ``python bench/timed_streamlit.py run app.py ...``.

For every script run it appends one JSON line to ``$EXPLORER_RUN_LOG``: the session id, the
``time.monotonic()`` at which the server read the ``rerun_script`` message, and the one at which it
queued the ``script_finished`` message that ended the run (reruns that a newer message cut short
are folded into the run that finishes), and whether only fragments' auto-reruns asked for it. Both clocks are the server's own, so a starved browser
does not inflate them; the load test matches the lines to its actions by session id and time.
Used by the benchmarks only: the app itself is never patched.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def install(path: str) -> None:
    """Patch ``AppSession`` so that each finished script run is logged to ``path``."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.app_session import AppSession

    done = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
    pending: dict[str, float] = {}  # session id -> when its oldest unanswered rerun arrived
    auto: dict[str, bool] = {}  # session id -> whether every rerun folded into its pending run was an auto-rerun
    lock = threading.Lock()
    log = open(path, "a", buffering=1)  # noqa: SIM115 - open for the server's lifetime, line-buffered
    handle, enqueue = AppSession.handle_backmsg, AppSession._enqueue_forward_msg

    def handle_backmsg(self: AppSession, msg) -> None:  # noqa: ANN001
        if msg.WhichOneof("type") == "rerun_script":
            with lock:
                pending.setdefault(self.id, time.monotonic())
                auto[self.id] = auto.get(self.id, True) and msg.rerun_script.is_auto_rerun
        handle(self, msg)

    def enqueue_forward_msg(self: AppSession, msg: ForwardMsg) -> None:
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in done:
            with lock:
                sent, was_auto = pending.pop(self.id, None), auto.pop(self.id, False)
                if sent is not None:
                    run = {"session": self.id, "sent": sent, "done": time.monotonic(), "auto": was_auto}
                    log.write(json.dumps(run) + "\n")
        enqueue(self, msg)

    AppSession.handle_backmsg = handle_backmsg
    AppSession._enqueue_forward_msg = enqueue_forward_msg


def read_runs(path: str, auto: bool = False) -> dict[str, list[tuple[float, float]]]:
    """The logged runs, per session: (sent, done) in the server's monotonic clock; with ``auto``, also the
    runs that only fragments' auto-reruns asked for (a page polling a job), left out by default."""
    runs: dict[str, list[tuple[float, float]]] = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line) if line.strip() else None
            if r and (auto or not r.get("auto")):
                runs.setdefault(r["session"], []).append((r["sent"], r["done"]))
    return runs


if __name__ == "__main__":
    install(os.environ["EXPLORER_RUN_LOG"])
    from streamlit.web.cli import main

    sys.argv[0] = "streamlit"
    sys.exit(main())
