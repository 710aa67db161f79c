"""Protect a user's own image folder with FUSE: ``fuselib protect INPUT_DIR OUTPUT_DIR``.

``INPUT_DIR`` is an ImageFolder tree (``INPUT_DIR/<class>/.../<image>``, any size, any format
Pillow reads). The output mirrors the tree with every readable image written as a lossless PNG
(``name.png``; a lossy format would destroy the perturbation), each within ‖δ‖∞ ≤ round(ε·255)
of its original. A manifest (``manifest.csv``: file, class, size, PSNR, max |δ|, status) lists
every input file, unreadable ones included (status ``skipped: ...``).

The perturbations come from a trained FUSE protection (``checkpoint=`` a file written by
``Protection.save`` or ``fuselib fit fuse``) or from one trained on the spot on the
folder's images resized to ``train_size``. When every image has the same size the class-wise
perturbation is the class mean of the generator's outputs at that size (the generator is fully
convolutional); otherwise each class's perturbation at the training size is resized
(bilinear, so it stays within ε) to each image's size.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data, protections
from .utils import atomic_write


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _write_png(img: torch.Tensor, path: Path) -> None:
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp, format="PNG")


def _check_dirs(src: Path, dst: Path) -> None:
    src, dst = src.resolve(), dst.resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"input folder {src} does not exist")
    if dst == src or src in dst.parents:
        raise ValueError(f"refusing to write into the input tree: output {dst} is (inside) "
                         f"input {src}; choose a folder outside it")
    if dst in src.parents:
        raise ValueError(f"output {dst} contains the input {src}; choose a separate folder")


def protect_folder(input_dir, output_dir, checkpoint=None, train_size: int = 32, seed: int = 0,
                   device=None, **fuse_settings) -> dict:
    """Protect every image under ``input_dir`` into ``output_dir``; returns a summary dict."""
    src, dst = Path(input_dir), Path(output_dir)
    _check_dirs(src, dst)
    folder = data.load_folder(src, size=None)
    labels = folder.labels
    if checkpoint is not None:
        p = protections.load(checkpoint)
        if p.name != "fuse":
            raise ValueError(f"{checkpoint} holds a {p.name!r} protection, not fuse")
        if int(labels.max()) >= p.deltas.shape[0]:
            raise ValueError(f"{checkpoint} was trained on {p.deltas.shape[0]} classes; "
                             f"{src} has {len(folder.classes)}")
    else:
        small = torch.stack([data.resize(im, train_size) for im in folder.images])
        p = protections.get("fuse", seed=seed, **fuse_settings)
        if device is not None:
            p.device = torch.device(device)
        p.fit(small, labels)
    sizes = {tuple(im.shape) for im in folder.images}
    if len(sizes) == 1 and p.cfg.input == "images":
        class_deltas = p.perturbations_for(torch.stack(folder.images), labels)
        per_size = {sizes.pop(): class_deltas}
    else:
        per_size = {}

    rows = []
    for img, y, rel in zip(folder.images, labels.tolist(), folder.paths):
        key = tuple(img.shape)
        if key not in per_size:
            per_size[key] = F.interpolate(p.deltas, size=img.shape[-2:], mode="bilinear",
                                          align_corners=False).clamp(-p.eps, p.eps)
        d = per_size[key][y]
        out = p.to_uint8(img[None], (img.float()[None] / 255 + d[None]))[0]
        target = dst / rel.with_suffix(".png")
        _write_png(out, target)
        rows.append({"file": str(rel), "output": str(target.relative_to(dst)),
                     "class": folder.classes[y], "size": f"{img.shape[2]}x{img.shape[1]}",
                     "psnr_db": round(psnr(out, img), 2),
                     "max_abs_delta": int((out.int() - img.int()).abs().max()),
                     "status": "ok"})
    for rel, why in folder.errors:
        rows.append({"file": str(rel), "output": "", "class": rel.parts[0], "size": "",
                     "psnr_db": "", "max_abs_delta": "", "status": f"skipped: {why}"})
    manifest = dst / "manifest.csv"
    with atomic_write(manifest) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    return {"written": len(ok), "skipped": len(folder.errors), "manifest": manifest,
            "min_psnr_db": min(r["psnr_db"] for r in ok),
            "max_abs_delta": max(r["max_abs_delta"] for r in ok), "protection": p}
