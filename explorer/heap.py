"""Short garbage collections in a long-lived server process.

Python's full (generation-2) collection walks every tracked object. In the app's server, with torch,
plotly, pandas and streamlit imported, that is millions of objects and 100-230 ms with the GIL held:
every session's slider, click and page load that overlaps one waits for it (``bench/load_test.py``
saw them as the p95 tail). Nearly all of those objects are modules, classes and functions that live
as long as the process, so once imports settle they are frozen (``gc.freeze``): collections then walk
only what scripts create since. Objects frozen still die by reference counting; only a reference
cycle among them would outlive its use, and imported modules are not garbage.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_at_freeze = 0


def freeze_long_lived(min_new_modules: int = 10) -> bool:
    """Freeze the heap if at least ``min_new_modules`` modules were imported since the last freeze.

    Call it after each script run: it costs a length check, except after the runs that imported
    something (a page's first visit), where a young-generation collection first drops those runs'
    fresh garbage (a few ms, not a full collection). Returns whether it froze.
    """
    global _modules_at_freeze
    if len(sys.modules) - _modules_at_freeze < min_new_modules:
        return False
    with _lock:
        if len(sys.modules) - _modules_at_freeze < min_new_modules:
            return False
        gc.collect(1)
        gc.freeze()
        _modules_at_freeze = len(sys.modules)
        return True
