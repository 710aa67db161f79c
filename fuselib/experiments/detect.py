"""Is this dataset unlearnable, and which of its images? Detection without a clean reference.

Unlearnable examples work because they are *shortcuts*: a perturbation that a network fits far
more easily than the images' content. Zhu, Yu and Gao ("Detection and Defense of Unlearnable
Examples", AAAI 2024; repository hala64/udp, ``poison_detection.py``) show that the shortcut is
nearly linearly separable, so a linear classifier or a two-layer network trained on the raw
pixels fits poisoned data to near 100% training accuracy where clean data stays far lower (their
bound: 0.7 on CIFAR-10). :func:`scores` measures exactly that:

* two models on the flattened pixels — a linear classifier and a two-layer network of
  :data:`HIDDEN` hidden units — each trained for the fixed short :data:`SCHEDULE` from a seed,
  then their accuracy on the training set itself;
* on the data as given and after an ideal radial DCT low-pass at :data:`LOWPASS` (0.25): FUSE
  claims its signal survives that filter, so a detector must look there too (a shortcut that the
  filter removes only shows in the first column, one that survives shows in both).

Training accuracy of clean data depends on how many images there are (the fewer, the easier to
memorise) and on their size, so each score is compared with clean data of the same size and
resolution: :mod:`.detect_calibration` holds the training accuracies of clean CIFAR-10 (32 px)
and Imagenette (64 px) subsets at several sizes and seeds, written by :func:`calibrate`
(``fuselib detect --calibrate``). A score's *excess* is ``(acc − clean) / (1 − clean)``: 0 is
clean data's accuracy, 1 a perfect fit; the dataset is flagged when any of the four excesses is
over :data:`FLAG_EXCESS` (half-way from clean data to a perfect fit). The clean accuracy at a
size between two calibrated ones is interpolated in log(size).

Per image (:func:`per_image`), the score is how early and how confidently an image is learned:
the mean, over the epochs of the schedule, of the linear model's probability of the image's own
label when it meets the image in training (recorded during the training pass itself). Shortcuts
are learned first (Zhu et al., Fig. 2: poisoned training accuracy reaches ~100% within a few
epochs; "Iterative Filtering", arXiv 2408.08143, builds on poisoned samples being fitted faster
than clean ones in a mixed set), so in a partly poisoned set the poisoned images rank first. The
per-image model sees the high-pass residual (:data:`PER_IMAGE_VIEW`: the image minus its radial
DCT low-pass at 0.25, mean kept): an image's content lies mostly in that low band, most of an
8/255 perturbation's energy does not, so without the low band the shortcut is a larger share of
what the model fits and the poisoned images stand out sooner. A perturbation that lives at low
frequencies (LSP's 8×8 patches) is not singled out this way; ``bench/detect_zoo.py`` measures
the score over the zoo (``results/detect_zoo_cpu.md``).

Deviations from hala64/udp: their two-layer network's hidden layer is as wide as the input
(3,072 units) and they train for 100 epochs of SGD; here :data:`HIDDEN` = 128 units and a short
schedule, so a dataset takes seconds on 2 CPU cores; images larger than 48 px are resized to
64 px (antialiased bilinear) so that the calibration's two resolutions cover every input; a
threshold calibrated per size replaces their fixed 0.7.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import countermeasures, data, poisons, protections
from ..utils import atomic_write, write_json, write_text
from .store import writable_dir

LOWPASS = 0.25                  # the filter FUSE claims its signal survives
HIDDEN = 128                    # the two-layer network's hidden units
SIDES = (32, 64)                # the resolutions calibrated; other sizes are resized to one
MIN_IMAGES = 200                # fewer cannot tell a shortcut from memorisation
FLAG_EXCESS = 0.5               # flagged: over half-way from clean data's accuracy to 100%
SCHEDULE = dict(epochs=6, batch_size=128, lr=1e-3, weight_decay=0.0)  # Adam, constant rate
MODELS = ("linear", "mlp")
VIEWS = ("none", f"lowpass:{LOWPASS}")
PER_IMAGE_VIEW = f"highpass:{LOWPASS}"  # what the per-image model sees (see the docstring)
SCORE_KEYS = tuple(f"{m}/{v}" for v in VIEWS for m in MODELS)  # the order scores() gives
# the clean subsets the thresholds come from: (dataset, sizes, seeds)
CALIBRATION_SETS = (("cifar10", (500, 1000, 2000, 5000, 10000), (0, 1, 2)),
                    ("imagenette:64", (500, 1000, 2000, 5000, 9469), (0, 1)))


def detection_side(h: int) -> int:
    """The resolution an image of side ``h`` is scored at: 32 up to 48 px, else 64."""
    return 32 if h <= 48 else 64


def check_data(images, labels) -> tuple:
    """``(images, labels)`` checked for detection: uint8 ``(N, 3, H, W)`` square images, at least
    :data:`MIN_IMAGES` of them, at least two classes; a one-line ValueError otherwise."""
    images = data.check_images(images)
    labels = data.check_labels(labels, images.shape[0])
    n = images.shape[0]
    if n < MIN_IMAGES:
        raise ValueError(f"detection needs at least {MIN_IMAGES} images (a model memorises fewer "
                         f"whatever they hold), got {n}")
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"detection needs square images, got {images.shape[-2]}x"
                         f"{images.shape[-1]}")
    if int(torch.unique(labels).numel()) < 2:
        raise ValueError("detection needs at least two classes in the labels")
    return images, labels


def features(images: torch.Tensor, view: str = "none") -> torch.Tensor:
    """The float features the models see: ``view`` (``none`` or a countermeasure spec) applied
    to the uint8 images, resized to :func:`detection_side`, flattened, each channel centred and
    scaled by its mean and standard deviation over the whole set."""
    side = detection_side(images.shape[-1])
    x = countermeasures.get(view)(images) if view != "none" else images
    x = data.resize(x, side).float().div_(255)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    return ((x - mean) / std).flatten(1)


def _model(kind: str, dim: int, n_classes: int) -> torch.nn.Module:
    if kind == "linear":
        return torch.nn.Linear(dim, n_classes)
    if kind == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(dim, HIDDEN), torch.nn.ReLU(),
                                   torch.nn.Linear(HIDDEN, n_classes))
    raise ValueError(f"unknown detection model {kind!r}; known: {', '.join(MODELS)}")


def fit(x: torch.Tensor, labels: torch.Tensor, kind: str = "mlp", seed: int = 0,
        epochs: int | None = None) -> dict:
    """Train ``kind`` on features ``x`` for the :data:`SCHEDULE` (seeded init and order).

    Returns ``{"accuracy": training-set accuracy after the schedule, "confidence": per image,
    the mean over epochs of the probability of its own label when it was trained on,
    "first_epoch": per image, the first epoch (1-based) whose training pass classified it right
    (epochs + 1 when never), "seconds"}``."""
    epochs = SCHEDULE["epochs"] if epochs is None else int(epochs)
    n = x.shape[0]
    n_classes = int(labels.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _model(kind, x.shape[1], n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=SCHEDULE["lr"],
                           weight_decay=SCHEDULE["weight_decay"])
    gen = torch.Generator().manual_seed(seed + 1)
    conf = torch.zeros(n)
    first = torch.full((n,), epochs + 1, dtype=torch.long)
    bs = SCHEDULE["batch_size"]
    t0 = time.perf_counter()
    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                p = logits.detach().softmax(1).gather(1, labels[idx, None]).squeeze(1)
                conf[idx] += p
                right = logits.detach().argmax(1) == labels[idx]
                first[idx[right & (first[idx] > epochs)]] = epoch
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 4096]).argmax(1) == labels[i:i + 4096]).sum())
                      for i in range(0, n, 4096))
    return {"accuracy": correct / n, "confidence": conf / epochs, "first_epoch": first,
            "seconds": time.perf_counter() - t0}


def scores(images, labels, seed: int = 0, with_images: bool = False) -> dict:
    """Training accuracy of each model in :data:`MODELS` on each view in :data:`VIEWS`:
    ``{"accuracy": {"linear/none": ..., ...}, "seconds", "cpu_seconds" (of this process, all
    threads), "threads", "n", "side"}``; with ``with_images``
    also ``"confidence"`` (the per-image score, :func:`per_image`) and ``"first_epoch"`` (the
    first epoch whose training pass classified the image right)."""
    images, labels = check_data(images, labels)
    t0, c0 = time.perf_counter(), time.process_time()
    acc, out = {}, {}
    for view in VIEWS:
        x = features(images, view)
        for kind in MODELS:
            acc[f"{kind}/{view}"] = fit(x, labels, kind, seed)["accuracy"]
    if with_images:
        r = fit(features(images, PER_IMAGE_VIEW), labels, "linear", seed)
        out = {"confidence": r["confidence"], "first_epoch": r["first_epoch"]}
    return {"accuracy": acc, **out, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0, "threads": torch.get_num_threads(),
            "n": int(images.shape[0]), "side": detection_side(images.shape[-1])}


# --------------------------------------------------------------------------- calibration
def calibration() -> dict:
    """The shipped clean calibration (:mod:`.detect_calibration`): ``{side: {n: {score:
    [accuracy per seed]}}}``."""
    from .detect_calibration import CLEAN

    return {int(s): {int(n): v for n, v in by_n.items()} for s, by_n in CLEAN.items()}


def clean_accuracy(side: int, n: int, score: str, table: dict | None = None) -> float:
    """Clean data's mean training accuracy for ``score`` at ``n`` images of ``side`` px,
    interpolated in log(n) between the calibrated sizes (the nearest size outside them)."""
    table = calibration() if table is None else table
    if side not in table:
        raise ValueError(f"no clean calibration at {side} px; calibrated: {sorted(table)}")
    sizes = sorted(table[side])
    mean = {m: sum(table[side][m][score]) / len(table[side][m][score]) for m in sizes}
    if n <= sizes[0]:
        return mean[sizes[0]]
    if n >= sizes[-1]:
        return mean[sizes[-1]]
    hi = next(m for m in sizes if m >= n)
    lo = sizes[sizes.index(hi) - 1]
    t = (math.log(n) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return mean[lo] + t * (mean[hi] - mean[lo])


def excess(acc: float, clean: float) -> float:
    """``(acc − clean) / (1 − clean)``: 0 at clean data's accuracy, 1 at a perfect fit."""
    return (acc - clean) / max(1e-9, 1 - clean)


def verdict(result: dict, table: dict | None = None) -> dict:
    """The dataset-level verdict of :func:`scores`' result: each score beside clean data's
    accuracy at the same size and resolution, its excess, and ``flagged`` when the largest
    excess (``score``) is over :data:`FLAG_EXCESS`."""
    rows = []
    for key, acc in result["accuracy"].items():
        clean = clean_accuracy(result["side"], result["n"], key, table)
        rows.append({"score": key, "accuracy": acc, "clean": clean,
                     "threshold": clean + FLAG_EXCESS * (1 - clean),
                     "excess": excess(acc, clean)})
    top = max(r["excess"] for r in rows)
    return {"rows": rows, "score": top, "flagged": top > FLAG_EXCESS}


def calibrate(sets=CALIBRATION_SETS, data_root=None, progress=print) -> dict:
    """Scores of clean subsets (class-balanced, subset seed = model seed): ``{side: {n: {score:
    [accuracy per seed]}}}`` and the seconds each took."""
    table: dict = {}
    for name, sizes, seeds in sets:
        x, y = data.load(name, "train", data_root)
        side = detection_side(x.shape[-1])
        for n in sizes:
            for seed in seeds:
                sx, sy = data.subset(x, y, n, seed)
                r = scores(sx, sy, seed)
                row = table.setdefault(side, {}).setdefault(int(sy.shape[0]), {})
                for k, v in r["accuracy"].items():
                    row.setdefault(k, []).append(round(v, 4))
                if progress:
                    progress(f"{name} n={sy.shape[0]} seed={seed}: "
                             + ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items())
                             + f" ({r['seconds']:.1f} s)")
    return table


def write_calibration(table: dict, path=None, command: str = "fuselib detect --calibrate") -> Path:
    """The calibration as the Python module :mod:`.detect_calibration` (atomically)."""
    path = Path(path) if path is not None else Path(__file__).with_name("detect_calibration.py")
    lines = ['"""Clean data\'s training accuracy under fuselib.experiments.detect\'s schedule:',
             "``CLEAN[side][n][score]`` is one accuracy per seed (subset seed = model seed).",
             "", f"Generated by ``{command}`` on {time.strftime('%Y-%m-%d')}; do not edit.",
             '"""', "", "CLEAN = {"]
    for side in sorted(table):
        lines.append(f"    {side}: {{")
        for n in sorted(table[side]):
            lines.append(f"        {n}: {{")
            lines += [f"            {k!r}: {v!r}," for k, v in table[side][n].items()]
            lines.append("        },")
        lines.append("    },")
    lines.append("}")
    return write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- per image
def per_image(images, labels, seed: int = 0, epochs: int | None = None) -> torch.Tensor:
    """Each image's detection score (higher: learned earlier and more confidently, more likely
    poisoned): the linear model's mean probability of the image's label over the epochs of the
    schedule, trained on the high-pass residual :data:`PER_IMAGE_VIEW`."""
    images, labels = check_data(images, labels)
    return fit(features(images, PER_IMAGE_VIEW), labels, "linear", seed, epochs)["confidence"]


def flag_top(score: torch.Tensor, share: float) -> torch.Tensor:
    """Boolean mask of the ``round(share·N)`` highest scores (ties broken by index)."""
    k = int(round(share * score.shape[0]))
    mask = torch.zeros(score.shape[0], dtype=torch.bool)
    mask[torch.argsort(score, descending=True, stable=True)[:k]] = True
    return mask


def precision_recall(flagged: torch.Tensor, poisoned: torch.Tensor) -> tuple:
    """``(precision, recall)`` of a flag mask against the true poison mask."""
    tp = int((flagged & poisoned).sum())
    return tp / max(1, int(flagged.sum())), tp / max(1, int(poisoned.sum()))


def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """The probability that a random positive scores above a random negative (ties half):
    the area under the ROC curve, by ranks."""
    s = torch.cat([pos.double(), neg.double()])
    order = torch.argsort(s, stable=True)
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, s.numel() + 1, dtype=torch.float64)
    for v in torch.unique(s):  # average ranks over ties
        tie = s == v
        if int(tie.sum()) > 1:
            ranks[tie] = ranks[tie].mean()
    n1, n0 = pos.numel(), neg.numel()
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------- the command's input
def load_source(source, labels=None, scale: str = "cpu", seed: int = 0,
                dataset: str = "cifar10", data_root=None) -> tuple:
    """``(images, labels, description)`` of what ``fuselib detect`` scores: a file or folder in
    any format :func:`fuselib.poisons.load` reads (the audit's reader), else a registered
    protection spec, whose protected training set at ``scale`` is made (or read from the cache)
    as :func:`.runner.protected_data` makes it for a run. Fails in one line before any work when
    ``source`` is neither."""
    if Path(source).exists():
        images, y, raw, warnings = poisons.load(source, labels)
        return images, y, f"{source} ({raw.format})", warnings
    try:
        protections.get(str(source))
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else e
        raise FileNotFoundError(f"{source} is neither a file or folder nor a protection spec "
                                f"({msg})") from None
    if labels is not None:
        raise ValueError("--labels is for data files; a protection's data has its own labels")
    from .runner import protected_data
    from .scales import check_scale

    check_scale(scale)
    data.info(dataset, data_root)  # the dataset's files verified now, before the fit
    _, px, y = protected_data(str(source), scale, seed, dataset, data_root=data_root)
    return px, y, f"{source} on {dataset} at scale {scale}, seed {seed}", []


def check_out(out) -> Path:
    """``out`` may receive a detection report: new, empty, or an earlier report's folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT).is_file():
        raise FileExistsError(f"--out {out} is not empty and holds no earlier detection report")
    writable_dir(out.parent, f"the folder of --out {out}")
    return out


REPORT = "detect.json"


# --------------------------------------------------------------------------- the command's report
def detect(images, labels, seed: int = 0) -> dict:
    """:func:`scores` and :func:`verdict` in one report (a plain dict; ``confidence`` and
    ``first_epoch`` stay tensors)."""
    r = scores(images, labels, seed, with_images=True)
    return {**r, **verdict(r), "seed": int(seed), "flag_excess": FLAG_EXCESS,
            "schedule": dict(SCHEDULE), "hidden": HIDDEN, "lowpass": LOWPASS}


def markdown(report: dict, source: str) -> str:
    """The verdict as a Markdown section."""
    word = "FLAGGED: a shortcut is fitted" if report["flagged"] else "not flagged"
    lines = [f"## Detection: {word}", "",
             f"{source}: {report['n']} images scored at {report['side']} px, seed "
             f"{report['seed']}, {report['seconds']:.1f} s ({report['cpu_seconds']:.1f} s of CPU "
             f"time on {report['threads']} threads). Training accuracy after "
             f"{report['schedule']['epochs']} epochs (Adam, batch "
             f"{report['schedule']['batch_size']}) beside clean data of the same size; excess "
             f"0 = clean, 1 = a perfect fit, flagged over {report['flag_excess']}.", "",
             "| model / view | training accuracy | clean data | threshold | excess |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['score']} | {r['accuracy']:.3f} | {r['clean']:.3f} | {r['threshold']:.3f} "
              f"| {r['excess']:+.2f} |" for r in report["rows"]]
    return "\n".join(lines) + "\n"


def write(report: dict, out, labels, source: str) -> Path:
    """``detect.md``, ``per_image.csv`` and ``detect.json`` into the folder ``out`` (each file
    written to a temporary name, then renamed)."""
    out = check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "detect.md", markdown(report, source))
    write_per_image(report, out / "per_image.csv", labels)
    plain = {k: v for k, v in report.items() if k not in ("confidence", "first_epoch")}
    write_json(out / REPORT, {**plain, "source": source})
    return out


def write_per_image(report: dict, path, labels) -> Path:
    """One row an image: index, label, score (mean confidence), first right epoch (atomically)."""
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["index", "label", "detect_score", "first_epoch"])
            wr.writerows([i, int(y), f"{float(c):.6f}", int(e)] for i, (y, c, e) in enumerate(
                zip(labels.tolist(), report["confidence"], report["first_epoch"])))
    return Path(path)


__all__ = ["CALIBRATION_SETS", "FLAG_EXCESS", "LOWPASS", "MODELS", "PER_IMAGE_VIEW", "SCHEDULE",
           "SCORE_KEYS", "VIEWS", "auc", "calibrate", "calibration", "check_data", "check_out",
           "clean_accuracy", "detect", "excess", "features", "fit", "flag_top", "load_source",
           "markdown", "per_image", "precision_recall", "scores", "verdict", "write",
           "write_calibration", "write_per_image"]
