"""What a protection's fit costs: wall time and peak memory, as ratios against a reference fit
in the same command.

Each fit runs in its own process (so its peak resident memory is its own) on the training
subset of a scale, seed 0, exactly as the experiment runner fits it (no cache is read or
written). The first spec is the reference:

    python bench/fits.py fuse fuse:fast=True --scale cpu            # FUSE's fit, fp32 vs bf16
    python bench/fits.py fuse fuse:rsm_lowpass=0.5 --scale cpu      # with low-pass rehearsal
    python bench/fits.py fuse fuse:fast=True --scale smoke          # a quick check

Prints one row per spec: seconds, peak RSS (MB), and both as ratios to the first.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from fuselib import data
from fuselib.experiments import build_config
config, prot, _ = build_config({spec!r}, scale={scale!r}, seed=0)
x, y = data.load("cifar10", "train")
x, y = data.subset(x, y, config["n_train"], 0)
t = time.perf_counter()
prot.fit(x, y)
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "cost": getattr(prot, "cost", "")}}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="+", help="protection specs; the first is the reference")
    ap.add_argument("--scale", default="smoke")
    ap.add_argument("--json", default=None, help="also write the rows here")
    a = ap.parse_args(argv)
    rows = []
    for spec in a.specs:
        res = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO), spec=spec,
                                                                 scale=a.scale)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"fits: {spec} failed: {res.stderr.strip().splitlines()[-1]}")
        rows.append({"spec": spec, **json.loads(res.stdout.strip().splitlines()[-1])})
        print(f"{spec}: {rows[-1]['seconds']:.1f} s, peak RSS {rows[-1]['peak_rss_mb']:.0f} MB",
              flush=True)
    ref = rows[0]
    print(f"\nscale {a.scale}, seed 0; ratios against {ref['spec']}")
    print("| spec | seconds | peak RSS MB | time ratio | memory ratio |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['spec']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['seconds'] / ref['seconds']:.2f} | {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
