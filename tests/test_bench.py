"""bench/gpu_check.py, the one-call GPU check, kept runnable on the CPU (where it is written)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"


def test_gpu_check_rejects_unknown_steps(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--steps", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "unknown step(s) nope" in res.stderr


def test_gpu_check_determinism_step(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--budget", "240",
                          "--steps", "determinism"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "determinism | ok |" in res.stdout, res.stdout + res.stderr
    log = (tmp_path / "determinism.log").read_text()
    # without the fix, only CUDA differs (295 and 4,727 values of 921,600 on an H100)
    without = "" if torch.cuda.is_available() else "; without reproducible_cuda [0, 0, 0]"
    for name in ("dh", "gue"):
        assert f"{name}: pixels differing from the first apply: reproducible re-apply [0, 0], " \
               f"after save/load 0{without}" in log, log


def test_gpu_check_claim_steps_run_on_the_cpu(tmp_path):
    """bench/gpu_check.py's GPU steps, end to end at smoke scale with the GPU hidden (what the device call
    runs at paper scale); main_table with two protections to keep it short. The budget is a
    cap, not a goal: about 10 minutes on 2 idle cores, several times that beside other work."""
    env = dict(__import__("os").environ, GPU_CHECK_PROTECTIONS="none,ar")
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--device", "cpu",
                          "--budget", "3600", "--steps", "fast_full", "resnet_epoch", "fuse_fit",
                          "main_table"], capture_output=True, text=True, timeout=3700, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for step in ("fast_full", "resnet_epoch", "fuse_fit", "main_table"):
        assert f"{step} | ok |" in res.stdout, res.stdout
    assert "TFLOP/s" in (tmp_path / "fast_full.log").read_text()
    table = (tmp_path / "main_table.log").read_text()
    assert "ar | " in table and "±" in table and "FAILED" not in table, table


def test_cifar_pack_round_trip_is_exact(tmp_path):
    """bench/pack_cifar.py (how all of CIFAR-10 reaches the GPU machine): a small batch in the
    real pickle layout packs and unpacks to the same bytes, MD5-checked; a damaged pack writes
    nothing."""
    import hashlib
    import pickle

    import fuselib

    pack = Path(__file__).resolve().parent.parent / "bench" / "pack_cifar.py"
    x, y = fuselib.data.load("cifar10", "test")
    src = tmp_path / "src"
    (src / "cifar-10-batches-py").mkdir(parents=True)
    blob = pickle.dumps({"batch_label": "testing batch 1 of 1", "labels": y[:300].tolist(),
                         "data": x[:300].reshape(300, -1).numpy()}, protocol=4)
    (src / "cifar-10-batches-py" / "test_batch").write_bytes(blob)
    (src / "cifar-10-batches-py" / "batches.meta").write_bytes(b"meta")
    (src / "MD5SUMS").write_text(f"{hashlib.md5(blob).hexdigest()}  cifar-10-batches-py/test_batch\n")
    run = lambda *a: subprocess.run([sys.executable, str(pack), *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=120)
    res = run("pack", str(tmp_path / "c.pack"), "--src", str(src))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.pack").stat().st_size < len(blob) / 4  # 300 B-ish an image, not 3,072
    res = run("unpack", str(tmp_path / "c.pack"), str(tmp_path / "out"))
    assert res.returncode == 0 and "md5 ok" in res.stdout, res.stdout + res.stderr
    assert (tmp_path / "out" / "cifar-10-batches-py" / "test_batch").read_bytes() == blob
    damaged = bytearray((tmp_path / "c.pack").read_bytes())
    damaged[-40] ^= 0xFF  # inside the residual's xz stream
    (tmp_path / "d.pack").write_bytes(bytes(damaged))
    res = run("unpack", str(tmp_path / "d.pack"), str(tmp_path / "out2"))
    assert res.returncode != 0 and "damaged" in res.stderr and not (tmp_path / "out2").exists()
    assert not list(tmp_path.glob(".cifarpack_*"))  # no half-written folder left behind


GRID = Path(__file__).resolve().parent.parent / "bench" / "gpu_grid.py"


def test_gpu_grid_queue_and_import(tmp_path):
    """bench/gpu_grid.py (a queue of grid jobs on a lent GPU) end to end on the CPU at smoke
    scale: a job and a calibration job come back in the archive with their logs; importing puts
    the job's record into the cache and the repeat of a shipped record beside it, never over it."""
    import json
    import tarfile

    sys.path.insert(0, str(GRID.parent))
    import gpu_grid

    bad = subprocess.run([sys.executable, str(GRID), "--jobs", "pue"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "is not SPEC@SEED" in bad.stderr
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(GRID), "--device", "cpu", "--scale", "smoke",
                          "--jobs", "random@1", "--calibrate", "none@0", "--countermeasures",
                          "none", "--parallel", "2", "--budget", "600", "--min-left", "5",
                          "--out", str(out)], capture_output=True, text=True, timeout=700)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "random@1 | cache | exit 0" in res.stdout
    assert "none@0 | calibration | exit 0" in res.stdout
    with tarfile.open(out / "records.tar.xz") as tar:
        names = tar.getnames()
    runs = [n for n in names if n.count("/") == 1 and n.endswith(".json")]
    assert len(runs) == 2 and {n.split("/")[0] for n in runs} == {"cache", "calibration"}, names
    assert any(n.startswith("logs/") for n in names) and any("/protections/" in n for n in names)
    with tarfile.open(out / "records.tar.xz") as tar:  # the clean run "was shipped already"
        calib = next(n for n in runs if n.startswith("calibration/"))
        shipped = tmp_path / "shipped"
        shipped.mkdir()
        (shipped / Path(calib).name).write_bytes(tar.extractfile(calib).read())
    counts = gpu_grid.import_from([out], tmp_path / "cache", shipped)
    assert counts == {"runs": 1, "calibration": 1, "fits": counts["fits"]} and counts["fits"] >= 1
    job = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert job["config"]["protection"]["name"] == "random" and job["config"]["seed"] == 1
    assert (shipped / "calibration" / Path(calib).name).is_file()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no records archive"):
        gpu_grid.import_from([tmp_path / "empty"], tmp_path / "cache", shipped)


def test_gpu_grid_jobs_name_the_trainer_and_networks(results_tmp, capsys):
    """A victims job on the GPU is the CPU queue's grid command with the same trainer and
    networks, so its records have the plan's keys; the command parses and runs (here reading
    an empty cache)."""
    sys.path.insert(0, str(GRID.parent))
    import gpu_grid

    from fuselib import cli

    cmd = gpu_grid.job_command("fuse", 2, ["none", "lowpass:0.25"], "paper", "standard",
                               ["vgg11", "resnet50"])
    assert cmd[cmd.index("--trainer") + 1] == "standard"
    assert cmd[cmd.index("--archs") + 1:] == ["vgg11", "resnet50"]
    assert "--trainer" not in gpu_grid.job_command("fuse", 0, ["none"], "full")
    cli.main(cmd[cmd.index("grid"):] + ["--cached-only"])
    assert "nothing measured yet" in capsys.readouterr().out


def test_amp_gradients_compares_each_way_from_the_same_weights(capsys):
    """bench/amp_gradients.py: the BatchNorm hook really computes BatchNorm in fp32 under
    autocast, and each step count prints one row a way, the input-rounding row near fp32."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import amp_gradients

    from fuselib import models

    m = models.get("fastnet")
    out_dtypes = []
    for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
        bn.register_forward_hook(lambda _m, _a, out: out_dtypes.append(out.dtype))
    x = torch.randn(4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(x)
        assert set(out_dtypes) == {torch.bfloat16}      # autocast alone: BatchNorm in bf16
        out_dtypes.clear()
        with amp_gradients.batchnorm_in_fp32(m):
            m(x)
        assert set(out_dtypes) == {torch.float32}
    amp_gradients.main(["--arch", "fastnet", "--steps", "0", "2", "--batch-size", "8"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["0"] * 3 + ["2"] * 3
    rounded = [r for r in rows if r[1] == "fp32,"]
    assert all(abs(float(r[-2]) - 1) < 0.05 for r in rounded)   # norm ratio
