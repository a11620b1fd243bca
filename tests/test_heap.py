"""The server freezes its long-lived heap once imports settle, so full collections stay short."""

import gc
import sys
import types
import weakref

import pytest

from explorer import heap


@pytest.fixture
def fresh_heap(monkeypatch):
    monkeypatch.setattr(heap, "_modules_at_freeze", len(sys.modules))
    yield
    gc.unfreeze()


def test_freezes_only_after_new_imports(fresh_heap, monkeypatch):
    assert not heap.freeze_long_lived(min_new_modules=3)  # nothing imported since
    before = gc.get_freeze_count()
    for i in range(3):
        monkeypatch.setitem(sys.modules, f"_heap_test_mod{i}", types.ModuleType(f"_heap_test_mod{i}"))
    assert heap.freeze_long_lived(min_new_modules=3)
    assert gc.get_freeze_count() > before
    assert not heap.freeze_long_lived(min_new_modules=3)  # the same modules do not count twice


def test_frozen_objects_leave_full_collections_and_still_die_by_refcount(fresh_heap, monkeypatch):
    class Leaf:
        pass

    keep = [Leaf() for _ in range(1000)]
    monkeypatch.setitem(sys.modules, "_heap_test_new", types.ModuleType("_heap_test_new"))
    assert heap.freeze_long_lived(min_new_modules=1)
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(o) in tracked for o in keep)  # frozen: no generation walks them
    probe = weakref.ref(keep[0])
    keep.clear()
    assert probe() is None  # reference counting still frees a frozen object
