"""A launcher for the benchmarks: ``python bench/replica_server.py --replicas N run app.py --server.port P ...``.

It takes the arguments ``tests.browser.serve`` gives ``streamlit run`` and serves the app as
``explorer serve --replicas N`` does (``explorer/replicas.py``: N servers behind the sticky proxy on
port P, one shared Dask cluster), each replica run by ``bench/timed_streamlit.py``, so the load test's
server clock covers every replica (they append to one ``$EXPLORER_RUN_LOG``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer import replicas

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, required=True)
    ap.add_argument("command", choices=["run"])
    ap.add_argument("app", type=Path)
    ap.add_argument("--server.port", dest="port", type=int, required=True)
    ap.add_argument("--server.address", dest="address", default="127.0.0.1")
    a, _ = ap.parse_known_args()  # the other --server.* flags are the replicas' defaults already
    timed = [sys.executable, str(Path(__file__).with_name("timed_streamlit.py"))]
    sys.exit(replicas.serve(a.app.resolve(), a.replicas, a.port, a.address, launcher=timed))
