"""The paper's seven claims, judged from the shipped records by rules written once.

Each claim names the plans whose runs decide it and a rule over their cells (mean ± std over
seeds). :func:`verdicts` reads the records at the best scale measured and returns, per claim,
a verdict (``holds``, ``holds in part``, ``does not hold``, ``not measured``) with the numbers
that decide it; ``fuselib results`` prints them as the README's scorecard and as the one-line
finding that opens each claim's section of RESULTS.md, so a new record can change a verdict.

The rules (:data:`RULES` prints them under the scorecard):

* a cell is the mean over the seeds measured of the final clean test accuracy;
* two cells differ only when the gap exceeds two standard deviations over seeds (the larger of
  the two); a one-seed cell has no spread, and the thresholds alone decide it;
* *near chance*: at most :data:`NEAR_CHANCE` points above :data:`CHANCE`, and below clean data
  under the same filter;
* *protects*: more than :data:`PROTECTS` points below clean data under the same filter;
* *undone*: within :data:`UNDONE` points of clean data under the same filter;
* the best evidence: the largest scale (``paper``, then ``full``, then ``cpu``) at which every
  run a rule reads is measured; where none is complete, the scale with the most of them, and
  the verdict says how much is measured.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from . import names
from .victims import PLANS as _VICTIM_PLANS

VICTIM_PLANS = _VICTIM_PLANS[1:]  # the paper's networks (main_table is fastnet's)

CHANCE = 10.0        # percent: ten classes
NEAR_CHANCE = 10.0   # points above chance that still count as near chance
PROTECTS = 20.0      # points below clean data that count as protecting
UNDONE = 10.0        # points from clean data within which a protection is undone
SCALES = ("paper", "full", "cpu")  # the best evidence first

RULES = (
    f"Verdicts are computed from the records by `fuselib/experiments/claims.py`. A cell is the "
    f"mean over seeds of the final clean test accuracy; two cells differ only beyond two "
    f"standard deviations over seeds (the larger of the two). *Near chance*: at most "
    f"{NEAR_CHANCE:g} points above chance ({CHANCE:g}%) and below clean data under the same "
    f"filter. *Protects*: more than {PROTECTS:g} points below clean data under the same filter. "
    f"*Undone*: within {UNDONE:g} points of clean data under the same filter. *Prior UEs*: every "
    f"protection of the main table but clean data, class-wise random noise (a control) and "
    f"FUSE. A claim of several parts *holds* when every part holds, *holds in part* when some "
    f"do, *does not hold* when none does; *not measured* when no run it reads is measured. "
    f"Each claim is judged at the largest scale where its runs are all measured.")

PRIOR_EXCLUDED = ("none", "random")
LOWPASSES = ("lowpass:0.125", "lowpass:0.25", "lowpass:0.5")


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One protection × countermeasure (× network): final and peak accuracy over seeds, in
    percent. ``most``: the most seeds any cell read beside it has; a cell over fewer (but
    several) says how many, as a cell over one seed does."""
    finals: tuple
    peaks: tuple
    most: int = 0

    @property
    def mean(self) -> float:
        return statistics.mean(self.finals)

    @property
    def std(self) -> float:
        return statistics.stdev(self.finals) if len(self.finals) > 1 else 0.0

    @property
    def peak(self) -> "Cell":
        """The peaks over epochs as a cell of their own."""
        return Cell(self.peaks, self.peaks, self.most)

    def text(self) -> str:
        n = len(self.finals)
        if n == 1:
            return f"{self.mean:.2f}% (one seed)"
        return f"{self.mean:.2f}% ± {self.std:.2f}" + (f" ({n} seeds)" if n < self.most else "")


def cells(df) -> dict:
    """``{(protection, countermeasure, arch): Cell}`` of a plan's :meth:`run` frame."""
    out = {}
    if df is None or df.empty:
        return out
    groups = df.groupby(["protection", "countermeasure", "arch"], sort=False, dropna=False)
    most = int(groups.size().max())
    for (p, c, a), g in groups:  # arch None: the scale's default
        out[(p, c, a)] = Cell(tuple(g.accuracy * 100), tuple(g.peak_accuracy * 100), most)
    return out


def below(a: Cell, b: Cell, points: float = 0.0) -> bool:
    """``a`` is more than ``points`` below ``b``, and beyond two standard deviations."""
    gap = b.mean - a.mean
    return gap > points and gap > 2 * max(a.std, b.std)


def near_chance(c: Cell, clean: Cell | None) -> bool:
    return c.mean - CHANCE <= NEAR_CHANCE and (clean is None or below(c, clean))


def protects(c: Cell, clean: Cell) -> bool:
    return below(c, clean, PROTECTS)


def undone(c: Cell, clean: Cell) -> bool:
    return clean.mean - c.mean <= UNDONE


WORDS = ("near chance", "protects", "in between", "undone")  # :func:`describe`, best first


def describe(c: Cell, clean: Cell | None) -> str:
    """What the rules call a cell against clean data under the same filter: ``near chance``,
    ``protects`` (but not near chance), ``undone``, or ``in between`` (neither); without a
    clean cell only *near chance* can be judged, and anything else is ``in between``."""
    if near_chance(c, clean):
        return "near chance"
    if clean is None:
        return "in between"
    if protects(c, clean):
        return "protects"
    return "undone" if undone(c, clean) else "in between"


# --------------------------------------------------------------------------- evidence
@dataclass
class Evidence:
    """A plan's cells at the scale a rule reads: how many of the runs it needs are there."""
    plan: str
    scale: str = ""
    cells: dict = field(default_factory=dict)
    measured: int = 0
    total: int = 0
    seeds: tuple = ()

    def get(self, protection, countermeasure="none", arch=None):
        for (p, c, a), cell in self.cells.items():
            if p == protection and c == countermeasure and (arch is None or a == arch):
                return cell
        return None

    @property
    def where(self) -> str:
        """The scale and the seeds: "3 seeds" when every cell has them, "1–3 seeds a cell"
        when the cells differ (each cell over fewer then says its own count)."""
        counts = {len(c.finals) for c in self.cells.values()}
        if len(counts) > 1:
            return f"`{self.scale}`, {min(counts)}–{max(counts)} seeds a cell"
        seeds = (f"{len(self.seeds)} seeds" if len(self.seeds) > 1 else "one seed")
        return f"`{self.scale}`, {seeds}"


def measured_index() -> set:
    """What the shipped run records hold, coarsely: ``(scale, dataset, trainer, protection's
    name, the dataset its perturbations were made on or None)``. :func:`evidence` reads a plan
    at a scale only where every protection it needs has a record of this kind (looking a plan
    up where nothing can be found is slow: it builds every run's config)."""
    import json

    from .scales import dataset_of
    from .store import shipped_dir

    found = set()
    for f in shipped_dir().glob("*.json"):
        try:
            c = json.loads(f.read_text())["config"]
            t = c.get("transfer")
            found.add((c["scale"], dataset_of(c["data"]), c.get("trainer", "fast"),
                       c["protection"]["name"],
                       dataset_of(t["data"]).partition(":")[0] if t else None))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _kind(plan, scale: str, spec: str) -> tuple:
    base, _, source = spec.partition("@")
    return (scale, plan.dataset, getattr(plan, "trainer", "fast"), base.partition(":")[0],
            source.partition(":")[0] or None)


def evidence(plan_name: str, wanted=None, *, frame, index=None) -> Evidence:
    """The best evidence a plan holds for a rule: ``frame(plan, scale)`` reads its measured
    runs; ``wanted(protection, countermeasure)`` selects the runs the rule reads (default all).
    A plan that does not exist is not measured."""
    from . import plans

    try:
        plan = plans.get(plan_name)
    except KeyError:
        return Evidence(plan_name)
    best = None
    for scale in SCALES:
        need = {(p, c, a, s, r) for b in plan.blocks_for(scale) for p in b.protections
                for c in b.countermeasures for a in b.archs for s in b.seeds
                for r in b.poison_ratios if wanted is None or wanted(p, c)}
        if not need or (index is not None and any(
                _kind(plan, scale, p) not in index for p, *_ in need)):
            continue
        df = frame(plan, scale)
        if len(df) and wanted is not None:
            df = df[[bool(wanted(p, c)) for p, c in zip(df.protection, df.countermeasure)]]
        ev = Evidence(plan_name, scale, cells(df), len(df), len(need),
                      tuple(sorted(set(df.seed))) if len(df) else ())
        if ev.measured and ev.measured >= ev.total:
            return ev
        if ev.measured and (best is None or ev.measured > best.measured):
            best = ev
    return best or Evidence(plan_name)


# --------------------------------------------------------------------------- verdicts
@dataclass
class Verdict:
    claim: int
    text: str                  # the claim in a line
    verdict: str               # holds, holds in part, does not hold, not measured
    numbers: str               # what decides it
    section: str               # RESULTS.md section heading
    notebook: str              # notebooks/<name>.py
    partial: str = ""          # "measured in part: N of M runs", where so
    detail: str = ""           # what RESULTS.md's finding adds (the methods on each side)

    def line(self) -> str:
        """The verdict and its numbers in a line of Markdown (how RESULTS.md opens the claim's
        section, and what a notebook shows after the claim's result)."""
        numbers = self.numbers + (f" ({self.partial})" if self.partial else "")
        detail = f" {self.detail}." if self.detail else ""
        return f"**Claim {self.claim} ({self.text}): {self.verdict}.** {numbers}.{detail}"


CLAIMS = {
    1: ("Low-pass filtering undoes prior unlearnable examples",
        "Claims 1 and 2: prior methods under low-pass and high-pass filters",
        "01_high_frequency_failure"),
    2: ("Prior unlearnable examples survive high-pass filtering",
        "Claims 1 and 2: prior methods under low-pass and high-pass filters",
        "01_high_frequency_failure"),
    3: ("FUSE stays near chance without a filter and under low- and high-pass filters, across "
        "datasets and networks",
        "Claim 3: FUSE under every filter, on every dataset and network", "04_main_results"),
    4: ("FUSE stays near chance under JPEG, then low-pass",
        "Claim 4: JPEG, then low-pass", "04_main_results"),
    5: ("FUSE's perturbations transfer from one dataset to another",
        "Claim 5: cross-dataset transfer", "05_transfer"),
    6: ("FUSE stays low throughout training (no early peak)",
        "Claim 6: accuracy over the epochs", "04_main_results"),
    7: ("Removing RSM or CBG weakens FUSE under low-pass filtering",
        "Claim 7: FUSE's ablation", "03_ablations"),
}


RULE_OF = {
    1: "Of the prior UEs that protect unfiltered, those *undone* by the main table's strongest "
       "low-pass (0.125); one part a method",
    2: "Of the same prior UEs, those that still *protect* under high-pass 0.25; one part a "
       "method",
    3: "FUSE *near chance* under its worst filter (no filter, low-pass 0.125, 0.25 and 0.5, "
       "high-pass 0.25); one part CIFAR-10, one Imagenette, one the other networks (a part "
       "not measured does not hold; CIFAR-100 and SVHN have no plan yet)",
    4: "FUSE *near chance* under JPEG 10, then low-pass 0.25",
    5: "FUSE made on one dataset and moved to the other *near chance* unfiltered; one part a "
       "direction",
    6: f"FUSE's peak over the epochs (mean over seeds) within {NEAR_CHANCE:g} points of chance; "
       "one part a filter of claim 3",
    7: "Under low-pass 0.25, FUSE without RSM and FUSE without CBG each end above FUSE beyond "
       "two standard deviations; one part a removal",
}


def _verdict(parts_held: int, parts: int) -> str:
    if parts == 0:
        return "not measured"
    if parts_held == parts:
        return "holds"
    return "holds in part" if parts_held else "does not hold"


def _partial(*evs) -> str:
    m = sum(e.measured for e in evs)
    t = sum(e.total for e in evs)
    return f"measured in part: {m} of {t} runs" if t and m < t else ""


def _victim(ev: Evidence) -> str:
    archs = sorted({names.arch(a) for (_, _, a) in ev.cells})
    return ", ".join(archs)


def _make(n, verdict, numbers, *evs) -> Verdict:
    text, section, notebook = CLAIMS[n]
    return Verdict(n, text, verdict, numbers, section, notebook, _partial(*evs))


def _prior(ev: Evidence) -> list:
    out = []
    for (p, c, a) in ev.cells:
        if (c == "none" and p not in PRIOR_EXCLUDED and not p.startswith("fuse")
                and p not in out):
            out.append(p)
    return out


def claim_filtered(n: int, read, countermeasure: str, test, word: str) -> Verdict:
    """Claims 1 and 2: of the prior UEs that protect unfiltered, how many ``test`` (undone /
    still protecting) passes under ``countermeasure``."""
    ev = read("main_table")
    clean0, clean = ev.get("none"), ev.get("none", countermeasure)
    if clean0 is None or clean is None:
        return _make(n, "not measured", "", ev)
    judged = [p for p in _prior(ev) if protects(ev.get(p), clean0)
              and ev.get(p, countermeasure) is not None]
    yes = [p for p in judged if test(ev.get(p, countermeasure), clean)]
    no = [p for p in judged if p not in yes]
    pick = lambda ps: max(ps, key=lambda p: len(ev.get(p, countermeasure).finals))  # noqa: E731
    cm = names.countermeasure(countermeasure)
    numbers = (f"{len(yes)} of {len(judged)} prior UEs that protect unfiltered are {word} "
               f"under {cm} (clean data {clean.text()})")
    if yes:
        p = pick(yes)
        numbers += f"; {word}: {names.protection(p)} {ev.get(p, countermeasure).text()}"
    if no:
        p = pick(no)
        numbers += f"; not: {names.protection(p)} {ev.get(p, countermeasure).text()}"
    numbers += f" · {ev.where}, {_victim(ev)}"
    v = _make(n, _verdict(len(yes), len(judged)), numbers, ev)
    v.detail = (f"{word.capitalize()}: {', '.join(names.protection(p) for p in yes) or 'none'}; "
                f"not: {', '.join(names.protection(p) for p in no) or 'none'}")
    return v


def _worst(ev: Evidence, protection: str, countermeasures, arch=None):
    """The countermeasure under which ``protection`` keeps the most accuracy, its cell, and
    clean data's under it."""
    got = [(c, ev.get(protection, c, arch)) for c in countermeasures]
    got = [(c, x) for c, x in got if x is not None]
    if not got:
        return None
    c, x = max(got, key=lambda t: t[1].mean)
    return c, x, ev.get("none", c, arch)


def _dataset_part(ev, spec: str, filters, lead: str, name: str) -> tuple:
    """One dataset's part of claim 3: ``(held, text)`` for FUSE (``spec``) at its worst filter
    of ``filters`` in ``ev``."""
    w = _worst(ev, spec, filters)
    if not (w and w[2] is not None):
        return 0, f"{name}: not measured"
    c, x, clean = w
    return (int(near_chance(x, clean)),
            f"{lead}{names.countermeasure(c)} {x.text()} (clean data {clean.text()}; "
            f"{ev.where}, {_victim(ev)})")


def claim3(read) -> Verdict:
    filters = ("none",) + LOWPASSES + ("highpass:0.25",)
    parts, held, numbers, evs = 0, 0, [], []
    # CIFAR-10, fastnet: the main table; another dataset: Imagenette at 64 px (CIFAR-100 and
    # SVHN have no plan)
    for plan, spec, cms, read_all, lead, name in (
            ("main_table", "fuse", filters, False, "CIFAR-10: worst filter ", "CIFAR-10"),
            ("imagenette", "fuse:epochs=20", ("none", "lowpass:0.25"), True,
             "Imagenette 64 px: ", "Imagenette")):
        ev = read(plan, lambda p, c, s=spec, f=cms, a=read_all: p in ("none", s)
                  and (a or c in f))
        evs.append(ev)
        ok, text = _dataset_part(ev, spec, cms, lead, name)
        parts, held = parts + 1, held + ok
        numbers.append(text)
    numbers.append("CIFAR-100, SVHN: not measured")
    # other networks
    arch_evs = [read(p, lambda p, c: p in ("none", "fuse"))
                for p in VICTIM_PLANS]
    evs += arch_evs
    judged, unpaired = [], []
    for ev in arch_evs:
        for a in dict.fromkeys(a for (_, _, a) in ev.cells):
            # judged where clean data under the same filter is measured too; a FUSE cell
            # without its clean one is named, not judged
            paired = [c for c in filters if ev.get("none", c, a) is not None]
            unpaired += [f"{names.arch(a)} {names.countermeasure(c)} {x.text()}"
                         for c in filters if c not in paired
                         for x in [ev.get("fuse", c, a)] if x is not None]
            w = _worst(ev, "fuse", paired, a) if paired else None
            if w and w[2] is not None:
                judged.append((names.arch(a), near_chance(w[1], w[2]), w, ev))
    if judged:
        parts += 1
        ok = all(j[1] for j in judged)
        held += ok
        numbers.append("networks: " + "; ".join(
            f"{n} {names.countermeasure(w[0])} {w[1].text()} (clean {w[2].text()})"
            for n, _, w, _ in judged) + f" ({judged[0][3].where})"
            + (f"; FUSE without clean data under the same filter yet: {', '.join(unpaired)}"
               if unpaired else ""))
    else:
        parts += 1
        numbers.append("other networks: not measured")
    measured = any(e.measured for e in evs)
    return _make(3, _verdict(held, parts) if measured else "not measured", "; ".join(numbers),
                 *evs)


def claim4(read) -> Verdict:
    cm = "jpeg:10+lowpass:0.25"
    ev = read("main_table", lambda p, c: p in ("none", "fuse") and c == cm)
    x, clean = ev.get("fuse", cm), ev.get("none", cm)
    if x is None or clean is None:
        return _make(4, "not measured", "", ev)
    return _make(4, _verdict(near_chance(x, clean), 1),
                 f"FUSE {x.text()} against clean data {clean.text()} · {ev.where}, "
                 f"{_victim(ev)}", ev)


def claim5(read) -> Verdict:
    parts, held, numbers, evs = 0, 0, [], []
    for plan, spec, way in (("transfer", "fuse@imagenette:128", "Imagenette → CIFAR-10"),
                            ("transfer_imagenette", "fuse@cifar10", "CIFAR-10 → Imagenette")):
        ev = read(plan, lambda p, c, s=spec: p in ("none", s) and c == "none")
        evs.append(ev)
        x, clean = ev.get(spec), ev.get("none")
        parts += 1
        if x is None or clean is None:
            numbers.append(f"{way}: not measured")
            continue
        ok = near_chance(x, clean)
        held += ok
        numbers.append(f"{way}: FUSE {x.text()} unfiltered (clean data {clean.text()}; "
                       f"{ev.where}, {_victim(ev)})")
    return _make(5, _verdict(held, parts) if any(e.measured for e in evs) else "not measured",
                 "; ".join(numbers), *evs)


def claim6(read) -> Verdict:
    filters = ("none",) + LOWPASSES + ("highpass:0.25",)
    ev = read("main_table", lambda p, c: p in ("none", "fuse") and c in filters)
    got = [(c, ev.get("fuse", c)) for c in filters if ev.get("fuse", c) is not None]
    if not got:
        return _make(6, "not measured", "", ev)
    low = [c for c, x in got if x.peak.mean - CHANCE <= NEAR_CHANCE]
    c, x = max(got, key=lambda t: t[1].peak.mean)
    return _make(6, _verdict(len(low), len(got)),
                 f"FUSE's peak over the epochs is near chance under {len(low)} of {len(got)} "
                 f"filters; the highest: {x.peak.text()} under {names.countermeasure(c)} "
                 f"(it ends at {x.text()}) · {ev.where}, {_victim(ev)}", ev)


def claim7(read) -> Verdict:
    cm = "lowpass:0.25"
    variants = ("fuse:rsm=False", "fuse:cbg=False")
    ev = read("ablations",
              lambda p, c: p in ("fuse",) + variants and c == cm)
    full = ev.get("fuse", cm)
    got = [(v, ev.get(v, cm)) for v in variants if ev.get(v, cm) is not None]
    if full is None or not got:
        return _make(7, "not measured", "", ev)
    weaker = [v for v, x in got if below(full, x)]
    return _make(7, _verdict(len(weaker), len(got)),
                 f"under {names.countermeasure(cm)}: FUSE {full.text()}, "
                 + ", ".join(f"{names.protection(v).replace('FUSE ', '')} {x.text()}"
                             for v, x in got)
                 + f"; {len(weaker)} of {len(got)} removals weaker beyond two std · "
                 f"{ev.where}, {_victim(ev)}", ev)


def verdicts(frame, index=None) -> list:
    """Every claim's :class:`Verdict`; ``frame(plan, scale)`` gives a plan's measured runs
    (e.g. :func:`fuselib.experiments.report.measured_frame`); ``index``: what is measured,
    coarsely (default :func:`measured_index`)."""
    index = measured_index() if index is None else index
    return [verdict(n, frame, index) for n in CLAIMS]


def verdict(n: int, frame, index=None) -> Verdict:
    """Claim ``n``'s :class:`Verdict` alone (a notebook judges the claim it shows; claims 3
    and 5 read several plans and take longest)."""
    from functools import partial

    read = partial(evidence, frame=frame, index=measured_index() if index is None else index)
    judge = {1: lambda: claim_filtered(1, read, "lowpass:0.125", undone, "undone"),
             2: lambda: claim_filtered(2, read, "highpass:0.25", protects, "still protecting"),
             3: lambda: claim3(read), 4: lambda: claim4(read), 5: lambda: claim5(read),
             6: lambda: claim6(read), 7: lambda: claim7(read)}
    return judge[int(n)]()


# --------------------------------------------------------------------------- the victims
VICTIM_PRIOR = ("ar", "em", "pue")  # the prior UEs of plan victims


def _victim_line(what: str, judge, fast: Evidence, r18: Evidence) -> str:
    """One finding on fastnet and on ResNet-18: ``judge(ev)`` gives ``(verdict, numbers)`` or
    None where the cells it needs are not measured."""
    out = []
    for name, ev in (("fastnet", fast), ("ResNet-18", r18)):
        got = judge(ev) if ev.cells else None
        out.append(f"{name}: {got[0]} ({got[1]}; {ev.where})" if got else
                   f"{name}: not measured ({ev.measured} of {ev.total} runs)")
    return f"- **{what}** — " + "; ".join(out)


def victim_findings(frame, scale: str = "cpu") -> list:
    """The fastnet findings the victims plans re-test, each on fastnet (plan ``main_table``)
    and on ResNet-18 by the paper's recipe (plan ``victims``) at ``scale``, by the rules above;
    a finding judged on part of its cells says "so far" and names the cells it still lacks; one
    with none of them measured says how many of its runs are."""
    from . import plans
    from .plans import VICTIM_FILTERS

    def read(name):
        plan = plans.get(name)
        want = {(p, c) for b in plans.get("victims").blocks_for(scale) for p in b.protections
                for c in b.countermeasures}
        df = frame(plan, scale)
        if len(df):
            df = df[[(p, c) in want for p, c in zip(df.protection, df.countermeasure)]]
        need = {(p, c, s) for b in plan.blocks_for(scale) for p in b.protections
                for c in b.countermeasures for s in b.seeds if (p, c) in want}
        return Evidence(name, scale, cells(df), len(df), len(need),
                        tuple(sorted(set(df.seed))) if len(df) else ())

    fast, r18 = read("main_table"), read("victims")

    def so_far(lack) -> str:
        """What a partly measured finding still lacks (empty when nothing)."""
        return f"; not measured yet: {', '.join(lack)}" if lack else ""

    def missing(got, who) -> list:
        """For each filter ``(c, *cells)`` of ``got`` with a cell not measured, the filter and
        which of ``who`` (the cells' names) it lacks: "low-pass 0.25 (clean data)"."""
        return [f"{names.countermeasure(c)} ({', '.join(w for w, x in zip(who, xs) if x is None)})"
                for c, *xs in got if any(x is None for x in xs)]

    def fuse_near_chance(ev):
        got = [(c, ev.get("fuse", c), ev.get("none", c)) for c in VICTIM_FILTERS]
        have = [t for t in got if t[1] is not None and t[2] is not None]
        if not have:
            return None
        lack = missing(got, ("FUSE", "clean data"))
        c, x, clean = max(have, key=lambda t: t[1].mean)
        ok = all(near_chance(x, clean) for _, x, clean in have)
        return (("holds" if ok else "does not hold") + (" so far" if lack else ""),
                f"worst {names.countermeasure(c)} {x.text()}, clean data {clean.text()}"
                + so_far(lack))

    def fuse_vs_em(ev):
        got = [(c, ev.get("fuse", c), ev.get("em", c)) for c in VICTIM_FILTERS]
        pairs = [t for t in got if t[1] is not None and t[2] is not None]
        if not pairs:
            return None
        lack = missing(got, ("FUSE", "class-wise EM"))
        apart = [c for c, f, e in pairs if below(f, e) or below(e, f)]
        return (("apart under " + ", ".join(map(names.countermeasure, apart)) if apart else
                 "level within two std") + (" so far" if lack else ""), "; ".join(
                    f"{names.countermeasure(c)} FUSE {f.text()}, class-wise EM {e.text()}"
                    for c, f, e in pairs) + so_far(lack))

    def prior_undone(ev):
        c = "lowpass:0.125"
        clean = ev.get("none", c)
        got = [(p, ev.get(p, c)) for p in VICTIM_PRIOR]
        have = [(p, x) for p, x in got if x is not None]
        if clean is None or not have:
            return None
        lack = [names.protection(p) for p, x in got if x is None]
        undone_ = [p for p, x in have if undone(x, clean)]
        return ((("undone: " + ", ".join(map(names.protection, undone_))) if undone_ else
                 "none undone") + (" so far" if lack else ""), "low-pass 0.125: " + ", ".join(
                    f"{names.protection(p)} {x.text()}" for p, x in have)
                + f", clean data {clean.text()}" + so_far(lack))

    return [
        _victim_line("FUSE near chance under every filter", fuse_near_chance, fast, r18),
        _victim_line("FUSE against class-wise EM", fuse_vs_em, fast, r18),
        _victim_line("prior UEs undone by low-pass 0.125 (AR, class-wise EM, PUE)",
                     prior_undone, fast, r18),
        "- **class-wise random noise learned late** (at `full`, fastnet) — ResNet-18: not "
        "measured (no victims plan holds random noise; plan `victims_long`, 60 epochs of "
        "clean data, class-wise EM and FUSE, asks whether a longer schedule breaks those late)",
    ]
