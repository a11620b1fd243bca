"""Run every benchmark and print one table, each figure beside its reference from the same run.

python bench/run.py            # all but the 70k projections (a few minutes)
python bench/run.py --full     # adds 70k-point maps and sklearn on 70k (much longer)
python bench/run.py --skip load,projection
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".cache", "numba")
)

import _common  # noqa: E402,F401  (puts the repo on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="include 70k-point maps")
    ap.add_argument(
        "--skip", default="", help="comma-separated: slider,drag,click,projection,train,decode,caption,cold,load"
    )
    ap.add_argument("--sessions", type=int, default=8, help="load test: concurrent sessions")
    ap.add_argument("--think", type=float, default=1.0, help="load test: mean pause between a session's actions (s)")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    import torch

    from explorer.device import pick_device

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"torch {torch.__version__}, device {pick_device()}\n"
    )
    rows: list[tuple[str, str, str, str]] = []
    notes: list[str] = []

    def slider() -> None:
        import slider_latency

        r = slider_latency.run(40)
        t, f = r["traverse"], r["floor"]
        rows.append(
            (
                "slider -> image median (/traverse)",
                f"{t['median_ms']:.0f} ms",
                f"{f['median_ms']:.0f} ms (empty app)",
                f"{r['ratio_median']:.2f}x",
            )
        )
        rows.append(
            (
                "slider -> image p95 (/traverse)",
                f"{t['p95_ms']:.0f} ms",
                f"{f['p95_ms']:.0f} ms (empty app)",
                f"{t['p95_ms'] / f['p95_ms']:.2f}x",
            )
        )
        for what, fn in (
            ("a 10k t-SNE runs", slider_latency.measure_during_tsne),
            ("a training job runs", slider_latency.measure_during_train),
        ):
            b = fn(30)
            for stat in ("median", "p95"):
                rows.append(
                    (
                        f"slider {stat} while {what}",
                        f"{b['busy'][stat + '_ms']:.0f} ms",
                        f"{b['idle'][stat + '_ms']:.0f} ms idle",
                        f"{b['ratio_' + stat]:.2f}x",
                    )
                )

    def drag() -> None:
        import drag_bench

        rows.extend(drag_bench.rows(drag_bench.run()))

    def click() -> None:
        import click_latency

        r = click_latency.run(15)
        rows.append(
            (
                "click map point -> image + reconstruction",
                f"median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms",
                "-",
                "-",
            )
        )

    def projection() -> None:
        import projection_bench

        sizes = ["10k", "70k"] if a.full else ["10k"]
        rows.extend(projection_bench.run(sizes, ["pca", "tsne", "umap"], sizes))
        rows.extend(projection_bench.run_warm())  # UMAP jobs on the app's warmed-up Dask workers

    def train() -> None:
        import train_bench

        rows.extend(train_bench.run(3))

    def caption() -> None:
        import caption_bench

        rows.extend(caption_bench.run())

    def decode() -> None:
        import decode_bench

        rows.extend(decode_bench.run())

    def cold() -> None:
        import cold_start

        r = cold_start.run()
        rows.append(
            ("cold start: server up / first latent map", f"{r['server_s']:.1f} s / {r['first_map_s']:.1f} s", "-", "-")
        )

    def load() -> None:
        import load_test

        load_rows, load_notes = load_test.run(a.sessions, 12, think=a.think)
        rows.extend(load_rows)
        notes.extend(load_notes[:13])

    for name, fn in (
        ("slider", slider),
        ("drag", drag),
        ("click", click),
        ("projection", projection),
        ("train", train),
        ("decode", decode),
        ("caption", caption),
        ("cold", cold),
        ("load", load),
    ):
        if name in skip:
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not lose the others
            rows.append((f"{name}: FAILED", f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}", "-", "-"))
        print(f"[{name} done]", file=sys.stderr, flush=True)
    print()
    _common.print_table(rows)
    for n in notes:
        print("load test:", n)


if __name__ == "__main__":
    main()
