"""A queue of ``fuselib grid`` jobs on a lent GPU, inside a time budget; the records come back.

    python3 bench/gpu_grid.py --pack .gpudata/cifar10.pack --out $OUT --budget 540 \\
        --parallel 10 --scale full --countermeasures none lowpass:0.25 ... \\
        --jobs pue@0 pue@1 tap@0 ... [--calibrate none@0] [--trainer standard --archs vgg11]

Each job ``SPEC@SEED`` is ``python -m fuselib grid SPEC --countermeasures CMS --scale S --seeds
SEED`` in its own process: the fit (the run seed seeds it), then one run a countermeasure, exactly
the runs the CPU queue makes, so their records have the same keys. Up to ``--parallel`` jobs run
at once, started in the order given (most valuable first); they share one fresh results cache and
see no shipped records. At the deadline every job still running is killed: the runs it finished
are kept (the cache writes each record atomically), the run in progress is lost.

``--calibrate SPEC@SEED``: the same (with ``--calibrate-countermeasures``), but for runs already
measured on a CPU, into a cache of its own (``calibration/`` in the archive), so that a GPU
record never replaces a CPU one: the pairs say how far the GPU's numbers move from the CPU's
for the same config.

What comes back (``--out``; the device tool returns at most 8 files): ``records.tar.xz`` with
the run records and fit records (JSON) of the cache, the calibration records and every job's
log, rewritten every minute and at the end; ``fits.tar`` with the fitted protections named in
``--ship-fits`` (default: FUSE's generators, what ``fuselib export`` ships). Here, afterwards::

    python bench/gpu_grid.py --import-from /work/.device/1 [...]   # into the results cache
    fuselib export --scale full --fits fuse pue ...                 # then ship as usual

``--import-from`` puts each run record into the results cache, except one whose config already
has a shipped record (a calibration run, or a job that reran a cell the CPU had measured): that
one goes to ``results/measured/calibration/``, beside the record it repeats and never over it.

``--device cpu`` hides the GPU (to try the script where it is written, at ``smoke`` scale).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def parse_job(text: str) -> tuple:
    spec, sep, seed = text.rpartition("@")
    if not sep or not spec or not seed.isdigit():
        raise ValueError(f"job {text!r} is not SPEC@SEED (e.g. pue@1)")
    return spec, int(seed)


def job_command(spec: str, seed: int, cms, scale: str, trainer: str | None = None,
                archs=None) -> list:
    """The ``fuselib grid`` command of one job: a fit and one run a countermeasure (and an
    architecture), the same configs as the CPU queue's."""
    cmd = [sys.executable, "-m", "fuselib", "grid", spec, "--countermeasures", *cms,
           "--scale", scale, "--seeds", str(seed), "--threads", "1"]
    if trainer:
        cmd += ["--trainer", trainer]
    if archs:
        cmd += ["--archs", *archs]
    return cmd


def pack_records(work: Path, out: Path, ship_fits: tuple) -> tuple:
    """The cache's and calibration's JSON records and the logs into ``out/records.tar.xz``;
    the fits named in ``ship_fits`` into ``out/fits.tar``; both written under a temporary name
    and renamed. Returns (run records, fit files) counted."""
    n_runs = 0
    tmp = out / ".records.tar.xz.tmp"
    with tarfile.open(tmp, "w:xz") as tar:
        for sub in ("cache", "calibration"):
            for f in sorted((work / sub).glob("*.json")):
                tar.add(f, f"{sub}/{f.name}")
                n_runs += sub == "cache"
            for f in sorted((work / sub / "protections").glob("*.json")):
                tar.add(f, f"{sub}/protections/{f.name}")
        for f in sorted((work / "logs").glob("*.log")):
            tar.add(f, f"logs/{f.name}")
    os.replace(tmp, out / "records.tar.xz")
    fits = []
    for f in sorted((work / "cache" / "protections").glob("*.json")):
        pt = f.with_suffix(".pt")
        try:
            name = json.loads(f.read_text())["config"]["protection"]["name"]
        except (OSError, ValueError, KeyError):
            continue
        if name in ship_fits and pt.is_file():
            fits.append(pt)
    tmp = out / ".fits.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        for pt in fits:
            tar.add(pt, f"protections/{pt.name}")
    os.replace(tmp, out / "fits.tar")
    return n_runs, len(fits)


def import_from(folders, cache: Path, shipped: Path) -> dict:
    """Each folder's ``records.tar.xz`` and ``fits.tar`` into ``cache`` (run records and
    fits), except run records whose key ``shipped`` already holds: those go to
    ``shipped/calibration``. Returns counts; reads every archive before writing anything."""
    from fuselib.utils import atomic_write

    files = []  # (destination, bytes, what it is: runs, calibration or fits)
    for folder in map(Path, folders):
        records = folder / "records.tar.xz"
        if not records.is_file():
            raise FileNotFoundError(f"{records}: no records archive (a gpu_grid --out folder?)")
        with tarfile.open(records) as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if not m.isfile() or parts[0] not in ("cache", "calibration"):
                    continue  # logs
                data = tar.extractfile(m).read()
                if len(parts) == 3 and parts[1] == "protections":
                    files.append((cache / "protections" / parts[2], data, "fits"))
                elif len(parts) == 2 and parts[1].endswith(".json"):
                    key = parts[1]
                    json.loads(data)  # a damaged record stops the import before any write
                    seen = (shipped / key).is_file()
                    files.append((shipped / "calibration" / key, data, "calibration") if seen
                                 else (cache / key, data, "runs"))
        fits = folder / "fits.tar"
        if fits.is_file():
            with tarfile.open(fits) as tar:
                for m in tar.getmembers():
                    if m.isfile() and Path(m.name).parent.name == "protections":
                        files.append((cache / "protections" / Path(m.name).name,
                                      tar.extractfile(m).read(), "fits"))
    counts = {"runs": 0, "calibration": 0, "fits": 0}
    for dest, data, kind in files:
        with atomic_write(dest) as tmp:
            tmp.write_bytes(data)
        counts[kind] += 1
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu_grid_out")
    ap.add_argument("--budget", type=float, default=540, help="seconds for everything")
    ap.add_argument("--pack", default=None, help="a CIFAR-10 pack (bench/pack_cifar.py)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu"))
    ap.add_argument("--scale", default="full")
    ap.add_argument("--countermeasures", nargs="+", default=["none"])
    ap.add_argument("--trainer", default=None,
                    help="every job's trainer (fuselib grid --trainer; default fast)")
    ap.add_argument("--archs", nargs="+", default=None,
                    help="every job's architectures (fuselib grid --archs; default the "
                         "trainer's network)")
    ap.add_argument("--jobs", nargs="*", default=[], help="SPEC@SEED, most valuable first")
    ap.add_argument("--calibrate", nargs="*", default=[],
                    help="SPEC@SEED already measured elsewhere: rerun into a separate cache")
    ap.add_argument("--calibrate-countermeasures", nargs="+", default=None,
                    help="countermeasures of the --calibrate jobs (default: --countermeasures)")
    ap.add_argument("--parallel", type=int, default=8, help="jobs at once")
    ap.add_argument("--min-left", type=float, default=60,
                    help="start no job with fewer seconds than this left")
    ap.add_argument("--ship-fits", nargs="*", default=["fuse"])
    ap.add_argument("--import-from", nargs="+", default=None, metavar="DIR",
                    help="here, after the call: put the records of these --out folders into "
                         "the results cache (repeats of shipped configs: results/measured/"
                         "calibration) and run nothing")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))  # fuselib from this checkout (the device has it uninstalled)
    if a.import_from:
        from fuselib.experiments.store import results_dir, shipped_dir

        try:
            counts = import_from(a.import_from, results_dir(), shipped_dir())
        except (OSError, ValueError, tarfile.TarError) as e:
            sys.exit(f"gpu_grid: {e}")
        print(f"imported {counts['runs']} run records and {counts['fits']} fit files into "
              f"{results_dir()}; {counts['calibration']} repeats of shipped records into "
              f"{shipped_dir() / 'calibration'}; next: fuselib export --scale SCALE --fits ...")
        return
    try:
        queue = [(j, "calibration") for j in a.calibrate] + [(j, "cache") for j in a.jobs]
        for j, _ in queue:
            parse_job(j)
    except ValueError as e:
        ap.error(str(e))
    if not queue:
        ap.error("nothing to run: give --jobs or --calibrate")
    if a.parallel < 1 or a.budget <= 0:
        ap.error("--parallel must be at least 1 and --budget above 0")
    t0 = time.time()
    deadline = t0 + a.budget
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fuselib_gpu_grid_"))
    for sub in ("cache", "calibration", "measured", "logs"):
        (work / sub).mkdir()
    env = dict(os.environ, FUSELIB_MEASURED=str(work / "measured"), FUSELIB_PROGRESS="0",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if a.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    code = ("import torch; print('torch', torch.__version__, torch.cuda.get_device_name() "
            "if torch.cuda.is_available() else 'cpu')")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    print(probe.stdout.strip() or probe.stderr.strip()[-300:], flush=True)
    if a.pack:
        t = time.time()
        res = subprocess.run([sys.executable, str(HERE / "pack_cifar.py"), "unpack", a.pack,
                              str(work / "data" / "cifar10")], capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"gpu_grid: the pack did not unpack: {res.stderr.strip()[-300:]}")
        env["FUSELIB_DATA"] = str(work / "data")
        print(f"data: {a.pack} unpacked and MD5-checked in {time.time() - t:.0f}s", flush=True)
    running, done, last_pack = {}, [], 0.0
    try:
        while queue or running:
            now = time.time()
            while queue and len(running) < a.parallel and deadline - now > a.min_left:
                job, sub = queue.pop(0)
                spec, seed = parse_job(job)
                log = work / "logs" / f"{sub}_{job.replace(':', '_').replace('/', '_')}.log"
                cms = a.countermeasures if sub == "cache" else (a.calibrate_countermeasures
                                                                 or a.countermeasures)
                cmd = job_command(spec, seed, cms, a.scale, a.trainer, a.archs)
                f = open(log, "w")
                p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                                     env=dict(env, FUSELIB_RESULTS=str(work / sub)),
                                     start_new_session=True)
                running[p] = (job, sub, f, now)
                print(f"[{now - t0:5.0f}s] start {sub} {job}", flush=True)
            if queue and deadline - now <= a.min_left and not running:
                break
            for p in [p for p in running if p.poll() is not None]:
                job, sub, f, started = running.pop(p)
                f.close()
                done.append((job, sub, f"exit {p.returncode}", time.time() - started))
                print(f"[{time.time() - t0:5.0f}s] {sub} {job}: exit {p.returncode} after "
                      f"{time.time() - started:.0f}s", flush=True)
            if time.time() >= deadline:
                for p, (job, sub, f, started) in running.items():
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    f.close()
                    done.append((job, sub, "cut at the deadline", time.time() - started))
                running = {}
                break
            if time.time() - last_pack > 60:
                n, _ = pack_records(work, out, tuple(a.ship_fits))
                last_pack = time.time()
                print(f"[{last_pack - t0:5.0f}s] packed {n} run records", flush=True)
            time.sleep(2)
        n_runs, n_fits = pack_records(work, out, tuple(a.ship_fits))
        for job, sub in queue:
            done.append((job, sub, "not started (no time left)", 0.0))
        print(f"\n{n_runs} run records and {n_fits} fits packed into {out}")
        print("job | cache | status | seconds")
        for job, sub, status, secs in done:
            print(f"{job} | {sub} | {status} | {secs:.0f}")
        from fuselib import countermeasures
        from fuselib.experiments.records import spec

        print("\ncache | protection | countermeasure | seed | accuracy | peak | seconds")
        for sub in ("calibration", "cache"):
            for f in sorted((work / sub).glob("*.json")):
                r = json.loads(f.read_text())
                c = r["config"]
                print(f"{sub} | {c['protection']['name']} | "
                      f"{spec(c['countermeasure'], countermeasures)} | "
                      f"{c['seed']} | {100 * r['accuracy']:.2f} | {100 * r['peak_accuracy']:.2f} "
                      f"| {r['seconds']:.0f}")
    finally:
        for p in running:
            os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
