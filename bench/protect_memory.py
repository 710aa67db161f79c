"""Peak memory of ``fuselib protect`` against the number of photos it protects (issue 25: one
image at a time, so the peak must not grow with the count).

Writes ``--counts`` folders of 1024×768 photo-like JPEGs (10 classes; gradients and mild noise,
quality 90) into a scratch folder, then protects each one in its own fresh process with the
same FUSE protection file (``--checkpoint``; by default a seeded, untrained 10-class pattern at
64 px: memory does not depend on what the pattern learned), and reports each run's peak RSS
(VmHWM, the whole process, imports included), its growth over the RSS after a two-photo warm-up
in the same process, seconds and photos per second, with ratios to the first count:

    python bench/protect_memory.py --counts 300 3000        # the issue's measurement
    python bench/protect_memory.py --counts 20 60           # a quick check

The scratch folder (default: a temporary one) is removed at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from fuselib.protect import protect_folder
from fuselib.utils import status_mb as status

warm, src, out, ckpt, n = sys.argv[1:]
protect_folder(warm, out + "_warm", checkpoint=ckpt)   # every lazy import and first-call cost
warm_rss = status("VmRSS")
t0 = time.perf_counter()
s = protect_folder(src, out, checkpoint=ckpt)
seconds = time.perf_counter() - t0
assert s["written"] == int(n), s
print(status("VmHWM"), status("VmHWM") - warm_rss, seconds)
"""


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 60 + 60 * (xx / w) + 40 * np.sin(yy / 17.0 + seed)
    arr = base[..., None] + np.array([0, 25, 50]) + rng.normal(0, 4, (h, w, 3))
    return np.clip(arr, 20, 235).astype(np.uint8)


def photos(root: Path, n: int, h: int = 768, w: int = 1024) -> Path:
    from PIL import Image

    for i in range(n):
        target = root / f"class{i % 10}" / f"{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(h, w, i)).save(target, quality=90)
    return root


def default_checkpoint(path: Path, size: int = 64) -> Path:
    import torch

    sys.path.insert(0, str(REPO))
    from fuselib import protections
    from fuselib.protections.generators import Generator

    p = protections.get("fuse")
    torch.manual_seed(0)
    g = Generator(p.eps).eval()
    noise = torch.rand((10, 3, size, size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        p.deltas = g(noise).clamp(-p.eps, p.eps)
    p.generator, p.noise, p.fitted = g.state_dict(), noise, True
    return p.save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[300, 3000],
                    help="how many 1024x768 photos each run protects (the first is the reference)")
    ap.add_argument("--checkpoint", help="a FUSE protection file (default: a seeded 64 px one)")
    ap.add_argument("--scratch", help="where the photos and outputs go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", default=str(REPO / "results" / "bench_protect_memory.txt"),
                    help="where the report is written")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        sys.exit("bench/protect_memory.py: needs Linux /proc to read the peak RSS")
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="protect_memory_"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FUSELIB_PROGRESS="0")
    try:
        ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint(scratch / "fuse.pt")
        warm = photos(scratch / "warm", 2)
        rows = []
        for n in args.counts:
            t0 = time.perf_counter()
            src = photos(scratch / f"in{n}", n)
            made = time.perf_counter() - t0
            done = subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO)), str(warm),
                                   str(src), str(scratch / f"out{n}"), str(ckpt), str(n)],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                sys.exit(f"protect on {n} photos failed: {done.stderr.strip().splitlines()[-1]}")
            peak, growth, seconds = map(float, done.stdout.split()[-3:])
            rows.append((n, peak, growth, seconds))
            print(f"{n} photos: peak RSS {peak:.0f} MB, growth after warm-up {growth:.1f} MB, "
                  f"{seconds:.0f} s ({n / seconds:.1f} photos/s; writing them took {made:.0f} s)",
                  flush=True)
            shutil.rmtree(scratch / f"in{n}")
            shutil.rmtree(scratch / f"out{n}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    n0, p0, g0, s0 = rows[0]
    lines = [f"# python bench/protect_memory.py --counts {' '.join(map(str, args.counts))}",
             f"# 1024x768 JPEG photos, 10 classes; each run a fresh process; threads="
             f"{os.environ.get('OMP_NUM_THREADS', 'default')}; {time.strftime('%Y-%m-%d')}",
             "photos | peak RSS (MB) | growth after warm-up (MB) | seconds | photos/s | "
             "peak ratio | time ratio"]
    for n, peak, growth, seconds in rows:
        lines.append(f"{n} | {peak:.0f} | {growth:.1f} | {seconds:.0f} | {n / seconds:.1f} | "
                     f"{peak / p0:.3f} | {seconds / s0:.2f}")
    text = "\n".join(lines) + "\n"
    print(text)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
