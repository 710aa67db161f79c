"""fuselib: protect image data with unlearnable examples, and test whether a protection holds.

Also `python -m fuselib`, and under torchrun: `torchrun --nproc_per_node 2 -m fuselib fit fuse`.

One module a job, each with its commands' functions and, beside them, the parsers that call
them (``add(sub, flags)``): :mod:`.info` (info, demo), :mod:`.evaluate` (evaluate,
evaluate-folder, protect-proof), :mod:`.audit` (export-data, audit, detect), :mod:`.grid`
(grid, export), :mod:`.records` (profile, verify, results, certify), :mod:`.protect` and
:mod:`.fit`; :mod:`.common` holds the argument types, the checks made before any work, the
shared flags and the one-line errors."""
from __future__ import annotations

import argparse
import os
import warnings

from . import audit, evaluate, fit, grid, info, protect, records
from .common import USER_ERRORS, FORMAT_WARNING, report_error, short_warning, flags

__all__ = ["main", "parser", "short_warning"]

DESCRIPTION = """\
Protect image data with unlearnable examples, and test whether a protection holds.

Also run as: python -m fuselib ...
Under torchrun: torchrun --nproc_per_node 2 -m fuselib fit fuse --out fuse.pt"""

EPILOG = """\
protections and countermeasures are named by spec: a name, a name:value (its primary
parameter) or name:key=value,key=value (see fuselib info); a+b chains countermeasures.

environment:
  FUSELIB_RESULTS    the results cache (default: results/cache in a source checkout)
  FUSELIB_MEASURED   the shipped records (default: results/measured); FUSELIB_RECOMPUTE=1
                     ignores them
  FUSELIB_DATA       the dataset root (or --data-root)
  FUSELIB_DEBUG=1    show an error's traceback instead of its one line

examples:
  fuselib demo
  fuselib evaluate --protection fuse --countermeasure lowpass:0.25 --scale smoke
  fuselib grid none em fuse --countermeasures none lowpass:0.25 --scale smoke"""

# the order `fuselib --help` lists the commands in
COMMANDS = (info, evaluate, audit, grid, records, protect, fit)


def parser() -> argparse.ArgumentParser:
    """The whole command line: every module's commands on one parser."""
    from ..version import __version__

    ap = argparse.ArgumentParser(prog="fuselib", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"fuselib {__version__}")
    ap.add_argument("--data-root", default=None,
                    help="dataset root (default: $FUSELIB_DATA, else see fuselib.data)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    shared = flags()
    for module in COMMANDS:
        module.add(sub, shared)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    # a bad argument, path or setting: one line and exit code 2; FUSELIB_DEBUG=1 re-raises
    debug = os.environ.get("FUSELIB_DEBUG", "0") not in ("", "0")
    warnings.formatwarning = short_warning
    try:
        args.func(args)
    except USER_ERRORS as e:
        if debug:
            raise
        return report_error(e)
    finally:
        warnings.formatwarning = FORMAT_WARNING
    return 0
