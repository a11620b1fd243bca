"""``streamlit`` with a clock inside the server: run it as ``python bench/timed_streamlit.py run app.py ...``.

For every script run it appends one JSON line to ``$EXPLORER_RUN_LOG``: the session id, the
``time.monotonic()`` at which the server read the ``rerun_script`` message, and the one at which it
queued the ``script_finished`` message that ended the run (reruns that a newer message cut short
are folded into the run that finishes). Both clocks are the server's own, so a starved browser
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
    lock = threading.Lock()
    log = open(path, "a", buffering=1)  # noqa: SIM115 - open for the server's lifetime, line-buffered
    handle, enqueue = AppSession.handle_backmsg, AppSession._enqueue_forward_msg

    def handle_backmsg(self: AppSession, msg) -> None:  # noqa: ANN001
        if msg.WhichOneof("type") == "rerun_script":
            with lock:
                pending.setdefault(self.id, time.monotonic())
        handle(self, msg)

    def enqueue_forward_msg(self: AppSession, msg: ForwardMsg) -> None:
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in done:
            with lock:
                sent = pending.pop(self.id, None)
                if sent is not None:
                    log.write(json.dumps({"session": self.id, "sent": sent, "done": time.monotonic()}) + "\n")
        enqueue(self, msg)

    AppSession.handle_backmsg = handle_backmsg
    AppSession._enqueue_forward_msg = enqueue_forward_msg


def read_runs(path: str) -> dict[str, list[tuple[float, float]]]:
    """The logged runs, per session: (sent, done) in the server's monotonic clock."""
    runs: dict[str, list[tuple[float, float]]] = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs.setdefault(r["session"], []).append((r["sent"], r["done"]))
    return runs


if __name__ == "__main__":
    install(os.environ["EXPLORER_RUN_LOG"])
    from streamlit.web.cli import main

    sys.argv[0] = "streamlit"
    sys.exit(main())
