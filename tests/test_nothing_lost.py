"""``fuselib protect``, ``audit`` and ``export-data`` pointed at a user's own data: an output
folder is the tool's own (nothing else in it is deleted, never the input), one process writes
an output at a time, ``--resume`` refuses what changed, any file name round-trips through the
manifest, and every reader checks declared sizes before it allocates. Each case tried as a
careful new user would, as a test (the kill -9 test is in test_crash_consistency.py)."""
import csv
import errno
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import fuselib.protect as P
from fuselib import cli, poisons
from fuselib.experiments import audit, folders
from fuselib.protect import ProtectError, protect_folder
from fuselib.utils import Busy, escape_name, lock_path, output_lock, unescape_name

from test_protect_safety import make_protection, photo, save, two_classes


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_protection(tmp_path_factory.mktemp("ckpt") / "fuse.pt", size=16, n_classes=3)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fuselib: error: "), err
    return err[0]


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_rows(out):
    with open(Path(out) / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width×height`` RGB pixels, with almost no pixel data."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def npy_data(root: Path, n=20, size=32) -> Path:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "images.npy", x.numpy())
    np.save(root / "labels.npy", (np.arange(n) % 10).astype(np.int64))
    return root


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if an audit or an export gets as far as training or protecting."""
    def no(*a, **k):
        pytest.fail("work started")

    monkeypatch.setattr(audit, "run", no)
    monkeypatch.setattr(audit, "protected_data", no)


# --------------------------------------------------------------------------- 1. audit --out
def _report():
    return {"fuselib": "test", "path": "p", "format": "npy", "digest": "d" * 64, "n": 20,
            "image_shape": [3, 32, 32], "label_counts": [2] * 10, "test": "cifar10",
            "n_test": 100, "scale": "smoke", "seed": 0, "eps": 8 / 255, "chance": 0.1,
            "warnings": [], "clean": None, "distance": None, "profile": None,
            "rows": [{"countermeasure": "none", "accuracy": 0.5, "peak_accuracy": 0.6,
                      "peak_epoch": 2, "cached": False, "seconds": 1.0, "key": "k"}],
            "created": "now"}


def test_audit_out_deletes_only_its_own_files(tmp_path):
    """An audit replaces an earlier audit's folder only when that folder holds the files its
    audit.json lists, unchanged; a user's files there (beside an audit.json of any kind) are
    refused, never deleted."""
    out = tmp_path / "report"
    audit.write(_report(), out)
    listed = json.loads((out / "audit.json").read_text())["outputs"]
    assert set(listed) == {"accuracy.csv", "audit.md"}
    audit.write(_report(), out)  # an earlier audit, unchanged: replaced
    assert {p.name for p in out.iterdir()} == {"accuracy.csv", "audit.md", "audit.json"}

    (out / "thesis.pdf").write_bytes(b"four years")
    (out / "chapters").mkdir()
    (out / "chapters" / "one.tex").write_text("\\section{}")
    before = tree(out)
    with pytest.raises(FileExistsError, match="did not write.*chapters/one.tex"):
        audit.write(_report(), out)
    assert tree(out) == before

    (out / "thesis.pdf").unlink()
    (out / "chapters" / "one.tex").unlink()
    (out / "chapters").rmdir()
    (out / "accuracy.csv").write_text("edited by hand")
    with pytest.raises(FileExistsError, match="changed since"):
        audit.write(_report(), out)
    assert (out / "accuracy.csv").read_text() == "edited by hand"

    old = tmp_path / "old"  # an audit.json that lists nothing (an older fuselib, or anyone's)
    old.mkdir()
    (old / "audit.json").write_text("{}")
    (old / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no audit report that lists its files"):
        audit.check_out(old)
    assert (old / "notes.txt").read_text() == "mine"


def test_audit_out_in_the_working_directory_replaces_files_not_the_folder(tmp_path,
                                                                          monkeypatch):
    """``--out .`` holding an earlier audit: the folder stays (the shell standing in it is not
    left in a deleted folder), the old report's files are replaced, nothing is left beside it."""
    here = tmp_path / "here"
    monkeypatch.chdir(tmp_path)
    audit.write(_report(), here)
    monkeypatch.chdir(here)
    inode = here.stat().st_ino
    audit.write({**_report(), "created": "later"}, Path("."))
    assert here.stat().st_ino == inode and Path.cwd() == here
    assert {p.name for p in here.iterdir()} == {"accuracy.csv", "audit.md", "audit.json"}
    assert json.loads((here / "audit.json").read_text())["created"] == "later"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_audit_out_in_the_data_is_refused_before_work(tmp_path, results_tmp, no_training,
                                                      capsys, monkeypatch):
    """``--out`` equal to the data folder (which holds an audit.json too), inside it, or
    ``.`` holding it: one line before any work, the data untouched."""
    data = npy_data(tmp_path / "data")
    (data / "audit.json").write_text(json.dumps({"outputs": {}}))
    before = tree(data)
    for out in (data, data / "report"):
        assert cli.main(["audit", str(data), "--scale", "smoke", "--out", str(out)]) == 2
        assert "the data audited" in one_error_line(capsys)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["audit", "data", "--scale", "smoke", "--out", "."]) == 2
    assert "the data audited" in one_error_line(capsys)
    assert tree(data) == before


# --------------------------------------------------------------------------- 2. crash consistency
def test_a_journal_line_cut_short_is_written_again(tmp_path, ckpt, monkeypatch):
    """A kill in the middle of a journal line leaves part of a row without its line end;
    --resume ends the line before appending, and ends with an uninterrupted run's bytes."""
    src = two_classes(tmp_path / "in", n=3)
    protect_folder(src, tmp_path / "ref", checkpoint=ckpt)
    out = tmp_path / "out"
    real, calls = P.encode_png, []

    def killed(*a):
        calls.append(1)
        if len(calls) == 3:
            raise SystemExit(9)  # no cleanup, as after SIGKILL
        return real(*a)

    monkeypatch.setattr(P, "encode_png", killed)
    with pytest.raises(SystemExit):
        protect_folder(src, out, checkpoint=ckpt)
    monkeypatch.setattr(P, "encode_png", real)
    with open(out / P.JOURNAL, "a") as fh:
        fh.write("cats/img2.png,cats/img2.png,cats,48x40,4")
    protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert tree(out) == tree(tmp_path / "ref")


# --------------------------------------------------------------------------- 3. one writer
def _held_by(pid: int, target: Path) -> Path:
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "since": "then"}))
    return lock


def test_a_second_writer_is_refused_in_one_line(tmp_path, ckpt, results_tmp, no_training,
                                                capsys):
    """A live process holds the output's lock: protect, audit and export-data each refuse in
    one line naming it, before any work, and leave its lock alone."""
    src = two_classes(tmp_path / "in")
    alive = os.getppid()
    lock = _held_by(alive, tmp_path / "out")
    assert cli.main(["protect", str(src), str(tmp_path / "out"), "--checkpoint",
                     str(ckpt)]) == 2
    assert f"being written by another fuselib process (pid {alive}" in one_error_line(capsys)
    assert not (tmp_path / "out").exists() and lock.exists()

    data = npy_data(tmp_path / "data")
    _held_by(alive, tmp_path / "report")
    assert cli.main(["audit", str(data), "--scale", "smoke", "--out",
                     str(tmp_path / "report")]) == 2
    assert "being written by another" in one_error_line(capsys)

    _held_by(alive, tmp_path / "shared")
    assert cli.main(["export-data", "ar", str(tmp_path / "shared"), "--scale", "smoke"]) == 2
    assert "being written by another" in one_error_line(capsys)


def test_two_processes_at_once_one_is_refused(tmp_path, ckpt):
    """A real second process: while one holds the lock (a child waiting on a pipe), a
    protect into the same output with another checkpoint is refused, and nothing of it is
    written; once the first is done, the lock is gone."""
    src = two_classes(tmp_path / "in")
    out = tmp_path / "out"
    code = ("import sys; from fuselib.utils import output_lock\n"
            "with output_lock(sys.argv[1]):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        assert child.stdout.readline().strip() == "held"
        other = make_protection(tmp_path / "other.pt", size=16, n_classes=2)
        with pytest.raises(Busy, match=f"pid {child.pid}"):
            protect_folder(src, out, checkpoint=other)
        assert not out.exists()
    finally:
        child.communicate("")
    assert child.returncode == 0 and not lock_path(out).exists()
    protect_folder(src, out, checkpoint=ckpt)


def test_a_stale_lock_is_taken_over(tmp_path, ckpt):
    """A lock whose holder (on this host) no longer runs, as after kill -9, does not block."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    _held_by(int(done.stdout), tmp_path / "out")
    s = protect_folder(two_classes(tmp_path / "in"), tmp_path / "out", checkpoint=ckpt)
    assert s["written"] == 4 and not lock_path(tmp_path / "out").exists()
    with output_lock(tmp_path / "x", wait=0):
        with pytest.raises(Busy, match=f"pid {os.getpid()}"):
            with output_lock(tmp_path / "x"):
                pass


# --------------------------------------------------------------------------- 4. resume
def test_resume_refuses_an_added_class_naming_it(tmp_path, ckpt):
    """A class folder added between a run and its --resume shifts the class indices (the
    old outputs carry the wrong patterns): refused, naming the two class lists."""
    src = tmp_path / "in"
    for name in ("a", "c"):
        save(src / name / "x.png", photo(20, 20, seed=len(name)))
    out = tmp_path / "out"
    protect_folder(src, out, checkpoint=ckpt)
    save(src / "b" / "x.png", photo(20, 20, seed=5))
    with pytest.raises(ProtectError, match=r"class folders: earlier a, c; now a, b, c"):
        protect_folder(src, out, checkpoint=ckpt, resume=True)
    s = protect_folder(src, out, checkpoint=ckpt, overwrite=True)
    assert s["written"] == 3


# --------------------------------------------------------------------------- 5. names
def test_any_file_name_round_trips_through_the_manifest(tmp_path, ckpt):
    """A name that is not UTF-8, one with a newline and one with ``%``: written, listed
    escaped (%XX), read back exactly; --resume keeps them all."""
    src = two_classes(tmp_path / "in")
    names = [os.fsdecode(b"caf\xe9.png"), "two\nlines.png", "100%.png"]
    for k, name in enumerate(names):
        save(src / "cats" / name, photo(20, 20, seed=k))
    out = tmp_path / "out"
    s = protect_folder(src, out, checkpoint=ckpt)
    assert s["written"] == 7
    listed = {r["file"]: r for r in manifest_rows(out)}
    assert {"cats/caf%E9.png", "cats/two%0Alines.png", "cats/100%25.png"} <= set(listed)
    for name in names:
        row = listed["cats/" + escape_name(name)]
        assert row["status"] == "ok" and unescape_name(row["output"]) == "cats/" + name
        assert (out / "cats" / name).is_file()
    s = protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert (s["written"], s["resumed"]) == (0, 7)


# --------------------------------------------------------------------------- 6. huge inputs
def test_huge_files_are_streamed_and_skipped_by_their_header(tmp_path, ckpt, monkeypatch):
    """A 64 MB file of zeros named .png (sparse: no disk) and a PNG claiming 10⁵×10⁵
    pixels: neither is read whole (inputs are hashed in a stream and decoded from the open
    file), each is skipped with its reason, the others written."""
    src = two_classes(tmp_path / "in")
    with open(src / "cats" / "zeros.png", "wb") as fh:
        fh.truncate(64 << 20)
    png_claiming(src / "dogs" / "huge.png", 100_000, 100_000)
    real = Path.read_bytes

    def read_bytes(self):
        assert not str(self).startswith(str(src)), f"read whole: {self}"
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = {r["file"]: r["status"] for r in manifest_rows(tmp_path / "out")}
    assert s["written"] == 4
    assert rows["cats/zeros.png"].startswith("skipped: unreadable")
    assert rows["dogs/huge.png"] == ("skipped: 100000×100000 = 10,000,000,000 pixels, above "
                                     "the limit of 100,000,000 pixels an image (--max-pixels "
                                     "raises it)")
    s = protect_folder(src, tmp_path / "out2", checkpoint=ckpt, max_pixels=100)
    assert s["written"] == 0 and s["skipped"] == 6


# --------------------------------------------------------------------------- 7-9. audit readers
def test_an_npy_header_claiming_terabytes_is_one_line(tmp_path, results_tmp, no_training,
                                                      capsys):
    f = tmp_path / "claims.npy"
    with open(f, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 1024, 1024, 3)})
        fh.write(b"\0" * 4096)
    assert cli.main(["audit", str(f), "--scale", "smoke"]) == 2
    line = one_error_line(capsys)
    assert str(f) in line and "3,145,728,000,000 bytes" in line and "truncated" in line
    small = npy_data(tmp_path / "small")
    with pytest.raises(poisons.PoisonError, match=r"images.npy: 0.00 GiB decoded, above the "
                                                  r"limit of 0.00 GiB \(--max-gb raises it\)"):
        poisons.read(small, limits=poisons.Limits(max_bytes=1000))


@pytest.mark.parametrize("kind", ["pickle", "pt"])
def test_one_row_repeated_is_refused_before_it_is_made(tmp_path, results_tmp, no_training,
                                                       kind, capsys):
    """A 1.6 MB pickle holding one row 400,000 times (a memo reference), or a .pt of an
    expanded tensor, declares 9 GiB: refused from its declared size, before the array is
    made."""
    n = 400_000
    if kind == "pickle":
        f = tmp_path / "data_batch_1"
        row = np.zeros(3072, dtype=np.int64)
        with open(f, "wb") as fh:
            pickle.dump({"data": [row] * n, "labels": [0] * n}, fh, protocol=2)
    else:
        f = tmp_path / "data.pt"
        torch.save({"images": torch.zeros(1, 3, 32, 32, dtype=torch.int64).expand(n, 3, 32, 32),
                    "labels": torch.zeros(1, dtype=torch.int64).expand(n)}, f)
    assert f.stat().st_size < 2_000_000
    assert cli.main(["audit", str(f), "--scale", "smoke"]) == 2
    line = one_error_line(capsys)
    assert str(f) in line and "9.16 GiB decoded, above the limit of 4.00 GiB" in line


def test_huge_pngs_are_refused_from_their_headers(tmp_path, results_tmp, no_training, capsys):
    """Ten PNGs claiming 8000×8000 (a few hundred bytes each): refused by the pixel limit
    before any is decoded; under a raised pixel limit, by the total."""
    for i in range(10):
        png_claiming(tmp_path / "big" / f"c{i}" / f"{i:05d}.png", 8000, 8000)
    assert cli.main(["audit", str(tmp_path / "big"), "--scale", "smoke"]) == 2
    line = one_error_line(capsys)
    assert "00000.png: 8000×8000 = 64,000,000 pixels, above the limit" in line
    assert "--max-pixels raises it" in line
    assert cli.main(["audit", str(tmp_path / "big"), "--scale", "smoke", "--max-pixels",
                     "100000000", "--max-gb", "1"]) == 2
    assert "GiB decoded as RGB (counted up to c5/00005.png), above the limit of 1.00 GiB" \
        in one_error_line(capsys)


# --------------------------------------------------------------------------- the minor ones
def test_an_npy_of_objects_is_named(tmp_path, results_tmp, no_training, capsys):
    f = tmp_path / "objects.npy"
    np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert cli.main(["audit", str(f), "--scale", "smoke"]) == 2
    line = one_error_line(capsys)
    assert str(f) in line and "dtype object" in line


def test_export_data_into_an_unwritable_place_is_refused_first(tmp_path, results_tmp,
                                                               no_training, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["export-data", "ar", str(tmp_path / "file" / "sub"), "--scale",
                     "smoke"]) == 2
    assert "cannot be written" in one_error_line(capsys)


def test_a_class_folder_named_like_the_manifest_is_refused_first(tmp_path, ckpt, monkeypatch):
    src = two_classes(tmp_path / "in")
    save(src / "manifest.csv" / "x.png", photo(20, 20))
    monkeypatch.setattr(P, "read_photo", lambda *a: pytest.fail("decoded an image"))
    with pytest.raises(ProtectError, match="'manifest.csv' has the name of a file protect "
                                           "writes"):
        protect_folder(src, tmp_path / "out", checkpoint=ckpt)


def test_a_full_disk_at_the_manifest_is_one_line_and_resumes(tmp_path, ckpt, monkeypatch,
                                                             capsys):
    src = two_classes(tmp_path / "in")
    protect_folder(src, tmp_path / "ref", checkpoint=ckpt)
    real = P.atomic_write

    def full(path, *a, **k):
        if Path(path).name == P.MANIFEST:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(P, "atomic_write", full)
    out = tmp_path / "out"
    assert cli.main(["protect", str(src), str(out), "--checkpoint", str(ckpt)]) == 2
    line = one_error_line(capsys)
    assert "cannot write the manifest" in line and "No space left on device" in line
    assert "--resume" in line and (out / P.JOURNAL).exists()
    monkeypatch.setattr(P, "atomic_write", real)
    s = protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert (s["written"], s["resumed"]) == (0, 4) and tree(out) == tree(tmp_path / "ref")


@pytest.mark.parametrize("argv", [["grid", "none", "--seeds", "99999999999999999999"],
                                  ["evaluate", "--seed", "-1"]])
def test_a_seed_out_of_range_is_an_argparse_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "a seed is a whole number from 0 to 4294967295" in last


def test_a_name_too_long_for_its_output_is_skipped_not_fatal(tmp_path, ckpt):
    src = two_classes(tmp_path / "in")
    long = "x" * 250
    save(src / "cats" / f"{long}.jpg", photo(20, 20), quality=95)
    save(src / "cats" / f"{long}.png", photo(20, 20, seed=3))  # so the .jpg's is .jpg.png
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = {r["file"]: r["status"] for r in manifest_rows(tmp_path / "out")}
    assert s["written"] == 5
    assert rows[f"cats/{long}.jpg"].startswith("skipped: its output name would be 258 bytes")


def test_inf_labels_are_not_integers(tmp_path, results_tmp, no_training, capsys):
    data = npy_data(tmp_path / "d", n=4)
    (tmp_path / "labels.txt").write_text("0\n1\ninf\n2\n")
    assert cli.main(["audit", str(data / "images.npy"), "--labels",
                     str(tmp_path / "labels.txt"), "--scale", "smoke"]) == 2
    assert "labels are not integers (e.g. inf at index 2)" in one_error_line(capsys)


def test_a_clean_reference_of_other_images_is_warned(tmp_path, results_tmp):
    data = npy_data(tmp_path / "d")
    other = tmp_path / "other"
    other.mkdir()
    np.save(other / "images.npy", 255 - np.load(data / "images.npy"))
    a = audit.prepare(data, clean=other, scale="smoke", countermeasures=["none"])
    assert any("is " + str(other) + " the clean originals" in w for w in a.warnings)


def test_evaluate_folder_at_a_huge_size_is_refused_before_loading(tmp_path, monkeypatch,
                                                                  capsys):
    png = save(tmp_path / "one.png", photo(8, 8)).read_bytes()
    for i in range(100):
        (tmp_path / "f" / f"c{i % 10}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "f" / f"c{i % 10}" / f"{i}.png").write_bytes(png)
    monkeypatch.setattr(folders.data, "load_folder", lambda *a, **k: pytest.fail("loaded"))
    monkeypatch.setattr(folders.data, "classes", lambda *a, **k: [f"c{i}" for i in range(10)])
    monkeypatch.setattr(folders.data, "count", lambda *a, **k: 300)  # the test split's size
    assert cli.main(["evaluate-folder", str(tmp_path / "f"), "--size", "2000"]) == 2
    assert "100 training and 300 test images at --size 2000 take 4.5 GiB" \
        in one_error_line(capsys)


def test_grid_list_without_a_plan_is_refused(capsys, monkeypatch):
    monkeypatch.setattr("fuselib.experiments.grid", lambda *a, **k: pytest.fail("ran"))
    assert cli.main(["grid", "none", "--list"]) == 2
    assert "--list lists a plan's runs: give --plan NAME" in one_error_line(capsys)


def test_banded_perturbation_gives_the_bytes_of_one_pass(ckpt):
    """protect_image works in bands of whole pattern periods; the result is the one pass's,
    byte for byte (an image of 3 bands and a part, a pattern of 16 px)."""
    rgb = torch.from_numpy(photo(3 * P.ROWS + 37, 50)).permute(2, 0, 1).contiguous()
    pattern = P.load_checkpoint(ckpt).deltas[1]
    out, worst, quality = P.protect_image(rgb, pattern, 8, "x")
    whole = P.perturb(rgb, pattern, 8)
    assert torch.equal(out, whole) and worst == int((whole.int() - rgb.int()).abs().max())
    assert quality == pytest.approx(P.psnr(whole, rgb), abs=1e-3)


def test_an_overwrite_killed_while_removing_can_be_run_again(tmp_path, ckpt, monkeypatch):
    """--overwrite removes the outputs first and the manifest last: killed after two
    removals, the manifest still lists what is left, and the next --overwrite finishes."""
    src = two_classes(tmp_path / "in")
    out = tmp_path / "out"
    protect_folder(src, out, checkpoint=ckpt)
    want = tree(out)
    real, calls = Path.unlink, []

    def unlink(self, missing_ok=False):
        calls.append(self)
        if len(calls) == 3:
            raise SystemExit(9)  # no cleanup, as after SIGKILL
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(SystemExit):
        protect_folder(src, out, checkpoint=ckpt, overwrite=True)
    monkeypatch.setattr(Path, "unlink", real)
    assert (out / "manifest.csv").exists() and len(tree(out)) < len(want)
    protect_folder(src, out, checkpoint=ckpt, overwrite=True)
    assert tree(out) == want


def test_a_locker_killed_before_linking_leaves_nothing_that_blocks(tmp_path):
    """The lock is written to a temporary file and linked into place: a process killed in
    between leaves that temporary (never an empty lock); the next lock removes it."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    left = lock_path(tmp_path / "out").with_name(f".out.lock.tmp{int(done.stdout)}")
    left.write_text("{}")
    with output_lock(tmp_path / "out") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid() and not left.exists()
    assert not lock.exists()


def test_resume_with_a_checkpoint_after_training_on_the_spot_is_refused(tmp_path, ckpt,
                                                                       monkeypatch):
    """A run trained on the spot, resumed with a checkpoint (or other training settings):
    refused, naming the checkpoint and the training settings that differ. (The fit itself
    is replaced by zero patterns: what is recorded is the point, not what is learned.)"""
    def fit(src, entries, p, size, *a):
        p.deltas, p.fitted = torch.zeros(2, 3, size, size), True

    monkeypatch.setattr(P, "_train", fit)
    src = two_classes(tmp_path / "in", n=1, size=(16, 16))
    out = tmp_path / "out"
    protect_folder(src, out, size=16, epochs=1, batch_size=4)
    with pytest.raises(ProtectError, match=r"checkpoint \(SHA-256\): earlier none \(trained on "
                                           r"the spot\); now \w+; training settings: earlier "
                                           r"seed=0, batch_size=4, epochs=1; now none \(a "
                                           r"checkpoint\)"):
        protect_folder(src, out, checkpoint=ckpt, resume=True)
    with pytest.raises(ProtectError, match=r"training settings: earlier seed=0, batch_size=4, "
                                           r"epochs=1; now seed=0, batch_size=4, epochs=2\)"):
        protect_folder(src, out, size=16, epochs=2, batch_size=4, resume=True)


def test_audit_into_an_empty_working_directory_keeps_that_folder(tmp_path, monkeypatch):
    """``--out .`` in an empty folder: the report's files are moved into it (the folder is
    not replaced, so a shell standing in it still stands in it); report first, so a folder
    left half-filled is still provably the audit's."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    inode = here.stat().st_ino
    audit.write(_report(), ".")
    assert here.stat().st_ino == inode and (here / "audit.md").is_file()
    (here / "audit.md").unlink()  # as if stopped halfway: the list is there, a file is not
    audit.write(_report(), ".")
    assert {p.name for p in here.iterdir()} == {"accuracy.csv", "audit.md", "audit.json"}
