"""Display names: the one map from spec strings to what a table, a figure or a legend shows.

Every table the README, RESULTS.md and the notebooks print, and every figure the notebooks
draw, names a protection or a countermeasure through :func:`protection` and
:func:`countermeasure`, so that ``none`` never stands for two things (``clean data`` as a
protection, ``no filter`` as a countermeasure) and no raw spec such as
``bandstop:lo=0.25,hi=0.5`` reaches a reader. A plan may rename a spec for its own table when
the context decides the name (which dataset a transfer was made on, an ablation's switches);
everything else comes from here.
"""
from __future__ import annotations

from ..registry import parse_spec

SAMPLE_EM_CPU = "em:mode=sample,pgd_steps=5,max_rounds=10"

# protections by spec: the method's name as its paper writes it, and what a variant changes
PROTECTIONS = {
    "none": "clean data",
    "random": "class-wise random noise",
    "random:mode=sample": "sample-wise random noise",
    "ar": "AR", "lsp": "LSP", "ops": "OPS", "cuda": "CUDA", "tap": "TAP", "rem": "REM",
    "dh": "DH", "uc": "UC", "gue": "GUE", "pue": "PUE", "vtg": "VTG", "pil": "PIL",
    "fuse": "FUSE",
    "em": "class-wise EM",
    "em:mode=sample": "sample-wise EM",
    SAMPLE_EM_CPU: "sample-wise EM (5 PGD steps, ≤ 10 rounds)",
    f"uc:eps={16 / 255}": "UC at ε 16/255",
    "pue:robust=True": "PUE, robust",
    "fuse:rsm_lowpass=0.5": "FUSE + low-pass rehearsal",
    "fuse:epochs=20": "FUSE, 20-epoch fit",
    "fuse:fast=True": "FUSE, fit in bf16",
    "fuse:rsm=False": "FUSE without RSM",
    "fuse:cbg=False": "FUSE without CBG",
    "fuse:rsm=False,cbg=False": "FUSE without RSM or CBG",
}
# datasets a transferred protection (``fuse@imagenette:128``) was made on
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN",
            "imagenette": "Imagenette", "imagenette:64": "Imagenette",
            "imagenette:128": "Imagenette"}

# countermeasures by registered name; a parameter follows the name (``low-pass 0.25``)
COUNTERMEASURES = {
    "none": "no filter", "lowpass": "low-pass", "highpass": "high-pass",
    "bandstop": "band-stop", "jpeg": "JPEG", "mean": "mean filter", "median": "median filter",
    "gaussian": "Gaussian filter", "bdr": "bit-depth reduction", "grayscale": "grayscale",
    "noise": "Gaussian noise", "cutout": "cutout", "cutmix": "CutMix", "mixup": "mixup",
    "adv": "adversarial training", "ueraser": "UEraser", "orthogonal": "orthogonal projection",
    "dvae": "D-VAE purification", "early_stop": "early stopping", "rsk": "sharpening + DCT (RSK)",
    "coin": "COIN", "sda": "stronger augmentation (SDA)", "sdaan": "SDA + adversarial noise",
    "chain": "a chain",
}

ARCHS = {None: "fastnet", "fastnet": "fastnet", "resnet18": "ResNet-18",
         "resnet50": "ResNet-50", "vgg11": "VGG-11", "densenet121": "DenseNet-121",
         "vit": "ViT"}


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _params(kwargs: dict) -> str:
    return ", ".join(_number(v) if k is None else f"{k} {_number(v)}"
                     for k, v in kwargs.items())


def protection(spec: str) -> str:
    """A protection's display name: ``"em"`` -> ``class-wise EM``; ``"fuse@imagenette:128"``
    -> ``FUSE made on Imagenette``; an unnamed variant keeps its parameters in words
    (``"fuse:rsm=False"`` -> ``FUSE (rsm False)``)."""
    spec = str(spec)
    base, at, where = spec.partition("@")
    if at:
        return f"{protection(base)} made on {DATASETS.get(where, where)}"
    if spec in PROTECTIONS:
        return PROTECTIONS[spec]
    name, kwargs = parse_spec(spec)
    head = PROTECTIONS.get(name, name)
    return f"{head} ({_params(kwargs)})" if kwargs else head


def countermeasure(spec: str) -> str:
    """A countermeasure's display name: ``"none"`` -> ``no filter``, ``"lowpass:0.25"`` ->
    ``low-pass 0.25``, ``"bandstop:lo=0.25,hi=0.5"`` -> ``band-stop 0.25–0.5``,
    ``"jpeg:10+lowpass:0.25"`` -> ``JPEG 10, then low-pass 0.25``."""
    spec = str(spec)
    if "+" in spec:
        return ", then ".join(countermeasure(s) for s in spec.split("+"))
    name, kwargs = parse_spec(spec)
    head = COUNTERMEASURES.get(name, name)
    if name == "adv":
        norm = kwargs.pop(None, "linf")
        head = f"adversarial training ({ {'linf': 'L∞', 'l2': 'L2'}.get(norm, norm) })"
    if name == "bandstop" and set(kwargs) == {"lo", "hi"}:
        return f"{head} {_number(kwargs['lo'])}–{_number(kwargs['hi'])}"
    if set(kwargs) <= {None, "cutoff", "quality"} and len(kwargs) == 1:
        return f"{head} {_number(next(iter(kwargs.values())))}"
    return f"{head} ({_params(kwargs)})" if kwargs else head


def arch(name) -> str:
    """An architecture's display name (``None``, the scale's default, is fastnet)."""
    return ARCHS.get(name, str(name))


def label(axis: str, value) -> str:
    """The display name of ``value`` on a table's axis (``protection``, ``countermeasure``,
    ``arch``, ``poison_ratio``); other axes show the value as it is."""
    if axis == "protection":
        return protection(value)
    if axis == "countermeasure":
        return countermeasure(value)
    if axis == "arch":
        return arch(value)
    if axis == "poison_ratio":
        return f"{float(value):.0%} protected"
    return str(value)
