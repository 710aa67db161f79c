"""All of the local CIFAR-10 in 25 MB, losslessly: what the GPU machine is sent.

The lent GPU machine takes at most 64 MiB with the working tree, and the six pickle batches are
184 MB (xz with a delta filter: ~115 MB). The local copy is itself a JPEG-75 re-encoding, so a
second JPEG-75 pass with Pillow reproduces 92% of its pixels exactly; the pack stores, per
batch, that JPEG stream and the (small, sparse) difference to the true pixels, both xz-compressed,
and the labels. Measured on ``data_batch_1`` (2,000 images): 303 bytes an image of JPEG (xz
removes the repeated headers) + 111 of residual, against 3,072 raw: about 25 MB for all 60,000.

    python bench/pack_cifar.py pack .gpudata/cifar10.pack        # here, once (a few minutes)
    python bench/pack_cifar.py unpack .gpudata/cifar10.pack /tmp/d/cifar10   # on the device

``unpack`` rebuilds the ``cifar-10-batches-py`` pickles and checks them against the local
copy's ``MD5SUMS`` (copied into the pack): a decoder that differs (another libjpeg) still gives
the exact pixels, because the residual is applied to *this* machine's decode of the JPEG
stream and the check fails loudly if the device decodes differently. Nothing is written at
the destination unless every batch checks.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import os
import pickle
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
MAGIC = b"FUSELIB-CIFARPACK1"


def _jpeg(images: np.ndarray) -> tuple:
    """JPEG-75 bytes of each image (N, 32, 32, 3) and their decode, with Pillow."""
    from PIL import Image

    blobs, decoded = [], []
    for im in images:
        b = io.BytesIO()
        Image.fromarray(im).save(b, "JPEG", quality=75)
        blobs.append(b.getvalue())
        decoded.append(np.asarray(Image.open(io.BytesIO(blobs[-1])).convert("RGB")))
    return blobs, np.stack(decoded)


def _decode(blobs: list) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])


def pack(src: Path, out: Path) -> None:
    root = src / "cifar-10-batches-py"
    if not (root / "test_batch").is_file():
        sys.exit(f"pack: {root} holds no CIFAR-10 batches")
    parts = []
    for name in BATCHES:  # those present (all six for the real thing)
        if not (root / name).is_file():
            continue
        raw = (root / name).read_bytes()
        d = pickle.loads(raw, encoding="latin1")
        pixels = np.ascontiguousarray(d["data"], np.uint8)
        at = raw.find(pixels.tobytes())  # the file is: pickle framing + the pixel bytes + a tail
        if at < 0:
            sys.exit(f"pack: {name}: the pixel array is not stored contiguously in the pickle")
        hwc = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        blobs, dec = _jpeg(hwc)
        residual = (hwc.astype(np.int16) - dec).astype(np.int8)
        meta = pickle.dumps({"name": name, "head": raw[:at], "tail": raw[at + pixels.nbytes:],
                             "lengths": np.array([len(b) for b in blobs], np.uint16).tobytes()},
                            protocol=4)
        body = [meta, lzma.compress(b"".join(blobs), preset=9),
                lzma.compress(residual.tobytes(), preset=9 | lzma.PRESET_EXTREME)]
        parts.append(body)
        print(f"{name}: {len(hwc)} images, JPEG {len(body[1]) / len(hwc):.0f} B + residual "
              f"{len(body[2]) / len(hwc):.0f} B an image", flush=True)
    extra = {"batches.meta": (root / "batches.meta").read_bytes(),
             "MD5SUMS": (src / "MD5SUMS").read_bytes()}
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        for piece in [pickle.dumps(extra, protocol=4)] + [p for body in parts for p in body]:
            f.write(struct.pack("<Q", len(piece)) + piece)
    os.replace(tmp, out)
    print(f"wrote {out}: {out.stat().st_size / 1e6:.1f} MB")


def _pieces(f):
    while True:
        head = f.read(8)
        if not head:
            return
        (n,) = struct.unpack("<Q", head)
        yield f.read(n)


def _rebuild(pieces, root: Path, sums: dict) -> list:
    """Write each batch of the pack into ``root``; the names whose MD5 does not match."""
    bad = []
    for i in range(1, len(pieces), 3):
        meta = pickle.loads(pieces[i])
        lengths = np.frombuffer(meta["lengths"], np.uint16)
        stream = lzma.decompress(pieces[i + 1])
        offsets = np.concatenate([[0], np.cumsum(lengths.astype(np.int64))])
        blobs = [stream[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        residual = np.frombuffer(lzma.decompress(pieces[i + 2]), np.int8).reshape(-1, 32, 32, 3)
        hwc = (_decode(blobs).astype(np.int16) + residual).astype(np.uint8)
        pixels = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)).tobytes()
        blob = meta["head"] + pixels + meta["tail"]
        (root / meta["name"]).write_bytes(blob)
        got = hashlib.md5(blob).hexdigest()
        ok = sums.get(meta["name"]) == got
        bad += [] if ok else [meta["name"]]
        print(f"{meta['name']}: {len(hwc)} images, md5 {'ok' if ok else 'MISMATCH ' + got}",
              flush=True)
    return bad


def unpack(pack_file: Path, dest: Path) -> None:
    with open(pack_file, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            sys.exit(f"unpack: {pack_file} is not a CIFAR-10 pack")
        pieces = list(_pieces(f))
    extra = pickle.loads(pieces[0])
    sums = {Path(line.split()[1]).name: line.split()[0]
            for line in extra["MD5SUMS"].decode().splitlines() if line.strip()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cifarpack_", dir=dest.parent))
    root = work / "cifar-10-batches-py"
    root.mkdir()
    try:
        bad = _rebuild(pieces, root, sums)
    except (lzma.LZMAError, pickle.UnpicklingError, ValueError, OSError) as e:
        shutil.rmtree(work)
        sys.exit(f"unpack: {pack_file} is damaged ({type(e).__name__}: {e}); nothing written")
    (root / "batches.meta").write_bytes(extra["batches.meta"])
    (work / "MD5SUMS").write_bytes(extra["MD5SUMS"])
    if bad:
        shutil.rmtree(work)
        sys.exit(f"unpack: {', '.join(bad)} did not rebuild exactly (this machine's JPEG decoder "
                 "differs from the packing one); nothing written")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(work, dest)
    print(f"wrote {dest} (every batch matches MD5SUMS)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack the local CIFAR-10 into one file")
    p.add_argument("out", type=Path)
    p.add_argument("--src", type=Path, default=None,
                   help="the folder holding cifar-10-batches-py/ (default: the data layer's)")
    u = sub.add_parser("unpack", help="rebuild the pickle batches from a pack, MD5-checked")
    u.add_argument("pack", type=Path)
    u.add_argument("dest", type=Path, help="the folder to hold cifar-10-batches-py/")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        src = a.src
        if src is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            import fuselib

            src = Path(fuselib.data.info("cifar10").path).parent
        a.out.parent.mkdir(parents=True, exist_ok=True)
        pack(src, a.out)
    else:
        unpack(a.pack, a.dest)


if __name__ == "__main__":
    main()
