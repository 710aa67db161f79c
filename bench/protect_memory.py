"""Peak memory of ``fuselib protect`` against the number of photos it protects (it protects one
image at a time, so the peak must not grow with the count).

Writes ``--counts`` folders of 1024×768 photo-like JPEGs (10 classes; gradients and mild noise,
quality 90) into a scratch folder, then protects each one in its own fresh process with the
same FUSE protection file (``--checkpoint``; by default a seeded, untrained 10-class pattern at
64 px: memory does not depend on what the pattern learned), and reports each run's peak RSS
(VmHWM, the whole process, imports included), its growth over the RSS after a two-photo warm-up
in the same process, seconds and photos per second, with ratios to the first count:

    python bench/protect_memory.py --counts 300 3000        # the shipped log's measurement
    python bench/protect_memory.py --counts 20 60           # a quick check

With ``--large WxH ...`` it measures instead the peak of protecting one large photo (a
JPEG of W×H, quality 90, beside a small photo of another class), each size in its own fresh
process: the whole process's peak RSS and its growth over the RSS after the warm-up:

    python bench/protect_memory.py --large 6000x4000 8000x6000   # 24 MP and 48 MP

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
DEFAULT_OUT = str(REPO / "results" / "bench_protect_memory.txt")
DEFAULT_LARGE_OUT = str(REPO / "results" / "bench_protect_large.txt")

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


LARGE_CHILD = """
import sys
sys.path.insert(0, {repo!r})
from fuselib.protect import protect_folder
from fuselib.utils import status_mb as status

warm, src, out, ckpt = sys.argv[1:]
protect_folder(warm, out + "_warm", checkpoint=ckpt)
warm_rss = status("VmRSS")
s = protect_folder(src, out, checkpoint=ckpt)
assert s["written"] == 2, s
print(status("VmHWM"), status("VmHWM") - warm_rss)
"""


def large_photo(path: Path, h: int, w: int, band: int = 500) -> Path:
    """A photo-like JPEG of ``h×w`` made in bands of rows (the bench itself stays small)."""
    from PIL import Image

    arr = np.empty((h, w, 3), dtype=np.uint8)
    for k, top in enumerate(range(0, h, band)):
        arr[top:top + band] = photo(min(band, h - top), w, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)
    return path


def large(args, scratch: Path, ckpt: Path, env: dict) -> str:
    """The peak RSS of protecting one photo of each ``--large`` size (module docstring)."""
    warm = photos(scratch / "warm", 2)
    lines = [f"# python bench/protect_memory.py --large {' '.join(args.large)}",
             f"# one W×H JPEG (quality 90) + one 1024x768 photo of another class; each size a "
             f"fresh process; threads={os.environ.get('OMP_NUM_THREADS', 'default')}; "
             f"{time.strftime('%Y-%m-%d')}",
             "photo | megapixels | peak RSS (MB) | growth after warm-up (MB)"]
    for size in args.large:
        w, h = map(int, size.lower().split("x"))
        src = scratch / f"large{size}"
        large_photo(src / "class0" / "big.jpg", h, w)
        photos(src / "tmp", 1)
        (src / "tmp" / "class0" / "00000.jpg").rename(src / "class1.jpg")
        (src / "class1").mkdir()
        (src / "class1.jpg").rename(src / "class1" / "small.jpg")
        shutil.rmtree(src / "tmp")
        done = subprocess.run([sys.executable, "-c", LARGE_CHILD.format(repo=str(REPO)),
                               str(warm), str(src), str(scratch / f"out{size}"), str(ckpt)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"protect on {size} failed: {done.stderr.strip().splitlines()[-1]}")
        peak, growth = map(float, done.stdout.split()[-2:])
        lines.append(f"{w}x{h} | {w * h / 1e6:.0f} | {peak:.0f} | {growth:.0f}")
        print(lines[-1], flush=True)
        shutil.rmtree(src)
        shutil.rmtree(scratch / f"out{size}")
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--large", nargs="+", default=None, metavar="WxH",
                    help="measure one large photo of each size instead (e.g. 6000x4000)")
    ap.add_argument("--checkpoint", help="a FUSE protection file (default: a seeded 64 px one)")
    ap.add_argument("--scratch", help="where the photos and outputs go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="where the report is written")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        sys.exit("bench/protect_memory.py: needs Linux /proc to read the peak RSS")
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="protect_memory_"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FUSELIB_PROGRESS="0")
    try:
        ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint(scratch / "fuse.pt")
        if args.large:
            text = large(args, scratch, ckpt, env)
            print(text)
            out = Path(args.out if args.out != DEFAULT_OUT else DEFAULT_LARGE_OUT)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(out)
            return 0
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
