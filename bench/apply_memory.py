"""Peak memory of ``Protection.apply`` on a whole training set: rounding to uint8 all at once
(the reference, ``CHUNK`` = the set's size) against :data:`fuselib.protections.base.CHUNK`
images at a time, as ratios in the same command.

Each variant runs in its own process (its peak resident memory is its own): load the set, fit
the protection (a cheap one by default: class-wise random noise; the budget step does not
depend on the method), then ``apply`` once, and report the peak RSS before and after the call,
the seconds, and a checksum of the protected images (the same for every variant, or the
variants would not be the same computation):

    python bench/apply_memory.py                         # Imagenette's training set, 128 px
    python bench/apply_memory.py --dataset cifar10       # 50,000 images, 32 px
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
import torch
torch.set_num_threads(1)
from fuselib import data, protections
from fuselib.protections import base
x, y = data.load({dataset!r}, "train")
if {chunk!r} is not None:
    base.CHUNK = {chunk!r} or len(x)
prot = protections.get({spec!r}).fit(x, y)
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before, t = peak(), time.perf_counter()
out = prot.apply(x, y)
print(json.dumps({{"seconds": time.perf_counter() - t, "before_mb": before, "peak_mb": peak(),
                   "chunk": base.CHUNK, "images": len(x), "checksum": int(out.sum())}}))
"""


def measure(dataset: str, spec: str, chunk) -> dict:
    code = CHILD.format(repo=str(REPO), dataset=dataset, spec=spec, chunk=chunk)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode:
        sys.exit(res.stderr.strip().splitlines()[-1])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="imagenette", help="a local dataset name")
    ap.add_argument("--spec", default="random", help="the protection (default: random)")
    args = ap.parse_args(argv)
    rows = [("all at once", measure(args.dataset, args.spec, 0)),
            ("in chunks", measure(args.dataset, args.spec, None))]
    ref = rows[0][1]
    print(f"apply() of {args.spec} on {args.dataset}'s {ref['images']:,} training images "
          f"(peak RSS of the process, MB; growth = peak after apply - peak before)")
    print(f"{'variant':<12} {'chunk':>6} {'peak':>8} {'growth':>8} {'ratio':>6} {'seconds':>8} "
          f"{'ratio':>6}  checksum")
    for name, r in rows:
        grow, ref_grow = r["peak_mb"] - r["before_mb"], ref["peak_mb"] - ref["before_mb"]
        print(f"{name:<12} {r['chunk']:>6} {r['peak_mb']:>8.0f} {grow:>8.0f} "
              f"{grow / ref_grow:>6.2f} {r['seconds']:>8.1f} {r['seconds'] / ref['seconds']:>6.2f}"
              f"  {r['checksum']}")
    if len({r["checksum"] for _, r in rows}) != 1:
        sys.exit("the variants protected the images differently")


if __name__ == "__main__":
    main()
