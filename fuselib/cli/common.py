"""What every command shares: argument types that check a value while parsing, checks made
before any work, the shared flags, and how an error becomes one line."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from ..experiments import SCALES
from ..train import RECIPES

PACKAGE = Path(__file__).resolve().parent.parent  # fuselib: where a deliberate error comes from
# errors that are messages to the user when fuselib raises them (a bad argument, a missing
# file, a failed check): one line and exit code 2, not a traceback
USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError)


def flags() -> SimpleNamespace:
    """The flags the commands that train share, as ``add_argument`` keywords."""
    return SimpleNamespace(
        scale=dict(default="ci", choices=list(SCALES),
                   help="how much data and training: " + ", ".join(SCALES) + " (default ci; "
                        "smoke takes seconds, ci 1-2 minutes a run on 2 CPU cores)"),
        trainer=dict(default="fast", choices=list(RECIPES),
                     help="the classifier's recipe: fast (a small fastnet, CPU-friendly; "
                          "default), standard (the papers' ResNet-18 recipe) or vit (AdamW, "
                          "warm-up, cosine)"),
        seed=dict(type=seed_number, default=0,
                  help="seed of the classifier's training and of the protection's fit "
                       "(default 0)"),
        no_cache=dict(action="store_true",
                      help="recompute even if cached, and write nothing to the results cache"))


def whole_number(minimum: int = 1):
    """An argparse type: a whole number of at least ``minimum``."""

    def count(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return count


def seed_number(text):
    """A seed: a whole number NumPy and torch both take, 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 4294967295, got "
                                         f"{text!r}")
    return value


def positive_number(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a positive number is needed, got {text!r}")
    return value


def nonnegative_number(text):
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def budget(text):
    """An argparse type: an L∞ budget in (0, 1], as a number or a fraction (``8/255``)."""
    num, _, den = str(text).partition("/")
    try:
        value = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction such as 8/255, got "
                                         f"{text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text} = {value:.4g}")
    return value


def certify_setting(name: str, kind=float):
    """An argparse type for a setting of :func:`fuselib.certify.certify`, checked by its own
    range (so ``--q 2`` fails while parsing, naming ``--q``, before anything is trained)."""
    from ..certify import setting_error

    def setting(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        why = setting_error(name, value)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value

    return setting


def check_specs(protection_specs=(), countermeasure_specs=()):
    """Build every protection and countermeasure named, once, before any work: a bad name or
    parameter fails now, in one line naming its spec (not after the first runs trained)."""
    from .. import countermeasures, protections
    from ..experiments.scales import split_source

    for spec in protection_specs:  # NAME@DATASET: NAME made on DATASET (its data checked later)
        protections.get(split_source(spec)[0])
    for spec in countermeasure_specs:
        countermeasures.get(spec)


def check_cache(args):
    """Unless ``--no-cache``: the results cache must be writable, checked before the training
    whose result it would keep."""
    if not getattr(args, "no_cache", False):
        from ..experiments.store import check_results_writable

        check_results_writable()


def check_output_file(path, flag: str):
    """A file the command writes at its end (``--csv``): its folder must be writable now."""
    from ..experiments.store import writable_dir

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name")
    writable_dir(path.parent, f"the folder of {flag} {path}")


def header():
    from ..version import __version__
    from ..utils import default_device

    print(f"fuselib {__version__} | torch {torch.__version__} | device {default_device()} | "
          f"{torch.get_num_threads()} CPU threads")


def data_line(dataset: str, root=None):
    from .. import data

    info = data.info(dataset, root)
    what = {"official": "the official release",
            "jpeg75": "the local JPEG-75 re-encoding (see shared/data/cifar10/README.md)"}
    print(f"data: {dataset} at {info.path}\n      MD5 matched {info.variant!r}: "
          f"{what.get(info.variant, info.variant)}")
    return info


def one_run_flags(p, scale: dict, seed: dict, no_cache: dict, folder: bool = False) -> None:
    """The flags of a command that trains one classifier (evaluate; ``folder``: evaluate-folder,
    which fits no protection and has one trainer)."""
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **(seed if not folder else {
        **seed, "help": "seed of the classifier's training (default 0)"}))
    p.add_argument("--epochs", type=whole_number(), default=None,
                   help="training epochs (default: the scale's"
                        + (")" if folder else " for the trainer)"))
    p.add_argument("--no-cache", **no_cache)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def parse_bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def short_warning(message, category, filename, lineno, line=None):
    """Warnings that fuselib gives (an unreadable cache file, ...) as one line each."""
    if Path(filename).resolve().is_relative_to(PACKAGE):
        return f"fuselib: warning: {message}\n"
    return FORMAT_WARNING(message, category, filename, lineno, line)


def origin(e: BaseException):
    """The innermost frame that raised ``e``: ``(file, line)``."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None, None
    return Path(tb.tb_frame.f_code.co_filename).resolve(), tb.tb_lineno


def report_error(e: BaseException) -> int:
    """One line for an error fuselib raised on purpose (exit 2). An error raised elsewhere (in
    torch, pandas, Python itself: a bare KeyError) may be a bug: its line also says where it
    came from and how to see the traceback (exit 1)."""
    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    print(f"fuselib: error: {message}", file=sys.stderr)
    where, line = origin(e)
    deliberate = (where is None or where.is_relative_to(PACKAGE)) and not (
        isinstance(e, KeyError) and not (isinstance(message, str) and " " in message))
    if deliberate:
        return 2
    print(f"fuselib: ({type(e).__name__} raised in {where}:{line}; FUSELIB_DEBUG=1 shows the "
          "traceback)", file=sys.stderr)
    return 1


FORMAT_WARNING = warnings.formatwarning
