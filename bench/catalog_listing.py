"""The checkpoint listing the sidebar runs on every rerun, with ten ~46 MB uploads.

Prints the header-only listing (first call, then cached by path, mtime and size) beside what
the listing used to cost, measured in the same run: reading every file whole.

python bench/catalog_listing.py [--n 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402,F401  (puts the repo on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="uploads to list")
    a = ap.parse_args()
    os.environ["EXPLORER_HOME"] = tempfile.mkdtemp(prefix="bench-catalog-")
    from explorer import catalog
    from explorer.checkpoint import build_metadata, checkpoint_bytes
    from explorer.training.train import make_model

    model = make_model("vae-mlp", {"latent_dim": 16, "hidden": [2800, 1400]}, 0)  # ~11.5M parameters
    data = checkpoint_bytes(model, build_metadata(model, dataset="mnist", split="s", seed=0, epochs=0))
    folder = catalog.uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(a.n):  # distinct bytes per file, as real uploads would be
        (folder / f"big-{i}.safetensors").write_bytes(data[:-4] + i.to_bytes(4, "little"))
    paths = sorted(folder.glob("*.safetensors"))

    def timed(fn, reps: int = 5) -> float:
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    before = timed(lambda: [p.read_bytes() for p in paths])  # what every listing did before
    catalog._scan_cache.clear()
    t0 = time.perf_counter()
    n = len(catalog.list_checkpoints())
    first = time.perf_counter() - t0
    cached = timed(catalog.list_checkpoints, reps=20)
    mb = sum(p.stat().st_size for p in paths) / 2**20
    print(f"{a.n} uploads of {len(data) / 2**20:.0f} MB ({n} checkpoints listed in all)")
    print(f"reading every file whole (the listing before):  {before * 1000:7.1f} ms, {mb:.0f} MB read")
    print(f"header-only listing, first call:               {first * 1000:7.1f} ms")
    print(
        f"header-only listing, cached (every rerun):     {cached * 1000:7.1f} ms   ({before / cached:,.0f}x less time)"
    )
    for p in paths:
        p.unlink()


if __name__ == "__main__":
    main()
