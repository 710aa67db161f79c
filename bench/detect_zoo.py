"""Shortcut detection measured over the zoo at ``cpu`` scale (``fuselib.experiments.detect_zoo``).

Writes ``results/detect_zoo_cpu.json`` and its generated tables ``results/detect_zoo_cpu.md``:
per dataset (every protection's protected training set and clean data, subsets at each size
against clean subsets), per image (partial poisoning: AUC, precision and recall of the flagged
images) and, with ``--parts removal``, fastnet's accuracy on a mixed set before and after the
flagged images are removed. A measurement merges into the existing JSON (its command listed
under ``more_commands``): the rows of the protections measured replace theirs, the others stay,
so protections can be added a few at a time; ``--parts`` measures only the parts named; the
removal part keeps the rows already measured and resumes from its ``.partial.json`` after an
interruption. Merging needs the part's settings (sizes, draws, ratios, seed) to be the
existing measurement's; ``--fresh`` starts the JSON anew instead.

    python bench/detect_zoo.py                              # per dataset and per image
    python bench/detect_zoo.py --protections tap rem --sizes 500 2000 --draws 3 --clean-draws 10
    python bench/detect_zoo.py --parts removal --removal fuse em --ratios 0.5 0.2
    python bench/detect_zoo.py --protections random cuda --sizes 500 --draws 2 --out /tmp/z
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fuselib.experiments import detect_zoo as Z  # noqa: E402
from fuselib.utils import write_json, write_text  # noqa: E402

PARTS = ("dataset", "image", "removal")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                       text=True)
    return r.stdout.strip() or "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protections", nargs="+", default=list(Z.PROTECTIONS))
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=["dataset", "image"],
                    help="what to measure (default: per dataset and per image); a subset is "
                         "merged into OUT.json")
    ap.add_argument("--sizes", nargs="+", type=int, default=[500, 1000, 2000])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--clean-draws", type=int, default=20)
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.1, 0.2, 0.5])
    ap.add_argument("--per-image", nargs="*", default=None,
                    help="protections for the partial-poisoning table (default: --protections "
                         "but the sample-wise random noise)")
    ap.add_argument("--removal", nargs="+", default=["fuse", "em"],
                    help="protections whose mixed sets are trained on before and after the "
                         "flagged images are removed (default: fuse em)")
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None,
                    help="where the JSON and Markdown go, without the suffix (default: the "
                         "scale's name beside results/detect_zoo_cpu.json)")
    ap.add_argument("--fresh", action="store_true",
                    help="start OUT.json anew (dropping every row measured before, the removal "
                         "part's too) instead of merging into it")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite OUT.md from OUT.json, measuring nothing")
    a = ap.parse_args(argv)
    out = Path(a.out) if a.out else Z.path(a.scale).with_suffix("")
    if a.markdown_only:
        res = json.loads(out.with_suffix(".json").read_text())
        write_text(out.with_suffix(".md"), Z.markdown(res, a.scale))
        return
    from fuselib import protections

    for spec in [*a.protections, *a.removal, *(a.per_image or [])]:
        protections.get(spec)  # a bad name fails now
    from fuselib.experiments import detect as D

    if "dataset" in a.parts and min(a.sizes) < D.MIN_IMAGES:
        sys.exit(f"--sizes {min(a.sizes)}: detection needs at least {D.MIN_IMAGES} images")
    everything = set(a.parts) >= {"dataset", "image"}
    shipped = (json.loads(out.with_suffix(".json").read_text())
               if out.with_suffix(".json").is_file() and not a.fresh else None)
    if shipped is None and not everything:
        sys.exit(f"--parts {' '.join(a.parts)} merges into {out}.json, which does not exist: "
                 "measure the dataset and image parts first")
    if shipped is not None:
        differ = [k for p in a.parts for k in Z.mismatch(vars(a), shipped["args"], p)]
        if differ:
            sys.exit(f"{out}.json was measured with other settings ("
                     + ", ".join(f"--{k.replace('_', '-')} {shipped['args'][k]}"
                                 for k in dict.fromkeys(differ))
                     + "): pass those to add rows to it, or --fresh to start it anew")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    stamp = {"command": "python bench/detect_zoo.py " + " ".join(argv if argv is not None
                                                                 else sys.argv[1:]),
             "commit": _commit(), "machine": _cpu(), "torch": torch.__version__,
             "threads": a.threads}
    res = shipped if shipped is not None else {**stamp, "args": vars(a)}
    partial = out.with_suffix(".partial.json")
    if "dataset" in a.parts:
        new = Z.per_dataset(a.protections, a.sizes, a.draws, a.clean_draws, a.seed, a.scale)
        rows = Z.merge_rows(res.get("per_dataset", {}).get("rows", []), new["rows"])
        res["per_dataset"] = {"clean_scores": new["clean_scores"], "rows": rows}
        res["args"]["protections"] = [r["protection"] for r in rows if r["protection"] != "none"]
        # the first part kept if the second fails (an interrupted removal's rows kept too)
        earlier = json.loads(partial.read_text()) if partial.is_file() else {}
        write_json(partial, {**res, **({"after_removal": earlier["after_removal"]}
                                        if "after_removal" in earlier else {})})
    if "image" in a.parts:
        specs = a.per_image if a.per_image is not None else [
            s for s in a.protections if s != "random:mode=sample"]
        res["per_image"] = Z.merge_rows(res.get("per_image", []),
                                        Z.per_image(specs, a.ratios, a.seed, a.scale),
                                        key=("protection", "ratio"))
    if "removal" in a.parts:
        # rows measured before: the interrupted run's partial JSON, else the shipped JSON's
        # (a row without the random-removal control gets only the control)
        done = [] if shipped is None else (
            json.loads(partial.read_text()).get("after_removal", []) if partial.is_file()
            else res.get("after_removal", []))
        res["after_removal"] = Z.after_removal(
            a.removal, a.ratios, a.seed, a.scale, done=done,
            on_row=lambda rows: write_json(partial, {**res, "after_removal": rows}))
    if shipped is None:
        res["seconds"] = time.perf_counter() - t0
    else:
        res.setdefault("more_commands", []).append(
            {**stamp, "seconds": time.perf_counter() - t0})
    write_json(out.with_suffix(".json"), res)
    partial.unlink(missing_ok=True)
    write_text(out.with_suffix(".md"), Z.markdown(json.loads(out.with_suffix(".json").read_text()),
                                                  a.scale))
    print(f"wrote {out}.json and {out}.md")


if __name__ == "__main__":
    main()
