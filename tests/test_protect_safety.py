"""``fuselib protect`` never damages data: every defect found by trying it as a new user
would, as a test. Folders are built in ``tmp_path``; the protection is a seeded, untrained
FUSE generator's class patterns saved as a protection file (no training: fast), except where
training on the spot is the point."""
import csv
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import fuselib.protect as P
from fuselib import cli, protections, spectral
from fuselib.protect import Interrupted, ProtectError, protect_folder
from fuselib.protections.generators import Generator

EPS = 8 / 255
BUDGET = 8


# --------------------------------------------------------------------------- helpers
def photo(h, w, seed=0, channels=3):
    """A smooth, photo-like uint8 array (gradients plus mild noise), away from 0 and 255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 60 + 60 * (xx / max(w, 1)) + 40 * np.sin(yy / 17.0 + seed)
    arr = base[..., None] + np.array([0, 25, 50][:channels]) + rng.normal(0, 4, (h, w, channels))
    return np.clip(arr, 20, 235).astype(np.uint8)


def save(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def two_classes(root, n=2, size=(40, 48)):
    """``root/{cats,dogs}/img<i>.png``: a plain two-class folder."""
    for c, name in enumerate(["cats", "dogs"]):
        for i in range(n):
            save(root / name / f"img{i}.png", photo(*size, seed=10 * c + i))
    return root


def make_protection(path, size=32, n_classes=2, eps=EPS, deltas=None):
    """A FUSE protection file whose class patterns are a seeded generator's outputs."""
    p = protections.get("fuse", eps=eps)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    g = Generator(eps).eval()
    noise = torch.rand((n_classes, 3, size, size), generator=gen)
    with torch.no_grad():
        p.deltas = g(noise).clamp(-eps, eps) if deltas is None else deltas
    p.generator, p.noise, p.fitted = g.state_dict(), noise, True
    return p.save(path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_protection(tmp_path_factory.mktemp("ckpt") / "fuse.pt")


def rows_of(out):
    with open(Path(out) / "manifest.csv", newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh)}


def rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def tree_digest(root):
    """Every path and file content under ``root`` (symlinks not followed), to show it is
    untouched."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest()
                                             if not p.is_symlink() else os.readlink(p))
    return out


def png16(path, arr, color_type):
    """Write a 16-bit PNG (Pillow cannot write 16-bit RGB): ``arr`` uint16, big-endian rows."""
    h, w = arr.shape[:2]

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + arr[i].astype(">u2").tobytes() for i in range(h))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def no_temporaries(root):
    return not [p for p in Path(root).rglob("*") if ".tmp" in p.name]


# --------------------------------------------------------------------------- data damage
def test_exif_orientation_is_applied_and_said(tmp_path, ckpt):
    """A phone photo (orientation 6) comes out upright, as viewers show it, and the manifest
    says the orientation was applied."""
    src = two_classes(tmp_path / "in")
    arr = photo(300, 400)
    arr[:, :200] = [200, 40, 40]                       # the left half red: rotation is visible
    exif = Image.Exif()
    exif[0x0112] = 6
    save(src / "cats" / "r.jpg", arr, exif=exif.tobytes(), quality=95)
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    row = rows_of(tmp_path / "out")["cats/r.jpg"]
    assert "EXIF orientation 6 applied" in row["status"] and row["size"] == "300x400"
    with Image.open(src / "cats" / "r.jpg") as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    out = rgb(tmp_path / "out" / "cats" / "r.png")
    assert out.shape == upright.shape == (400, 300, 3)
    assert np.abs(out - upright).max() <= BUDGET and s["max_abs_delta"] <= BUDGET
    with Image.open(tmp_path / "out" / "cats" / "r.png") as im:
        assert 0x0112 not in im.getexif()  # written upright, no orientation left to apply


def test_alpha_is_kept(tmp_path, ckpt):
    """RGBA, LA and palette-with-transparency images keep their alpha channel exactly; the
    RGB underneath is perturbed within the budget; the manifest says so."""
    src = two_classes(tmp_path / "in")
    rgba = np.concatenate([photo(30, 40), np.tile(np.linspace(0, 255, 40, dtype=np.uint8),
                                                  (30, 1))[..., None]], axis=-1)
    rgba[:10, :, 3] = 0                                 # fully transparent rows
    save(src / "cats" / "a.png", rgba)
    la = np.stack([photo(30, 40)[..., 0], rgba[..., 3]], -1)
    save(src / "cats" / "la.png", la, )
    pal = Image.fromarray(rgba).convert("P")            # palette with a transparent entry
    pal.info["transparency"] = 0
    pal.save(src / "dogs" / "p.png", transparency=0)
    protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = rows_of(tmp_path / "out")
    for name, ref in [("cats/a", rgba), ("cats/la", None), ("dogs/p", None)]:
        assert "alpha kept" in rows[f"{name}.png"]["status"], name
        with Image.open(tmp_path / "out" / f"{name}.png") as o, \
                Image.open(src / f"{name}.png") as i:
            assert o.mode == "RGBA"
            o_arr, i_arr = np.asarray(o).astype(int), np.asarray(i.convert("RGBA")).astype(int)
        assert (o_arr[..., 3] == i_arr[..., 3]).all(), name
        assert np.abs(o_arr[..., :3] - i_arr[..., :3]).max() <= BUDGET


def test_16_bit_images_are_scaled_not_clipped(tmp_path, ckpt):
    """16-bit grayscale (``I;16``) and 16-bit RGB come out as what they mean in 8 bits (40000 of
    65535 ≈ 156 of 255), not white, with a status that says so; a float image is skipped."""
    src = two_classes(tmp_path / "in")
    png16(src / "cats" / "g16.png", np.full((24, 32), 40000, np.uint16), color_type=0)
    png16(src / "dogs" / "c16.png", np.full((24, 32, 3), 40000, np.uint16), color_type=2)
    Image.fromarray(np.full((24, 32), 0.5, np.float32)).save(src / "dogs" / "f.tif")
    with Image.open(src / "cats" / "g16.png") as im:
        assert im.mode == "I;16"
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = rows_of(tmp_path / "out")
    for name in ("cats/g16", "dogs/c16"):
        assert rows[f"{name}.png"]["status"] == "ok: 16-bit scaled to 8-bit"
        out = rgb(tmp_path / "out" / f"{name}.png")
        assert np.abs(out - 156).max() <= BUDGET, name          # 40000 / 257 = 155.6
    assert rows["dogs/f.tif"]["status"].startswith("skipped: 32-bit float image")
    assert not (tmp_path / "out" / "dogs" / "f.png").exists()
    assert s["written"] == 6 and s["skipped"] == 1


def test_colliding_names_are_disambiguated(tmp_path, ckpt):
    """``p.jpg`` and ``p.png`` no longer overwrite each other: ``p.png`` keeps its name, the JPEG
    becomes ``p.jpg.png``; case-only differences count as collisions; the count is right."""
    src = two_classes(tmp_path / "in")
    sources = {"cats/p.jpg": 1, "cats/p.png": 2, "dogs/R.JPG": 3, "dogs/r.jpeg": 4}
    for name, seed in sources.items():
        save(src / name, photo(40, 48, seed=seed), **({"quality": 95} if "j" in name.lower()
                                                        and "png" not in name else {}))
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = rows_of(tmp_path / "out")
    assert {k: rows[k]["output"] for k in sources} == {
        "cats/p.jpg": "cats/p.jpg.png", "cats/p.png": "cats/p.png",
        "dogs/R.JPG": "dogs/R.JPG.png", "dogs/r.jpeg": "dogs/r.jpeg.png"}
    assert s["written"] == 4 + len(sources)
    outs = [r["output"] for r in rows.values() if r["output"]]
    assert len({o.casefold() for o in outs}) == len(outs)
    for name in sources:  # each output is its own source's, not the other's
        with Image.open(src / name) as im:
            ref = np.asarray(im.convert("RGB")).astype(int)
        assert np.abs(rgb(tmp_path / "out" / rows[name]["output"]) - ref).max() <= BUDGET


def test_a_symlink_into_the_input_is_never_written_through(tmp_path, ckpt, capsys):
    """An output folder holding a symlink into the input is refused (with ``--overwrite`` too),
    and the input tree is untouched: no original replaced, no file added."""
    src = two_classes(tmp_path / "in")
    before = tree_digest(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "cats").symlink_to(src / "cats")
    for flags in ([], ["--overwrite"], ["--resume"]):
        assert cli.main(["protect", str(src), str(out), "--checkpoint", str(ckpt), *flags]) == 2
        err = capsys.readouterr().err
        assert "symlink into the input" in err and err.count("\n") == 1
    assert tree_digest(src) == before


def test_a_symlinked_target_is_refused(tmp_path, ckpt):
    """Even past the folder checks (a symlink made during the run), a target folder that is a
    symlink is never written through."""
    src = two_classes(tmp_path / "in")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "cats").symlink_to(elsewhere)
    with pytest.raises(ProtectError, match="symlink"):
        P.safe_target(dst.resolve(), src.resolve(), Path("cats/img0.png"))
    assert not list(elsewhere.iterdir())


def test_a_non_empty_output_is_refused_unless_resume_or_overwrite(tmp_path, ckpt):
    """An existing output folder is not silently overwritten; ``--overwrite`` removes what the
    earlier run wrote (stale files included) and refuses files no run wrote."""
    src = two_classes(tmp_path / "in")
    out = tmp_path / "out"
    protect_folder(src, out, checkpoint=ckpt)
    with pytest.raises(ProtectError, match="not empty"):
        protect_folder(src, out, checkpoint=ckpt)
    (src / "dogs" / "img1.png").unlink()                # its output is now stale
    s = protect_folder(src, out, checkpoint=ckpt, overwrite=True)
    assert s["written"] == 3 and not (out / "dogs" / "img1.png").exists()
    assert set(rows_of(out)) == {"cats/img0.png", "cats/img1.png", "dogs/img0.png"}
    (out / "cats" / "mine.txt").write_text("not written by protect")
    with pytest.raises(ProtectError, match="no earlier .* run wrote .*mine.txt"):
        protect_folder(src, out, checkpoint=ckpt, overwrite=True)
    assert (out / "cats" / "mine.txt").exists() and (out / "cats" / "img0.png").exists()
    with pytest.raises(ProtectError, match="exclude each other"):
        protect_folder(src, out, checkpoint=ckpt, overwrite=True, resume=True)


def test_the_budget_is_checked_on_every_written_image(tmp_path, ckpt, monkeypatch):
    """Whatever the perturbation code returns, an image beyond ``round(ε·255)`` is never
    written: the run stops with an error and the manifest lists what was done."""
    src = two_classes(tmp_path / "in")
    real, calls = P.perturb, []

    def broken(rgb, pattern, budget):
        calls.append(1)
        out = real(rgb, pattern, budget)
        return out if len(calls) < 3 else (out.int() + 20).clamp(0, 255).to(torch.uint8)

    monkeypatch.setattr(P, "perturb", broken)
    with pytest.raises(ProtectError, match="above the budget 8/255"):
        protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = rows_of(tmp_path / "out")
    assert [r["status"] for r in rows.values()] == ["ok", "ok"] + [P.NOT_DONE] * 2
    assert not (tmp_path / "out" / "dogs" / "img0.png").exists()


# --------------------------------------------------------------------------- bad checkpoints
def _variant(good, path, edit):
    blob = torch.load(good, weights_only=True)
    edit(blob)
    torch.save(blob, path)
    return path


def _big(b):
    b["config"]["eps"] = 0.5
    b["state"]["deltas"] = b["state"]["deltas"].sign() * 0.5


def _over_own_budget(b):
    b["state"]["deltas"] = b["state"]["deltas"].sign() * 12 / 255


BAD = {
    "eps 0.5": (lambda g, p: _variant(g, p, _big), "outside \\(0, 16/255\\]"),
    "over its eps": (lambda g, p: _variant(g, p, _over_own_budget), "reach 12.0/255"),
    "NaN": (lambda g, p: _variant(g, p, lambda b: b["state"]["deltas"].mul_(float("nan"))),
            "NaN"),
    "5x5": (lambda g, p: _variant(g, p, lambda b: b["state"].update(
        deltas=b["state"]["deltas"][..., :5, :5].contiguous())), "5x5 pixels"),
    "one class": (lambda g, p: _variant(g, p, lambda b: b["state"].update(
        deltas=b["state"]["deltas"][:1].contiguous())), "trained on 1 classes"),
    "random bytes": (lambda g, p: p.write_bytes(np.random.default_rng(0).bytes(50000)) and p,
                     "not a readable fuselib protection file"),
    "truncated": (lambda g, p: p.write_bytes(g.read_bytes()[:3000]) and p,
                  "not a readable .*failed reading zip archive"),
    "not fuse": (lambda g, p: protections.get("random").fit(
        torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.tensor([0, 1])).save(p), "not fuse"),
    "training state": (lambda g, p: torch.save({"format": "fuselib.fuse-checkpoint/1"}, p) or p,
                       "training checkpoint"),
    "missing": (lambda g, p: p, "does not exist"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_checkpoint_is_one_line_before_any_work(tmp_path, ckpt, case, monkeypatch,
                                                     capsys):
    """Each bad checkpoint: exit code 2, one line naming the file, nothing decoded or
    written, no advice to load it unsafely."""
    make, message = BAD[case]
    path = make(ckpt, tmp_path / "bad.pt")
    src = two_classes(tmp_path / "in")
    monkeypatch.setattr(P, "read_photo", lambda *a: pytest.fail("decoded an image"))
    with pytest.raises(ProtectError, match=message):
        protect_folder(src, tmp_path / "out", checkpoint=path)
    assert cli.main(["protect", str(src), str(tmp_path / "out"), "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "weights_only=False" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["torch.save", "plain pickle"])
def test_a_malicious_checkpoint_is_refused_and_does_not_run(tmp_path, kind, capsys):
    """A pickle whose ``__reduce__`` calls ``os.system`` is refused in one line, and never
    runs."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    if kind == "torch.save":
        torch.save({"format": "fuselib.protection/1", "name": "fuse", "x": Evil()}, path)
    else:
        path.write_bytes(pickle.dumps(Evil()))
    src = two_classes(tmp_path / "in")
    assert cli.main(["protect", str(src), str(tmp_path / "out"), "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "could run code" in err and err.count("\n") == 1
    assert "weights_only=False" not in err and not marker.exists()


def test_a_checkpoint_of_another_size_than_asked_is_refused(tmp_path, ckpt):
    src = two_classes(tmp_path / "in")
    with pytest.raises(ProtectError, match="not the --size 64"):
        protect_folder(src, tmp_path / "out", checkpoint=ckpt, size=64)
    assert protect_folder(src, tmp_path / "out", checkpoint=ckpt, size=32)["size"] == (32, 32)


# --------------------------------------------------------------------------- faults
def test_bad_paths_are_one_line_before_any_work(tmp_path, ckpt, monkeypatch, capsys):
    """Output a file, output under a file, input missing, input a file, output inside the
    input, --save-protection unwritable or inside the output: exit 2, one line, before any
    image is decoded or any training starts."""
    src = two_classes(tmp_path / "in")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    monkeypatch.setattr(P, "read_photo", lambda *a: pytest.fail("decoded an image"))
    monkeypatch.setattr(P, "_train", lambda *a: pytest.fail("trained"))
    cases = [
        ([str(src), str(a_file), "--checkpoint", str(ckpt)], "is a file, not a folder"),
        ([str(src), str(a_file / "out"), "--checkpoint", str(ckpt)], "is a file, not a folder"),
        ([str(tmp_path / "nope"), str(tmp_path / "o")], "does not exist"),
        ([str(a_file), str(tmp_path / "o")], "is a file, not a folder"),
        ([str(src), str(src / "cats" / "o")], "input tree"),
        ([str(src), str(tmp_path / "o"), "--save-protection", str(a_file / "fuse.pt")],
         "is a file, not a folder"),
        ([str(src), str(tmp_path / "o"), "--save-protection", str(tmp_path / "o" / "f.pt")],
         "inside the output"),
        ([str(src), str(tmp_path / "o"), "--save-protection", str(tmp_path)], "is a folder"),
        ([str(src), str(tmp_path / "o"), "--size", "5"], "--size must be"),
        ([str(src), str(tmp_path / "o"), "--portion", "0"], "portion"),
        ([str(src), str(tmp_path / "o"), "--resume", "--overwrite"], "exclude each other"),
    ]
    for argv, message in cases:
        assert cli.main(["protect", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_output_is_refused_before_work(tmp_path, ckpt):
    src = two_classes(tmp_path / "in")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ProtectError, match="not writable"):
            protect_folder(src, ro / "out", checkpoint=ckpt)
    finally:
        ro.chmod(0o755)


def test_training_flags_with_a_checkpoint_are_an_error(tmp_path, ckpt, capsys):
    """``--epochs`` (and every training flag) with ``--checkpoint`` is one line, not ignored."""
    src = two_classes(tmp_path / "in")
    for flags in (["--epochs", "3"], ["--seed", "1", "--device", "cpu"],
                  ["--save-protection", str(tmp_path / "x.pt")]):
        assert cli.main(["protect", str(src), str(tmp_path / "o"), "--checkpoint", str(ckpt),
                         *flags]) == 2
        err = capsys.readouterr().err
        assert flags[0] in err and "already trained" in err and err.count("\n") == 1
    with pytest.raises(ProtectError, match="epochs: training settings"):
        protect_folder(src, tmp_path / "o", checkpoint=ckpt, epochs=3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_is_checked(tmp_path, capsys):
    src = two_classes(tmp_path / "in")
    assert cli.main(["protect", str(src), str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert cli.main(["protect", str(src), str(tmp_path / "o"), "--device", "tpu9"]) == 2
    assert "not a device" in capsys.readouterr().err


def test_every_protect_flag_has_help(monkeypatch):
    """``protect --epochs/--portion/--batch-size/--seed`` and the rest: each has help text."""
    import argparse

    seen = {}

    def capture(self, argv=None, namespace=None):
        seen["parser"] = self
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        cli.main(["protect", "a", "b"])
    sub = next(a for a in seen["parser"]._actions if isinstance(a, argparse._SubParsersAction))
    actions = sub.choices["protect"]._actions
    flags = {s for a in actions for s in a.option_strings}
    assert {"--device", "--size", "--resume", "--overwrite", "--force", "--epochs", "--portion",
            "--batch-size", "--seed", "--save-protection", "--checkpoint"} <= flags
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]


def test_ctrl_c_leaves_no_temporaries_and_resume_finishes(tmp_path, ckpt, monkeypatch, capsys):
    """Ctrl-C after two images (while the third is being renamed into place): exit code 130
    with one line, no temporary file, a manifest of what is done; ``--resume`` keeps those two
    (hashes match) and writes the rest, byte-identical to an uninterrupted run."""
    src = two_classes(tmp_path / "in", n=3)
    out = tmp_path / "out"
    real, calls = os.replace, []

    def replace(a, b):
        if str(b).endswith(".png"):
            calls.append(b)
            if len(calls) == 3:
                raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(SystemExit) as stop:
        cli.main(["protect", str(src), str(out), "--checkpoint", str(ckpt)])
    monkeypatch.setattr(os, "replace", real)
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted after 2 images" in err and "--resume" in err
    assert no_temporaries(out) and not (out / P.JOURNAL).exists()
    statuses = [r["status"] for r in rows_of(out).values()]
    assert statuses == ["ok"] * 2 + [P.NOT_DONE] * 4
    s = protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert (s["written"], s["resumed"]) == (4, 2)
    full = protect_folder(src, tmp_path / "full", checkpoint=ckpt)
    assert rows_of(out) == rows_of(tmp_path / "full") and full["written"] == 6
    for r in rows_of(out).values():
        assert (out / r["output"]).read_bytes() == (tmp_path / "full" / r["output"]).read_bytes()


def test_ctrl_c_while_training_writes_nothing(tmp_path, monkeypatch):
    """Ctrl-C during training on the spot: :class:`Interrupted` (a KeyboardInterrupt) saying
    nothing was written, and no output folder."""
    src = two_classes(tmp_path / "in")

    def train(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "_train", train)
    with pytest.raises(Interrupted, match="while training; nothing was written"):
        protect_folder(src, tmp_path / "out", size=16)
    assert not (tmp_path / "out").exists()


def test_resume_after_a_kill_uses_the_journal(tmp_path, ckpt, monkeypatch):
    """A run killed outright (no manifest written) leaves its journal and maybe a temporary
    file; ``--resume`` keeps the journaled images and removes the leftover."""
    src = two_classes(tmp_path / "in", n=3)
    out = tmp_path / "out"
    real, calls = P.encode_png, []

    def killed(*a):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit(9)  # not a Ctrl-C: nothing is cleaned up, as after SIGKILL
        return real(*a)

    monkeypatch.setattr(P, "encode_png", killed)
    with pytest.raises(SystemExit):
        protect_folder(src, out, checkpoint=ckpt)
    monkeypatch.setattr(P, "encode_png", real)
    assert (out / P.JOURNAL).exists() and not (out / P.MANIFEST).exists()
    (out / "cats" / ".img9.png.tmp99999").write_bytes(b"half")
    s = protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert (s["written"], s["resumed"]) == (3, 3)
    assert no_temporaries(out) and not (out / P.JOURNAL).exists()


def test_resume_rewrites_what_changed(tmp_path, ckpt):
    """``--resume`` keeps only outputs whose source, protection and output hashes match: a
    changed input is written again; an output changed since it was written (a user's edit)
    is neither replaced nor removed: refused, naming it, until it is moved away; another
    protection is refused on --resume (--overwrite rewrites all); the output of a removed
    input is listed as stale, and ``--overwrite`` removes it."""
    src = two_classes(tmp_path / "in")
    out = tmp_path / "out"
    protect_folder(src, out, checkpoint=ckpt)
    (out / "cats" / "img0.png").write_bytes(b"tampered")
    save(src / "dogs" / "img1.png", photo(40, 48, seed=99))
    for flags in ({"resume": True}, {"overwrite": True}):
        with pytest.raises(ProtectError, match=r"1 output\(s\) changed since a run wrote "
                                               r"them \(cats/img0.png\)"):
            protect_folder(src, out, checkpoint=ckpt, **flags)
    assert (out / "cats" / "img0.png").read_bytes() == b"tampered"
    (out / "cats" / "img0.png").unlink()
    s = protect_folder(src, out, checkpoint=ckpt, resume=True)
    assert (s["written"], s["resumed"]) == (2, 2)
    assert rgb(out / "cats" / "img0.png").shape == (40, 48, 3)
    other = make_protection(tmp_path / "other.pt", size=16)
    with pytest.raises(ProtectError, match=r"other settings \(checkpoint \(SHA-256\): "
                                           r"earlier \w+; now \w+; --size: earlier 32; now 16"):
        protect_folder(src, out, checkpoint=other, resume=True)
    s = protect_folder(src, out, checkpoint=other, overwrite=True)
    assert (s["written"], s["resumed"]) == (4, 0)
    (src / "cats" / "img1.png").unlink()         # its output stays, listed as stale
    protect_folder(src, out, checkpoint=other, resume=True)
    assert rows_of(out)["cats/img1.png"]["status"] == P.STALE
    s = protect_folder(src, out, checkpoint=other, overwrite=True)
    assert s["written"] == 3 and not (out / "cats" / "img1.png").exists()


def test_one_class_is_refused_without_force(tmp_path, ckpt):
    src = tmp_path / "in"
    for i in range(2):
        save(src / "only" / f"{i}.png", photo(20, 20, seed=i))
    with pytest.raises(ProtectError, match="one class .*--force"):
        protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt, force=True)
    assert s["written"] == 2 and any("one class" in w for w in s["warnings"])


def test_every_input_file_is_in_the_manifest(tmp_path, ckpt):
    """Non-images, ``.DS_Store``, dangling symlinks, unreadable files, files outside a class
    folder, hidden folders, symlinked folders: each a row with its reason; animated GIFs and
    multi-page TIFFs: their first frame, said so; an empty class folder takes no index."""
    src = tmp_path / "in"
    save(src / "a" / "x.png", photo(20, 24))
    (src / "b_empty").mkdir(parents=True)
    (src / "b_empty" / "notes.txt").write_text("no images here")
    save(src / "c" / "y.png", photo(20, 24, seed=1))
    (src / "c" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (src / "c" / "broken.jpg").write_bytes(b"not an image")
    (src / "c" / "gone.png").symlink_to(src / "c" / "missing.png")
    (src / "c" / "linked").symlink_to(src / "a")
    (src / "README.txt").write_text("top-level file")
    save(src / ".hidden" / "z.png", photo(20, 24))
    frames = [Image.fromarray(photo(20, 24, seed=k)) for k in range(3)]
    frames[0].save(src / "c" / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(src / "c" / "pages.tif", save_all=True, append_images=frames[1:2])
    s = protect_folder(src, tmp_path / "out", checkpoint=ckpt)
    rows = rows_of(tmp_path / "out")
    expect = {
        "a/x.png": "ok", "c/y.png": "ok",
        "b_empty/notes.txt": "skipped: not an image (extension '.txt')",
        "c/.DS_Store": "skipped: not an image (no image extension)",
        "c/broken.jpg": "skipped: unreadable (UnidentifiedImageError",
        "c/gone.png": "skipped: dangling symlink",
        "c/linked": "skipped: symlinked folder (not followed)",
        "README.txt": "skipped: not in a class folder",
        ".hidden/z.png": "skipped: in a hidden folder",
        "c/anim.gif": "ok: first of 3 frames only",
        "c/pages.tif": "ok: first of 2 frames only",
    }
    assert set(rows) == set(expect)
    for k, v in expect.items():
        assert rows[k]["status"].startswith(v), (k, rows[k]["status"])
    assert s["classes"] == ["a", "c"] and rows["c/y.png"]["class"] == "c"
    assert any("'b_empty' holds no image files" in w for w in s["warnings"])
    assert (s["written"], s["skipped"]) == (4, 7)


# --------------------------------------------------------------------------- resolution
def test_a_large_photo_gets_a_full_spectrum_perturbation(tmp_path):
    """A 1024×768 photo's written perturbation keeps a meaningful share of its energy above
    radial frequency 0.1, as much as the 64×64 class pattern itself (it is tiled at native
    scale); the old bilinear stretch of the same pattern keeps almost none there."""
    ck = make_protection(tmp_path / "fuse64.pt", size=64)
    src = two_classes(tmp_path / "in")
    save(src / "cats" / "big.png", photo(768, 1024, seed=3))
    protect_folder(src, tmp_path / "out", checkpoint=ck)
    before = torch.from_numpy(rgb(src / "cats" / "big.png")).permute(2, 0, 1).float()
    after = torch.from_numpy(rgb(tmp_path / "out" / "cats" / "big.png")).permute(2, 0, 1).float()

    def share_above(delta, r=0.1):
        energy = spectral.dct2(delta) ** 2
        high = spectral.radial_frequency(delta.shape[-2:]) > r
        return float(energy[..., high].sum() / energy.sum())

    pattern = protections.load(ck).deltas[0:1]
    written = share_above(after - before)
    # the photo's perturbation has the spectrum the pattern has at the working size (here an
    # untrained generator's: 0.19 above r = 0.1; FUSE's shipped CIFAR fits: 0.03-0.9)
    assert written > 0.1 and abs(written - share_above(pattern[0] * 255)) < 0.05
    stretched = torch.nn.functional.interpolate(pattern, size=(768, 1024), mode="bilinear",
                                                align_corners=False)[0]
    assert share_above(stretched) < 0.01


def test_training_on_the_spot_works_at_the_working_size(tmp_path):
    """Trained on the spot at ``size=16``: 16×16 class patterns, saved before writing, tiled
    over images of other sizes within the budget."""
    src = two_classes(tmp_path / "in", size=(24, 40))
    saved = tmp_path / "fuse.pt"
    s = protect_folder(src, tmp_path / "out", size=16, epochs=1, batch_size=4,
                       surrogate_steps=1, save_protection=saved)
    assert s["size"] == (16, 16) and s["written"] == 4 and s["max_abs_delta"] <= BUDGET
    assert tuple(protections.load(saved).deltas.shape) == (2, 3, 16, 16)


# --------------------------------------------------------------------------- memory
MEASURE = """
import sys
from pathlib import Path
from fuselib.protect import protect_folder
from fuselib.utils import status_mb as status

warm, src, out, ckpt, n = sys.argv[1:]
protect_folder(warm, out + "_warm", checkpoint=ckpt)  # every lazy import and first-call cost
Path("/proc/self/clear_refs").write_text("5")         # reset the peak (VmHWM) to the current RSS
base = status("VmRSS")
s = protect_folder(src, out, checkpoint=ckpt)
assert s["written"] == int(n), s
print(status("VmHWM") - base)
"""


def _photos(root, n):
    for i in range(n):
        save(root / ("a", "b")[i % 2] / f"{i}.jpg", photo(480, 640, seed=i), quality=90)
    return root


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path, ckpt):
    """How much the peak RSS grows during a run (a fresh process, warmed up on two photos) is
    the same within 10 MB for 16 and for 64 photos of 640×480; held in memory at once, the 48
    extra would take 44 MB as uint8 alone (measured: a run that keeps every decoded photo grows
    53 MB more for 80 photos than for 20; this one, under 1 MB). glibc's mmap threshold is fixed
    so that freed image buffers leave the RSS at once (no allocator noise)."""
    warm = _photos(tmp_path / "warm", 2)
    env = dict(os.environ, FUSELIB_PROGRESS="0", OMP_NUM_THREADS="1",
               MALLOC_MMAP_THRESHOLD_="131072")
    growth = {}
    for n in (16, 64):
        src = _photos(tmp_path / f"in{n}", n)
        done = subprocess.run([sys.executable, "-c", MEASURE, str(warm), str(src),
                               str(tmp_path / f"out{n}"), str(ckpt), str(n)],
                              capture_output=True, text=True, env=env,
                              cwd=Path(__file__).resolve().parent.parent)
        assert done.returncode == 0, done.stderr[-2000:]
        growth[n] = float(done.stdout.split()[-1])
    assert growth[64] - growth[16] < 10, growth
