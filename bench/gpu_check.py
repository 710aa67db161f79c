"""One-call check of fuselib on a CUDA machine: does every piece run on the GPU, and how fast.

    python bench/gpu_check.py [--out DIR] [--budget SECONDS] [--partial-train]
                              [--steps NAME[:SECONDS] ...] [--tests PYTEST_ARGS ...]

Steps, in order of value, each in its own process under the time left (a step cut short is
reported as such and the next one starts):

1. ``suite_smoke``: every countermeasure of the suite at ``smoke`` scale for clean data, FUSE and
   class-wise EM (their fits run on the GPU too);
2. ``zoo_smoke``: every registered protection fitted and applied at ``smoke`` scale;
3. ``timing``: one ``cpu``-scale run (the fast trainer, 10 epochs) and one epoch of the paper
   recipe (ResNet-18) on clean data, timed;
4. ``torchrun``: ``torchrun --nproc_per_node 1 -m fuselib fit fuse`` for one short epoch;
5. ``determinism``: DH and GUE (networks applied at ``apply()``) fitted, applied twice, saved,
   loaded and applied: how many pixels differ, with and without ``reproducible_cuda``;
6. ``pytest``: the unit tests (not the notebooks), on the device ``default_device()`` picks.

Runs use a fresh results cache and no shipped records (``FUSELIB_MEASURED`` is an empty
folder), so everything is computed there. Logs go to ``--out`` (one file a step) and the
summary table is printed last.

The steps (scale from ``--scale``; ``paper`` by default, ``smoke`` with ``--device cpu``,
which is how CI runs them end to end): ``fast_full`` (the fast trainer, with TFLOP/s),
``resnet_epoch`` (one epoch of the paper recipe), ``fuse_fit`` (FUSE's fit at that scale and
two runs on it), ``main_table`` (every protection × {none, low-pass 0.25, high-pass 0.25},
3 seeds as one batched model per cell, :mod:`fuselib.batched`). All of CIFAR-10 reaches the
GPU machine as a 25 MB lossless pack (``bench/pack_cifar.py``; ``--pack``)::

    python3 bench/gpu_check.py --pack .gpudata/cifar10.pack --out $OUT --budget 540 \
        --steps fast_full:60 resnet_epoch:60 fuse_fit:120 main_table:300

``--partial-train``: use only the CIFAR-10 training batch files present under
``$FUSELIB_DATA`` (every Python process started here imports ``partial_cifar`` through a
``sitecustomize``; each file present is still checked against its MD5). The lent GPU machine
takes at most 64 MiB with the code, so it was sent ``data_batch_1`` and ``test_batch`` (xz with
a delta filter, 41 MB): accuracies then come from a different training subset than the shipped
records and say only that training works. The device command used (README, "On a GPU"):

    D=/tmp/d/cifar10/cifar-10-batches-py; mkdir -p $D && (unpack .gpudata/*.xz into $D) &&
    FUSELIB_DATA=/tmp/d python3 bench/gpu_check.py --partial-train --budget 450 --out $OUT
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SUITE_PROTECTIONS = ["none", "fuse", "em"]

# the steps read their scale from the environment (GPU_CHECK_SCALE: paper on the GPU,
# smoke when the script is tried with --device cpu)
CLAIM_STEPS = {
    "fast_full": """
import os, time
from fuselib import experiments as E
from fuselib.train import get_recipe
from fuselib.batched import train_seeds
S = os.environ["GPU_CHECK_SCALE"]
t = time.time()
r = E.run("none", "none", scale=S, seed=0)
from evaluator import train_flops_per_image
from fuselib.train import Recipe
from fuselib.utils import default_device
f = train_flops_per_image(Recipe(**r["config"]["recipe"]), default_device())
print(f"fast trainer, scale {S}: acc {r['accuracy']:.4f} (peak {r['peak_accuracy']:.4f}) "
      f"n_train {r['config']['n_train']} wall {time.time() - t:.1f}s training "
      f"{r['train_seconds']:.1f}s, {r['images_per_second']:.0f} img/s, "
      f"{f * r['images_per_second'] / 1e12:.2f} TFLOP/s", flush=True)
""",
    "resnet_epoch": """
import os, time
from fuselib import experiments as E
S = os.environ["GPU_CHECK_SCALE"]
t = time.time()
r = E.run("none", "none", scale=S, seed=0, trainer="standard", epochs=1)
from evaluator import train_flops_per_image
from fuselib.train import Recipe
from fuselib.utils import default_device
f = train_flops_per_image(Recipe(**r["config"]["recipe"]), default_device())
print(f"paper recipe (ResNet-18), 1 epoch, scale {S}: acc {r['accuracy']:.4f} n_train "
      f"{r['config']['n_train']} wall {time.time() - t:.1f}s training {r['train_seconds']:.1f}s, "
      f"{r['images_per_second']:.0f} img/s, {f * r['images_per_second'] / 1e12:.2f} TFLOP/s",
      flush=True)
""",
    "fuse_fit": """
import os, time
from fuselib import experiments as E
S = os.environ["GPU_CHECK_SCALE"]
t = time.time()
x, xp, y = E.protected_data("fuse", scale=S, seed=0)
print(f"FUSE fit + apply on {len(y)} images, scale {S}: {time.time() - t:.1f}s", flush=True)
for cm in ("none", "lowpass:0.25"):
    r = E.run("fuse", cm, scale=S, seed=0)
    print(f"  FUSE @ {cm}: acc {r['accuracy']:.4f} (peak {r['peak_accuracy']:.4f})", flush=True)
""",
    "main_table": """
import os, statistics, time
import fuselib
from fuselib import countermeasures, data, experiments as E, protections
from fuselib.batched import train_seeds
from fuselib.train import Recipe
S = os.environ["GPU_CHECK_SCALE"]
seeds = [0, 1, 2]
cms = ["none", "lowpass:0.25", "highpass:0.25"]
xte, yte = data.load("cifar10", "test")
print(f"every protection x {cms}, seeds {seeds} batched (one grouped model a cell), scale {S}; "
      "each seed fits its own protection; all seeds tested on seed 0's test subset", flush=True)
print("protection | " + " | ".join(cms) + " | fit+apply s | train s", flush=True)
names = os.environ.get("GPU_CHECK_PROTECTIONS")
for name in names.split(",") if names else protections.names():
    t = time.time()
    try:
        per_seed = [E.protected_data(name, scale=S, seed=s) for s in seeds]
        fit_s = time.time() - t
        cells, t_train = [], 0.0
        for cm in cms:
            config, _, c = E.build_config(name, cm, scale=S, seed=0)
            xt, yt = data.subset(xte, yte, config["n_test"], 0)
            t1 = time.time()
            runs = train_seeds([c(xp, y) for _, xp, y in per_seed], [y for _, _, y in per_seed],
                               xt, yt, Recipe(**config["recipe"]), seeds=seeds)
            t_train += time.time() - t1
            acc = [100 * r["accuracy"] for r in runs]
            cells.append(f"{statistics.mean(acc):.1f} ± {statistics.stdev(acc):.1f}")
        print(f"{name} | " + " | ".join(cells) + f" | {fit_s:.0f} | {t_train:.0f}", flush=True)
    except Exception as e:  # report and go on
        print(f"{name} | FAILED {type(e).__name__}: {e}"[:300], flush=True)
""",
}

STEP_CODE = {
    "suite_smoke": f"""
import time
from fuselib import countermeasures, experiments as E
for p in {SUITE_PROTECTIONS!r}:
    for cm in countermeasures.SUITE:
        t = time.time()
        try:
            r = E.run(p, cm, scale="smoke", seed=0)
            print(f"{{p}} @ {{cm}}: ok acc {{r['accuracy']:.4f}} {{time.time() - t:.1f}}s", flush=True)
        except Exception as e:
            print(f"{{p}} @ {{cm}}: FAILED {{type(e).__name__}}: {{e}}"[:400], flush=True)
""",
    "zoo_smoke": """
import time
from fuselib import experiments as E, protections
for name in protections.names():
    t = time.time()
    try:
        r = E.run(name, "none", scale="smoke", seed=0)
        print(f"{name}: ok acc {r['accuracy']:.4f} {time.time() - t:.1f}s", flush=True)
    except Exception as e:  # report and go on: the point is the list of what fails on CUDA
        print(f"{name}: FAILED {type(e).__name__}: {e}"[:400], flush=True)
""",
    "timing": """
import time
from fuselib import experiments as E
t = time.time()
r = E.run("none", "none", scale="cpu", seed=0)
print(f"cpu-scale fast run: acc {r['accuracy']:.4f} n_train {r['config']['n_train']} "
      f"{time.time() - t:.1f}s (training {r['seconds']:.1f}s)", flush=True)
t = time.time()
r = E.run("none", "none", scale="paper", seed=0, trainer="standard", epochs=1)
print(f"paper recipe (ResNet-18), 1 epoch: acc {r['accuracy']:.4f} "
      f"n_train {r['config']['n_train']} {time.time() - t:.1f}s (training {r['seconds']:.1f}s)",
      flush=True)
""",
    "determinism": """
import contextlib, tempfile, torch
from fuselib import data, protections
from fuselib.protections import base
x, y = data.load("cifar10", "test")
x, y = x[:300], y[:300]
specs = {"dh": dict(steps=3, batch_size=30), "gue": dict(steps=1, batch_size=20, inner_steps=1,
                                                        gen_width=4)}
for name, kw in specs.items():
    p = protections.get(name, seed=0, **kw).fit(x, y)
    ref = p.apply(x, y)
    path = p.save(tempfile.mkdtemp() + "/p.pt")
    again = [int((p.apply(x, y) != ref).sum()) for _ in range(2)]
    loaded = int((protections.load(path).apply(x, y) != ref).sum())
    real = base.reproducible_cuda
    base.reproducible_cuda = contextlib.nullcontext  # the library before the fix
    try:
        off = [int((p.apply(x, y) != ref).sum()) for _ in range(3)]
    finally:
        base.reproducible_cuda = real
    print(f"{name}: pixels differing from the first apply: reproducible re-apply {again}, "
          f"after save/load {loaded}; without reproducible_cuda {off} (of {ref.numel()})",
          flush=True)
""",
}
STEP_CODE.update(CLAIM_STEPS)

SITECUSTOMIZE = """import os
if os.environ.get("FUSELIB_PARTIAL_TRAIN"):
    import partial_cifar
    partial_cifar.apply()
"""


def run_step(cmd, log: Path, budget: float, env) -> tuple:
    """Run ``cmd`` (output to ``log``) for at most ``budget`` seconds; on time-out its whole
    process group is killed (torchrun's workers, pytest's children)."""
    t = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(budget, 1))
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "cut short (time budget)"
    return status, time.time() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_logs")
    ap.add_argument("--budget", type=float, default=480, help="seconds for all steps together")
    ap.add_argument("--partial-train", action="store_true")
    ap.add_argument("--pack", default=None,
                    help="a CIFAR-10 pack (bench/pack_cifar.py): unpacked and MD5-checked into "
                         "a temporary data folder that every step reads")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu"),
                    help="cpu: hide any GPU from the steps (to try the script where it is written)")
    ap.add_argument("--scale", default=None,
                    help="scale of fast_full, resnet_epoch, fuse_fit and main_table (default: "
                         "paper, or smoke with --device cpu)")
    ap.add_argument("--steps", nargs="*", default=["suite_smoke:150", "zoo_smoke:90", "timing:60",
                                                   "torchrun:40", "determinism:60", "pytest"],
                    help="steps to run, in order, each NAME or NAME:SECONDS (a cap on that step; "
                         "without one it may take all the time left)")
    ap.add_argument("--tests", nargs="*", default=None,
                    help="what the pytest step runs (default: the unit tests but the notebooks')")
    a = ap.parse_args(argv)
    known = set(STEP_CODE) | {"torchrun", "pytest"}
    bad = [s for s in a.steps if s.partition(":")[0] not in known]
    if bad:
        ap.error(f"unknown step(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="fuselib_gpu_"))
    (work / "measured").mkdir()
    env = dict(os.environ, FUSELIB_RESULTS=str(work / "results"),
               FUSELIB_MEASURED=str(work / "measured"), FUSELIB_PROGRESS="0",
               PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), str(HERE),
                                                        os.environ.get("PYTHONPATH")])))
    if a.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    env["GPU_CHECK_SCALE"] = a.scale or ("smoke" if a.device == "cpu" else "paper")
    if a.pack:
        t = time.time()
        res = subprocess.run([sys.executable, str(HERE / "pack_cifar.py"), "unpack", a.pack,
                              str(work / "data" / "cifar10")], capture_output=True, text=True)
        (out / "data.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            sys.exit(f"gpu_check: the pack did not unpack: {res.stderr.strip()[-300:]}")
        env["FUSELIB_DATA"] = str(work / "data")
        print(f"data: {a.pack} unpacked and MD5-checked in {time.time() - t:.0f}s", flush=True)
    if a.partial_train:  # every Python process started below (torchrun's, the tests') patches
        (work / "site").mkdir()
        (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env["PYTHONPATH"] = os.pathsep.join([str(work / "site"), env["PYTHONPATH"]])
        env["FUSELIB_PARTIAL_TRAIN"] = "1"
    try:
        rows = run_steps(a, work, env, out, t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nstep | status | seconds")
    for r in rows:
        print(f"{r[0]} | {r[1]} | {r[2]:.0f}")


def run_steps(a, work: Path, env: dict, out: Path, t0: float) -> list:
    """Each step in turn under what is left of the budget; (step, status, seconds) rows."""
    rows = []
    for item in a.steps:
        step, _, cap = item.partition(":")
        left = a.budget - (time.time() - t0)
        if left < 5:
            rows.append((step, "not run (no time left)", 0.0))
            continue
        budget = min(left, float(cap)) if cap else left
        if step in STEP_CODE:
            cmd = [sys.executable, "-c", STEP_CODE[step]]
        elif step == "torchrun":
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                   "-m", "fuselib", "fit", "fuse", "--out", str(work / "fuse.pt"),
                   "--images", "1000", "--epochs", "1"]
        else:  # pytest
            cmd = [sys.executable, "-m", "pytest", "-v", "-o", "addopts=", "-p", "no:cacheprovider",
                   "--durations=10"]
            if a.tests:
                cmd += a.tests
            else:
                cmd += ["tests", "--ignore=tests/test_notebooks.py",
                        "--ignore=tests/test_plots_widgets.py"]
                if a.partial_train:  # it checks the whole training split
                    cmd += ["--ignore=tests/test_data.py"]
        status, secs = run_step(cmd, out / f"{step}.log", budget, env)
        rows.append((step, status, secs))
        print(f"{step}: {status} in {secs:.0f}s", flush=True)
    return rows


if __name__ == "__main__":
    main()
