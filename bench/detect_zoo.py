"""Shortcut detection (``fuselib.experiments.detect``) measured over the zoo at ``cpu`` scale.

Two measurements, written to ``results/detect_zoo_cpu.json`` and the generated tables of
``results/detect_zoo_cpu.md``:

1. **per dataset**: each protection's protected training set at ``cpu`` scale (10,000 CIFAR-10
   images, seed 0, the fit reused from the shipped records where there is one), and clean data.
   At each size in ``--sizes`` the detector scores ``--draws`` class-balanced subsets of the
   protected set and ``--clean-draws`` subsets of the clean training set (subset seeds from 100,
   apart from the calibration's 0-2); the table gives each protection's mean score (the largest
   excess over clean data, 0 = clean, 1 = a perfect fit), the share of its draws flagged, the
   AUC of its scores against the clean draws', and the detection rate at the clean draws' 95th
   percentile (a 5% false-positive rate); plus each protection's four training accuracies on
   its whole 10,000-image set.
2. **per image** (partial poisoning): the clean set with a random share (``--ratios``) of its
   images replaced by their protected versions; the per-image score's AUC (poisoned against
   clean images) and the precision and recall of flagging the ``ratio·N`` highest scores.

    python bench/detect_zoo.py                              # the shipped measurement
    python bench/detect_zoo.py --protections random cuda --sizes 500 --draws 2   # a quick look
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

from fuselib import data  # noqa: E402
from fuselib.experiments import detect as D  # noqa: E402
from fuselib.experiments.runner import protected_data  # noqa: E402
from fuselib.utils import write_json, write_text  # noqa: E402

# every registered protection whose cpu-scale fit is shipped or costs seconds; the others
# (tap, rem, dh, uc, gue, pue, vtg, sample-wise EM) fit for many minutes each on 2 cores
PROTECTIONS = ("random", "random:mode=sample", "ar", "lsp", "ops", "cuda", "pil", "em", "fuse")
SCALE, N_CPU = "cpu", 10000


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                       text=True)
    return r.stdout.strip() or "unknown"


def per_dataset(specs, sizes, draws, clean_draws, seed):
    x, y = data.load("cifar10", "train")
    clean = {n: [D.verdict(D.scores(*data.subset(x, y, n, 100 + k), seed))["score"]
                 for k in range(clean_draws)] for n in sizes}
    rows = []
    for spec in ["none", *specs]:
        t0 = time.perf_counter()
        _, px, py = protected_data(spec, SCALE, 0)
        full = D.detect(px, py, seed)
        row = {"protection": spec, "n": int(py.shape[0]), "full_score": full["score"],
               "full_flagged": bool(full["flagged"]), "accuracy": full["accuracy"],
               "sizes": {}}
        for n in sizes:
            s = [D.verdict(D.scores(*data.subset(px, py, n, 100 + k), seed))["score"]
                 for k in range(draws)]
            c = torch.tensor(clean[n])
            fpr5 = float(torch.quantile(c, 0.95))
            row["sizes"][n] = {"scores": s, "mean": sum(s) / len(s),
                               "flagged": sum(v > D.FLAG_EXCESS for v in s) / len(s),
                               "auc": D.auc(torch.tensor(s), c),
                               "rate_at_5fpr": sum(v > fpr5 for v in s) / len(s)}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(f"{spec}: full {full['score']:+.2f}, "
              + ", ".join(f"n={n} mean {v['mean']:+.2f} auc {v['auc']:.2f}"
                          for n, v in row["sizes"].items()) + f" ({row['seconds']:.0f} s)",
              flush=True)
    return {"clean_scores": clean, "rows": rows}


def per_image(specs, ratios, seed):
    rows = []
    for spec in specs:
        x, px, y = protected_data(spec, SCALE, 0)
        for ratio in ratios:
            poisoned = D.flag_top(torch.rand(len(y), generator=torch.Generator().manual_seed(
                1000 + int(ratio * 100))), ratio)
            mixed = torch.where(poisoned.view(-1, 1, 1, 1), px, x)
            t0 = time.perf_counter()
            score = D.per_image(mixed, y, seed)
            p, r = D.precision_recall(D.flag_top(score, ratio), poisoned)
            rows.append({"protection": spec, "ratio": ratio, "n": len(y),
                         "auc": D.auc(score[poisoned], score[~poisoned]), "precision": p,
                         "recall": r, "seconds": time.perf_counter() - t0})
            print(f"{spec} ratio {ratio}: auc {rows[-1]['auc']:.3f}, precision {p:.3f}, "
                  f"recall {r:.3f}", flush=True)
    return rows


def markdown(res: dict) -> str:
    a = res["args"]
    sizes = a["sizes"]
    lines = ["# Shortcut detection over the zoo, `cpu` scale", "",
             "Generated by `bench/detect_zoo.py` from `detect_zoo_cpu.json`; do not edit.", "",
             f"- command: `{res['command']}`",
             f"- commit {res['commit']}, {res['machine']}, torch {res['torch']}, "
             f"{res['threads']} threads; {res['seconds'] / 60:.1f} min; detection seed "
             f"{a['seed']}", "",
             "## Per dataset", "",
             f"Score: the largest excess of the four training accuracies over clean data's at "
             f"the same size (0 = clean, 1 = a perfect fit; flagged over {D.FLAG_EXCESS}). At "
             f"each size, {a['draws']} subsets of the protection's 10,000 protected images "
             f"against {a['clean_draws']} of clean CIFAR-10; AUC against the clean subsets; "
             "the rate at 5% FPR counts the subsets over the clean subsets' 95th percentile "
             "(with 10 clean subsets that percentile lies between the two highest; the clean "
             "data row is 3 subsets of the `cpu`-scale clean set against it).",
             "", "| protection | score, 10,000 images | " + " | ".join(
                 f"n={n}: mean score / flagged / AUC / rate at 5% FPR" for n in sizes) + " |",
             "| --- | --- | " + " | ".join("---" for _ in sizes) + " |"]
    for r in res["per_dataset"]["rows"]:
        cells = [f"{v['mean']:+.2f} / {v['flagged']:.0%} / {v['auc']:.2f} / "
                 f"{v['rate_at_5fpr']:.0%}" for v in (r["sizes"][str(n)] for n in sizes)]
        name = "clean data" if r["protection"] == "none" else r["protection"]
        flag = " (flagged)" if r["full_flagged"] else ""
        lines.append(f"| {name} | {r['full_score']:+.2f}{flag} | " + " | ".join(cells) + " |")
    lines += ["", "Training accuracy of each detection model on the whole 10,000-image set:", "",
              "| protection | " + " | ".join(f"{k}" for k in D.SCORE_KEYS) + " |",
              "| --- | " + " | ".join("---" for _ in D.SCORE_KEYS) + " |"]
    for r in res["per_dataset"]["rows"]:
        name = "clean data" if r["protection"] == "none" else r["protection"]
        lines.append(f"| {name} | " + " | ".join(f"{r['accuracy'][k]:.3f}" for k in D.SCORE_KEYS)
                     + " |")
    if res.get("per_image"):
        lines += ["", "## Per image, partial poisoning", "",
                  "A share of the clean 10,000-image set replaced by its protected version; the "
                  "per-image score (`detect.per_image`: the linear model's mean confidence in "
                  "each image's label over the schedule, on the high-pass residual); the "
                  "`ratio·N` highest scores flagged, so precision equals recall.",
                  "", "| protection | ratio | AUC | precision | recall |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['protection']} | {r['ratio']} | {r['auc']:.3f} | {r['precision']:.3f} "
                  f"| {r['recall']:.3f} |" for r in res["per_image"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protections", nargs="+", default=list(PROTECTIONS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[500, 1000, 2000])
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--clean-draws", type=int, default=20)
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.1, 0.2, 0.5])
    ap.add_argument("--per-image", nargs="*", default=None,
                   help="protections for the partial-poisoning table (default: --protections "
                        "but the sample-wise random noise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "results" / "detect_zoo_cpu"))
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite OUT.md from OUT.json, measuring nothing")
    a = ap.parse_args(argv)
    if a.markdown_only:
        out = Path(a.out)
        res = json.loads(out.with_suffix(".json").read_text())
        write_text(out.with_suffix(".md"), markdown(res))
        return
    for spec in a.protections:
        from fuselib import protections

        protections.get(spec)  # a bad name fails now
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    res = {"command": "python bench/detect_zoo.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:]),
           "commit": _commit(), "machine": _cpu(), "torch": torch.__version__, "threads": a.threads,
           "args": vars(a)}
    out = Path(a.out)
    res["per_dataset"] = per_dataset(a.protections, a.sizes, a.draws, a.clean_draws, a.seed)
    write_json(out.with_suffix(".partial.json"), res)  # the first part kept if the second fails
    image_specs = a.per_image if a.per_image is not None else [
        s for s in a.protections if s != "random:mode=sample"]
    res["per_image"] = per_image(image_specs, a.ratios, a.seed)
    res["seconds"] = time.perf_counter() - t0
    write_json(out.with_suffix(".json"), res)
    out.with_suffix(".partial.json").unlink()
    write_text(out.with_suffix(".md"), markdown(json.loads(out.with_suffix(".json").read_text())))
    print(f"wrote {out}.json and {out}.md")


if __name__ == "__main__":
    main()
