"""RESULTS.md and the README's generated blocks, written from the shipped records and the plans.

A Markdown file holds hand-written text and generated blocks::

    <!-- generated: plan lowpass_sweep cpu -->
    ...the plan's table, then a line with its command, seeds, hosts, dates and compute...
    <!-- /generated -->

:func:`fill` rewrites every block's body from ``results/measured`` alone (the local cache is
not read, so every machine writes the same text) and keeps everything outside the blocks as it
is. ``make results`` (``fuselib results``) writes the files; ``fuselib results --check`` and
the test suite fail when one differs from what would be written. Blocks: ``plan NAME SCALE``,
``plans SCALE`` (every plan and how much of it is measured), ``methods`` (the registry's
methods table), ``scales`` and ``calibration`` (configs measured again on another machine).
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from .store import REPO, shipped_dir

FILES = ("README.md", "RESULTS.md")
BLOCK = re.compile(r"(<!-- generated: (?P<what>[^>]*?) -->\n)(?P<body>.*?)(<!-- /generated -->)",
                   re.S)


@contextlib.contextmanager
def shipped_only():
    """Run lookups see the shipped records only: an empty cache, ``results/measured`` on."""
    saved = {k: os.environ.get(k) for k in ("FUSELIB_RESULTS", "FUSELIB_MEASURED",
                                            "FUSELIB_RECOMPUTE")}
    with tempfile.TemporaryDirectory() as empty:
        os.environ["FUSELIB_RESULTS"] = empty
        os.environ["FUSELIB_MEASURED"] = str(shipped_dir())
        os.environ.pop("FUSELIB_RECOMPUTE", None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# --------------------------------------------------------------------------- blocks
def _machine(h) -> str:
    """A record's ``host`` as the machine's name: its GPU if it had one, else its CPU."""
    if isinstance(h, dict) and h.get("cpu"):
        return h.get("gpu") or h["cpu"]
    return "host not recorded"


def _hosts(hosts) -> str:
    counts: dict = {}
    for h in hosts:
        name = _machine(h)
        if isinstance(h, dict) and h.get("cpu"):
            name += f", {h['threads']} threads, bf16 {'yes' if h.get('bf16_autocast') else 'no'}"
        counts[name] = counts.get(name, 0) + 1
    return "; ".join(f"{k} ({v})" for k, v in counts.items())


_FRAMES: dict = {}  # plan name, scale -> its measured frame, for one fill() (blocks share them)


def measured_frame(plan, scale: str):
    """``plan.run(scale, cached_only=True)``, read once per :func:`fill` however many blocks
    show the plan."""
    key = (plan.name, scale)
    if key not in _FRAMES:
        _FRAMES[key] = plan.run(scale, cached_only=True)
    return _FRAMES[key]


def compute_seconds(df) -> float:
    """The compute a frame of runs took; an early-stopping row reuses the undefended run's
    record (the same training), so it costs nothing of its own."""
    cms = df["countermeasure"] if "countermeasure" in df else [""] * len(df)
    return float(sum(0.0 if c == "early_stop" else x for c, x in zip(cms, df.seconds)))


def _provenance(df, plan, scale: str) -> str:
    from .scales import SCALES

    total = plan.size(scale)
    sc = SCALES[scale]
    n = "all" if sc["n_train"] is None else f"{sc['n_train']:,}"
    if n != "all" and getattr(plan, "dataset", "cifar10") != "cifar10":
        n = f"up to {n}"  # a smaller training split (Imagenette: 9,469) is used whole
    parts = [f"`{plan.command(scale)}`", f"scale `{scale}` ({n} training images)",
             f"{len(df)} of {total} {'certificates' if plan.kind == 'certify' else 'runs'} "
             "measured"]
    if plan.kind == "profile":
        return " · ".join(parts)
    seeds = sorted(set(df.seed)) if len(df) else []
    parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
    dates = sorted(str(c)[:10] for c in df.get("created", []) if isinstance(c, str))
    if dates:
        parts.append(dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}")
    if "seconds" in df:
        gpu = [isinstance(h, dict) and h.get("device") == "cuda"
               for h in df.get("host", [None] * len(df))]
        if any(gpu):  # GPU seconds are not CPU seconds: counted apart
            on = df[[bool(g) for g in gpu]]
            off = df[[not g for g in gpu]]
            parts.append(f"{compute_seconds(off) / 3600:.1f} h of CPU compute + "
                         f"{compute_seconds(on) / 3600:.1f} h on a GPU")
        else:
            parts.append(f"{compute_seconds(df) / 3600:.1f} h of compute")
    parts.append(f"hosts: {_hosts(df.get('host', [None] * len(df)))}")
    return " · ".join(parts)


def plan_block(name: str, scale: str) -> str:
    from . import plans
    from .sweeps import markdown

    plan = plans.get(name)
    df = measured_frame(plan, scale)
    if df.empty:
        return f"(nothing measured yet: `{plan.command(scale)}`)\n"
    # a countermeasure whose runs reuse another's (early stopping) costs nothing of its own
    table = markdown(plan.table(scale, df))
    note = ("final accuracy, the peak over epochs in brackets where higher; blank: not measured"
            if plan.kind == "grid" else "")
    return table + "\n\n" + (f"{note}  \n" if note else "") + _provenance(df, plan, scale) + "\n"


def methods_block() -> str:
    """The registered protections: name, paper, file, budget, deviation from the official code."""
    import inspect

    from .. import protections

    lines = ["| name | paper | file | budget | deviation from the official code |",
             "| --- | --- | --- | --- | --- |"]
    for name in protections.names():
        if name == "none":
            continue
        cls = protections.REGISTRY.cls(name)
        p = protections.get(name)
        f = Path(inspect.getfile(cls)).resolve().relative_to(REPO)
        norm = {"linf": "L∞", "l2": "L2"}.get(p.norm)
        budget = getattr(cls, "budget_text", None) or (
            f"{norm} {p.eps * 255:.0f}/255" if p.norm == "linf"
            else f"{norm} {p.eps:.3g}" if norm else "not norm-bounded")
        paper = getattr(cls, "paper", "") or ""
        official = getattr(cls, "official", "") or ""
        if official:
            paper += f" ([code](https://github.com/{official}))"
        lines.append(f"| `{name}` | {paper} | [`{f}`]({f}) | {budget} | "
                     f"{getattr(cls, 'deviation', '') or ''} |")
    return "\n".join(lines) + "\n"


def countermeasures_block() -> str:
    """The registered countermeasures: name, display name, kind, paper and code, file."""
    import inspect

    from .. import countermeasures
    from .names import countermeasure as label

    lines = ["| name | what it is | kind | paper | file |", "| --- | --- | --- | --- | --- |"]
    for name in countermeasures.names():
        if name in ("none", "chain"):
            continue
        cls = countermeasures.REGISTRY.cls(name)
        f = Path(inspect.getfile(cls)).resolve().relative_to(REPO)
        paper = getattr(cls, "paper", "") or ""
        official = getattr(cls, "official", "") or ""
        if official:
            paper += f" ([code](https://github.com/{official}))"
        lines.append(f"| `{name}` | {label(name)} | {cls.kind} | {paper} | [`{f}`]({f}) |")
    return "\n".join(lines) + "\n"


def plans_block(scale: str = "cpu") -> str:
    """Every named plan: what it shows, where, how much of it is measured at ``scale`` and the
    compute that took (from the records' own ``seconds``)."""
    from . import plans

    lines = [f"| plan | what it shows | notebook | measured at `{scale}` | compute |",
             "| --- | --- | --- | --- | --- |"]
    for name in plans.names():
        plan = plans.get(name)
        df = measured_frame(plan, scale)
        total = plan.size(scale)
        secs = compute_seconds(df) if len(df) and "seconds" in df else 0.0
        compute = f"{secs / 3600:.1f} h" if secs else ""
        nb = plan.notebook and (f"[`{plan.notebook}`](notebooks/{plan.notebook}.py)"
                                if (REPO / "notebooks" / f"{plan.notebook}.py").is_file()
                                else f"`{plan.notebook}` (not written yet)")
        lines.append(f"| `{name}` | {plan.title} | {nb} | {len(df)} of {total} | {compute} |")
    return "\n".join(lines) + "\n"


def scales_block() -> str:
    from .scales import SCALES

    lines = ["| scale | training / test images | fast trainer | standard trainer |",
             "| --- | --- | --- | --- |"]
    for name, sc in SCALES.items():
        fast = sc.get("fast", {})
        widths = fast.get("model_kwargs", {}).get("widths")
        fast_text = f"{fast.get('epochs')} epochs" + (
            f", fastnet {'-'.join(map(str, widths))}" if widths else ", fastnet default widths")
        if fast.get("curve_images"):
            fast_text += f"; curve on {fast['curve_images']:,} test images, last epoch on all"
        n = lambda v: "all" if v is None else f"{v:,}"  # noqa: E731
        std = sc.get("standard", {})
        std_text = f"{std.get('epochs')} epoch{'s' if std.get('epochs') != 1 else ''}" + (
            f", batch {std['batch_size']}, lr {std['lr']:g}" if "batch_size" in std else "")
        lines.append(f"| `{name}` | {n(sc['n_train'])} / {n(sc['n_test'])} | {fast_text} | "
                     f"{std_text} |")
    return "\n".join(lines) + "\n"


def proof_block(scale: str) -> str:
    """``fuselib protect`` on Imagenette, then a classifier trained on the output folder and on
    the clean copy (:func:`fuselib.experiments.folders.protect_proof`), from the records."""
    from .folders import protect_proof
    from .sweeps import cell

    df = protect_proof(None, scale=scale, cached_only=True)
    command = f"`fuselib protect-proof --scale {scale}`"
    if df.empty:
        return f"(nothing measured yet: {command})\n"
    cms = list(dict.fromkeys(df.countermeasure))
    names = {"clean": "clean copy", "fuse": "after `fuselib protect` (FUSE, epochs=10)"}
    fits = sorted(set(df.label) - {"clean", "fuse"})
    names.update({f: f"after `fuselib protect` (FUSE, {f.partition(':')[2]})" for f in fits})
    lines = ["| training folder | " + " | ".join(cms) + " |", "| --- " * (len(cms) + 1) + "|"]
    for label in [x for x in ("clean", "fuse") if x in set(df.label)] + fits:
        g = df[df.label == label].set_index("countermeasure")
        lines.append(f"| {names[label]} | " + " | ".join(
            cell(g.accuracy[c], g.peak_accuracy[c]) if c in g.index else "" for c in cms) + " |")
    dates = sorted(str(c)[:10] for c in df.created if isinstance(c, str))
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return ("\n".join(lines) + "\n\nfinal accuracy on the clean val split, the peak in brackets "
            f"where higher  \n{command} · {int(df.n_train.iloc[0]):,} training photos at "
            f"{df.test.iloc[0].split('/')[0].split(':')[1]} px · seed "
            f"{', '.join(map(str, sorted(set(df.seed))))} · {when} · "
            f"{df.seconds.sum() / 3600:.1f} h of compute (training) · hosts: "
            f"{_hosts(df.host)}\n")


def separated_block(name: str, scale: str, reference: str) -> str:
    """Which of a plan's cells differ from ``reference``'s by more than two standard deviations
    over seeds (:func:`fuselib.experiments.separated`)."""
    from . import plans
    from .sweeps import separated

    plan = plans.get(name)
    df = measured_frame(plan, scale)
    sep = separated(df, reference) if len(df) else df
    if sep.empty:
        return "(no cell has two seeds on both sides yet)\n"
    label = plan.labels.get("protection", {})
    lines = [f"| against {label.get(reference, reference)} | countermeasure | mean | reference "
             "| difference | larger std | seeds | > 2 std |", "| --- " * 8 + "|"]
    for r in sep.itertuples():
        lines.append(f"| {label.get(r.protection, r.protection)} | {r.countermeasure} | "
                     f"{r.mean:.2f}% | {r._4:.2f}% | {r.difference:+.2f} | {r._6:.2f} | "
                     f"{r.seeds} | {'**yes**' if r.exceeds else 'no'} |")
    return "\n".join(lines) + "\n"


def curves_block(name: str, scale: str, countermeasure: str) -> str:
    """Per-epoch test accuracy of a plan's protections under one countermeasure."""
    from . import plans
    from .sweeps import curves, curves_markdown

    plan = plans.get(name)
    df = measured_frame(plan, scale)
    these = df[df.countermeasure == countermeasure] if len(df) else df
    if these.empty:
        return f"(nothing measured yet: `{plan.command(scale)}`)\n"
    tab = curves(these, countermeasure, plan.protections(scale), plan.labels.get("protection"))
    return (curves_markdown(tab) + f"\n\ntest accuracy (%) after each epoch under "
            f"`{countermeasure}` ({len(these)} runs), mean over the seeds measured; the mean "
            "curve's peak in bold; the plan as a whole:  \n" + _provenance(df, plan, scale) + "\n")


def calibration_block() -> str:
    """Runs repeated on another machine (``results/measured/calibration/``, e.g. a lent GPU)
    beside the shipped record of the same config: how far the number moves with the machine."""
    from .. import countermeasures
    from .records import protection_spec, spec
    from .store import read_record

    folder = shipped_dir() / "calibration"
    rows = []
    for f in sorted(folder.glob("*.json")):
        again, first = read_record(f, f.stem), read_record(shipped_dir() / f.name, f.stem)
        if again is None or first is None:
            continue
        c = again["config"]
        rows.append((c["scale"], protection_spec(c), spec(c["countermeasure"], countermeasures),
                     c["seed"], first, again))
    if not rows:
        return "(no repeated runs in results/measured/calibration)\n"

    lines = ["| scale | protection | countermeasure | seed | shipped record | repeated on | "
             "difference (points) |", "| --- " * 7 + "|"]
    diffs = []
    for scale, prot, cm, seed, first, again in sorted(rows, key=lambda r: r[:4]):
        d = 100 * (again["accuracy"] - first["accuracy"])
        diffs.append(abs(d))
        lines.append(f"| {scale} | {prot} | {cm} | {seed} | {100 * first['accuracy']:.2f}% "
                     f"({_machine(first.get('host'))}) | {100 * again['accuracy']:.2f}% "
                     f"({_machine(again.get('host'))}) | "
                     f"{d:+.2f} |")
    n = f"{len(rows)} config{'s' if len(rows) != 1 else ''}"
    mean = sum(diffs) / len(diffs)
    return ("\n".join(lines) + f"\n\n{n} measured twice; the largest difference "
            f"{max(diffs):.2f} points, the mean absolute difference {mean:.2f}\n")


# --------------------------------------------------------------------------- the claims
_VERDICTS: list = []  # the claims' verdicts, computed once per fill()


def verdicts() -> list:
    """:func:`.claims.verdicts` from the shipped records, once per :func:`fill`."""
    from . import claims

    if not _VERDICTS:
        _VERDICTS.extend(claims.verdicts(measured_frame))
    return _VERDICTS


def anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def scorecard_block() -> str:
    """The paper's seven claims: each one's verdict, the numbers that decide it, where the
    section and the notebook are; the rules under the table."""
    from . import claims

    lines = ["| | the paper's claim | verdict | what decides it | where |",
             "| --- | --- | --- | --- | --- |"]
    for v in verdicts():
        where = (f"[results](RESULTS.md#{anchor(v.section)}) · "
                 f"[notebook](notebooks/{v.notebook}.py)")
        numbers = v.numbers + (f" ({v.partial})" if v.partial else "")
        lines.append(f"| {v.claim} | {v.text} | **{v.verdict}** | {numbers} | {where} |")
    rules = "\n".join(f"{n}. {r}." for n, r in claims.RULE_OF.items())
    return "\n".join(lines) + f"\n\n{claims.RULES}\n\n{rules}\n"


def finding_block(claim: str) -> str:
    """One claim's verdict and numbers in a line: how its section of RESULTS.md opens."""
    return next(v for v in verdicts() if v.claim == int(claim)).line() + "\n"


def seeded_block(name: str, scale: str) -> str:
    """A plan's rows that have several seeds, as :func:`plan_block` shows them: the headline
    of a table whose other rows have one seed."""
    from . import plans
    from .sweeps import markdown

    plan = plans.get(name)
    df = measured_frame(plan, scale)
    if df.empty:
        return f"(nothing measured yet: `{plan.command(scale)}`)\n"
    counts = df.groupby("protection").seed.nunique()
    seeded = df[df.protection.isin(counts[counts > 1].index)]
    if seeded.empty:
        return "(no row with several seeds yet)\n"
    tab = plan.table(scale, seeded)
    table = markdown(tab[(tab != "").any(axis=1)])
    return (table + "\n\nfinal accuracy, mean ± std over seeds, the peak over epochs in "
            "brackets where higher; the rows with seeds of  \n"
            + _provenance(seeded, plan, scale).replace(
                f"{len(seeded)} of {plan.size(scale)} runs", f"{len(seeded)} runs") + "\n")


def undone_block(name: str, scale: str) -> str:
    """Which of a plan's countermeasures undo each protection (:func:`.claims.undone`: within
    a stated number of points of clean data under the same countermeasure), in a line."""
    from . import claims, names, plans

    plan = plans.get(name)
    df = measured_frame(plan, scale)
    if df.empty:
        return f"(nothing measured yet: `{plan.command(scale)}`)\n"
    cells = claims.cells(df)
    cms = [c for c in plan.countermeasures(scale) if c not in ("none", "early_stop")]
    parts = []
    for p in (p for p in plan.protections(scale) if p != "none"):
        judged = [c for c in cms if (p, c) in {k[:2] for k in cells}
                  and ("none", c) in {k[:2] for k in cells}]
        get = {k[:2]: v for k, v in cells.items()}
        yes = [c for c in judged if claims.undone(get[(p, c)], get[("none", c)])]
        parts.append(f"{len(yes)} of {len(judged)} undo {names.protection(p)}"
                     + (f" ({', '.join(names.countermeasure(c) for c in yes)})" if yes else ""))
    seeds = sorted(set(df.seed))
    return (f"**Undone** (within {claims.UNDONE:g} points of clean data under the same "
            f"countermeasure), of the {len(cms)} countermeasures of plan `{name}` at `{scale}` "
            f"({'one seed' if len(seeds) == 1 else f'{len(seeds)} seeds'}): "
            + "; ".join(parts) + ".\n")


def lowband_block(scale: str) -> str:
    """Each prior method's share of perturbation energy in the lowest third of the radial DCT
    frequency, in a sentence (plan ``prior_profiles``): where the methods put their signal."""
    from . import names, plans

    plan = plans.get("prior_profiles")
    df = measured_frame(plan, scale)
    if df.empty:
        return f"(nothing measured yet: `{plan.command(scale)}`)\n"
    df = df.sort_values("low", ascending=False)
    noise = df[df.protection == "random"]
    parts = [f"{names.protection(r.protection)} {r.low:.0%}" for r in df.itertuples()
             if r.protection != "random"]
    white = f" (class-wise random noise: {noise.low.iloc[0]:.0%})" if len(noise) else ""
    return (f"Share of each prior method's perturbation energy in the lowest third of the "
            f"radial DCT frequency{white}: {', '.join(parts)} (`{plan.command(scale)}`).\n")


def victims_block(scale: str) -> str:
    """The fastnet findings re-tested on ResNet-18 by the paper's recipe
    (:func:`.claims.victim_findings`), a line each."""
    from .claims import victim_findings

    return "\n".join(victim_findings(measured_frame, scale)) + "\n"


def schedules_block(scale: str) -> str:
    """ResNet-18's candidate short schedules on clean data (:func:`.victims.schedules`)."""
    from . import plans
    from .victims import schedule_finding, schedules

    df = schedules(scale)
    lines = ["| schedule | batch | lr | final | peak | training accuracy, last epoch | hours "
             "| plan |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {int(r.batch)} | {r.lr:g} | {r.final:.2f}% | {r.peak:.2f}% | "
              f"{r.train_last:.2f}% | {r.hours:.2f} | `schedule_{name}` |"
              for name, r in df.iterrows()]
    missing = [n for n in plans.SCHEDULE_CANDIDATES if n not in df.index]
    return ("\n".join(lines) + "\n\n" + schedule_finding(df)
            + (f" Not measured yet: {', '.join(missing)}." if missing else "")
            + f" (`fuselib grid --plan schedule_NAME --scale {scale}`; 15 epochs, cosine, "
            "seed 0.)\n")


def precision_block(scale: str) -> str:
    """Clean ResNet-18 in fp32 against bf16 autocast, the same seeds each way
    (:func:`.victims.precision`), and whether bf16 may train the victims."""
    from .victims import PRECISION_PAIRS, precision, precision_finding

    df = precision(scale)
    lines = ["| schedule | precision | seeds | final | training accuracy, last epoch | "
             "hours a run |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r.schedule} | {r.precision} | {r.seeds} | {r.mean:.2f}%"
              + (f" ± {r.std:.2f}" if r.seeds > 1 else "")
              + f" | {r.train_last:.2f}% | {r.hours:.2f} |" for r in df.itertuples()]
    plans_ = ", ".join(f"`{f}` against `{b}`" for _, f, b in PRECISION_PAIRS)
    return ("\n".join(lines) + "\n\n" + precision_finding(df)
            + f" (plans {plans_}: `fuselib grid --plan NAME --scale {scale}`; a seed counts once "
            "it is measured both ways.)\n")


def detect_block(scale: str) -> str:
    """The shipped detection measurement over the zoo (:mod:`.detect_zoo`), in sentences."""
    from . import detect_zoo

    res = detect_zoo.load(scale)
    if res is None:
        return f"(nothing measured yet: `python bench/detect_zoo.py --scale {scale}`)\n"
    more = detect_zoo.removal_finding(res)
    return (detect_zoo.finding(res) + (" " + more if more else "")
            + f" (`{res['command']}`, {res['machine']}"
            + "".join(f"; then `{m['command']}`" for m in res.get("more_commands", [])) + ")\n")


def toc_block(text: str) -> str:
    """The table of contents of a Markdown file: its ``##`` headings, linked."""
    heads = [h for h in re.findall(r"^## (.+)$", text, re.M)]
    return "\n".join(f"- [{h}](#{anchor(h)})" for h in heads) + "\n"


def render(what: str) -> str:
    words = what.split()
    if words == ["scorecard"]:
        return scorecard_block()
    if words[0] == "finding" and len(words) == 2:
        return finding_block(words[1])
    if words[0] == "undone" and len(words) == 3:
        return undone_block(words[1], words[2])
    if words[0] == "lowband" and len(words) == 2:
        return lowband_block(words[1])
    if words[0] == "seeded" and len(words) == 3:
        return seeded_block(words[1], words[2])
    if words == ["calibration"]:
        return calibration_block()
    if words[0] == "victims" and len(words) == 2:
        return victims_block(words[1])
    if words[0] == "schedules" and len(words) == 2:
        return schedules_block(words[1])
    if words[0] == "precision" and len(words) == 2:
        return precision_block(words[1])
    if words[0] == "detect" and len(words) == 2:
        return detect_block(words[1])
    if words[0] == "protect_proof" and len(words) == 2:
        return proof_block(words[1])
    if words[0] == "curves" and len(words) == 4:
        return curves_block(words[1], words[2], words[3])
    if words[0] == "separated" and len(words) == 4:
        return separated_block(words[1], words[2], words[3])
    if words[0] == "plan" and len(words) == 3:
        return plan_block(words[1], words[2])
    if words == ["methods"]:
        return methods_block()
    if words == ["countermeasures"]:
        return countermeasures_block()
    if words == ["scales"]:
        return scales_block()
    if words[0] == "plans" and len(words) == 2:
        return plans_block(words[1])
    raise ValueError(f"unknown generated block {what!r}")


def fill(text: str) -> str:
    """``text`` with every generated block's body written anew."""
    def body(m):
        what = m.group("what").strip()
        return m.group(1) + (toc_block(text) if what == "toc" else render(what)) + m.group(4)

    with shipped_only():
        return BLOCK.sub(body, text)


def write(check: bool = False, root: Path | None = None) -> list:
    """Fill the generated blocks of README.md and RESULTS.md; returns the files that changed
    (``check=True``: that would change, writing nothing)."""
    _FRAMES.clear()  # read the records afresh, once for every file written
    _VERDICTS.clear()
    from ..utils import write_text

    root = Path(root) if root is not None else REPO
    changed = []
    for name in FILES:
        path = root / name
        if not path.is_file():
            continue
        old = path.read_text()
        new = fill(old)
        if new != old:
            changed.append(path)
            if not check:
                write_text(path, new)
    return changed
