"""Every table the notebooks, the README and RESULTS.md show, defined once, by name.

A plan is protections × countermeasures × seeds (and, where a table needs them, architectures
or partial-poisoning shares), per scale: what each scale can afford on its machine (``ci`` in
the test suite, ``cpu`` on 2 cores, ``"*"`` for ``full`` and ``paper``). One plan may join
several blocks (e.g. every cutoff for a few methods, the headline cutoff for the rest)::

    plan = fuselib.experiments.plans.get("lowpass_sweep")
    df = plan.run("cpu", cached_only=True)      # the tidy frame of grid(), nothing trained
    print(plan.markdown("cpu"))                 # the table as RESULTS.md shows it
    plan.command("cpu")                         # 'fuselib grid --plan lowpass_sweep --scale cpu'

``fuselib grid --plan NAME [--scale S] [--cached-only] [--markdown]`` runs or prints one.
Plans of ``kind="certify"`` are certificates (:func:`fuselib.experiments.certify_protection`),
with their settings per scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import countermeasures as _countermeasures
from . import names as display
from .folders import FOLDER_RECIPE

CUTOFFS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75)
ZOO = ("none", "random", "ar", "lsp", "ops", "cuda", "em", "em:mode=sample", "tap", "rem",
       "dh", "uc")


# references: perturbations that spend their whole L∞ budget below a cutoff — what any
# class-wise perturbation can keep through a low-pass there (only that part survives it)
REF_LOW = "fuse:lowband=0.125,lowband_share=1.0,rsm=False,cbg=False"
REF_LOW_SEEN = ("fuse:lowband=0.125,lowband_share=1.0,rsm_lowpass=1.0,rsm_lowpass_min=0.125,"
                "rsm_images=True,cbg=False")
REF_LOW_25 = "fuse:lowband=0.25,lowband_share=1.0,rsm=False,cbg=False"


# FUSE with low-pass rehearsal: half of Random Spectral Masking's draws are low-pass filters
FIX = "fuse:rsm_lowpass=0.5"
# the filters the fix is judged on beyond the low-pass sweep it was chosen on
OTHER_FILTERS = ("highpass:0.25", "bandstop:lo=0.25,hi=0.5", "jpeg:10+lowpass:0.25")


def lowpass(*cutoffs) -> tuple:
    return tuple(f"lowpass:{c}" for c in cutoffs)


# the paper's main table — every protection, the filters the paper's claims rest on;
# three seeds (fit and classifier) where a claim turns on a few points
MAIN_TABLE = ZOO + ("gue", "pue", "fuse", FIX)
MAIN_SEEDED = ("none", "ar", "em", "pue", "fuse", FIX)
# sample-wise EM on a CPU (cpu and full scales; the paper scale keeps the defaults): 5 PGD steps
# a batch and at most 10 rounds, where the defaults are 20 and 40, up to 16 times the PGD work a
# fit: hours a fit on 2 CPU cores at this size
SAMPLE_EM_CPU = "em:mode=sample,pgd_steps=5,max_rounds=10"
MAIN_TABLE_CPU = tuple(SAMPLE_EM_CPU if p == "em:mode=sample" else p for p in MAIN_TABLE)
MAIN_FILTERS = ("none",) + lowpass(0.125, 0.25, 0.5) + ("highpass:0.25", "jpeg:10+lowpass:0.25")
# methods newer than the paper, measured at cpu beside its tables: PIL (ICLR 2026), a protection
# in the main table; COIN (AAAI 2025) and SDA+AN (AAAI 2024, with SDA alone), countermeasures
NEWER_PROTECTIONS = ("pil",)
NEWER_COUNTERMEASURES = ("coin", "sda", "sdaan")


# claim 5, cross-dataset transfer: each method made on the target itself and on the other
# dataset ("NAME@DATASET", moved by fuselib/experiments/transfer.py)
TRANSFER_METHODS = ("fuse", "em", "ar")
TRANSFER_CIFAR = ("none",) + tuple(x for m in TRANSFER_METHODS
                                   for x in (m, f"{m}@imagenette:128"))
# at 64 px FUSE's 10-epoch fit (its CIFAR-10 default) is too short (plan imagenette); the
# 20-epoch fit, protect's default above 32 px, is the fair "made on the target" row too
FUSE_64 = "fuse:epochs=20"
TRANSFER_IMAGENETTE = ("none", "fuse", FUSE_64, "fuse@cifar10", "em", "em@cifar10",
                       "ar", "ar@cifar10")


def transfer_labels(target: str, source: str, spec: str) -> dict:
    """Display names of a transfer plan's protections: which dataset each was made on."""
    names = {"fuse": "FUSE", "em": "class-wise EM", "ar": "AR"}
    out = {"none": "clean data"}
    for m, name in names.items():
        out[m] = f"{name} made on {target}"
        out[f"{m}@{spec}"] = f"{name} made on {source}"
    return out


# the attacker's network: the paper's networks (the standard and vit trainers, the paper's
# recipe with the cosine compressed to the scale's epochs) against the protections whose
# findings on fastnet most need a second victim
VICTIM_PROTECTIONS = ("none", "ar", "em", "pue", "fuse")
VICTIM_FILTERS = ("none", "lowpass:0.25", "lowpass:0.125")
VICTIM_ARCHS = {"vgg11": "VGG-11", "densenet121": "DenseNet-121", "resnet50": "ResNet-50"}
# The victims after tier 1 (the other conv nets, ResNet-18's extra countermeasures, the long
# schedule) train in bf16 autocast where the device has it: about twice fp32's speed, and plan
# victims_bf16 found clean ResNet-18 by the chosen schedule within the 1 point allowed of fp32
# over the same seeds (RESULTS.md, Other networks). Tier 1 (plan victims) stays in fp32, so
# that its seeds are one setting; the ViT stays in fp32 too: the check covered the paper's
# SGD recipe on a conv net, not AdamW on attention, and its runs are cheap.
BF16 = {"amp": "auto"}
# candidate short schedules for ResNet-18 at cpu scale (15 epochs, cosine), tried on clean data
# only, never on a protection: the paper's batch and lr, and twice the steps at batch 64 with the
# lr scaled with the batch and at the paper's lr (at 15 epochs of 10,000 images the paper's
# recipe takes 1,170 steps)
SCHEDULE_CANDIDATES = {
    "paper": {"batch_size": 128, "lr": 0.1},
    "b64": {"batch_size": 64, "lr": 0.05},
    "b64_lr01": {"batch_size": 64, "lr": 0.1},
}

@dataclass(frozen=True)
class Block:
    """One grid: every protection × countermeasure × arch × seed × poison ratio."""
    protections: tuple
    countermeasures: tuple = ("none",)
    seeds: tuple = (0,)
    archs: tuple = (None,)
    poison_ratios: tuple = (1.0,)

    def __len__(self) -> int:
        return (len(self.protections) * len(self.countermeasures) * len(self.seeds)
                * len(self.archs) * len(self.poison_ratios))


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    blocks: dict                    # scale (or "*") -> tuple of Blocks
    notebook: str = ""              # where it is shown
    rows: str = "countermeasure"    # how its table reads: rows × columns
    cols: str = "protection"
    labels: dict = field(default_factory=dict)   # axis -> {spec: display name}
    cached_only: tuple = ()         # scales at which the notebooks only read what is measured
    kind: str = "grid"              # "grid", "profile" (spectral profiles) or "certify"
    settings: dict = field(default_factory=dict)  # kind="certify": scale (or "*") -> settings
    dataset: str = "cifar10"        # every run's data ("imagenette:64": Imagenette at 64 px)
    recipe: dict = field(default_factory=dict)  # recipe fields every run overrides
    trainer: str = "fast"           # every run's trainer (fuselib.train.RECIPES)

    def __post_init__(self):
        # every protection and countermeasure the plan holds gets its display name from
        # .names; the plan's own labels (names that its context decides) win
        labels = {axis: dict(v) for axis, v in self.labels.items()}
        for axis in ("protection", "countermeasure"):
            values = dict.fromkeys(v for bs in self.blocks.values() for b in bs
                                   for v in getattr(b, axis + "s"))
            labels[axis] = {**{v: display.label(axis, v) for v in values},
                            **labels.get(axis, {})}
        object.__setattr__(self, "labels", labels)

    # ------------------------------------------------------------------ what it holds
    def blocks_for(self, scale: str) -> tuple:
        from .scales import check_scale

        check_scale(scale)
        return tuple(self.blocks.get(scale, self.blocks.get("*", ())))

    def protections(self, scale: str) -> list:
        return list(dict.fromkeys(p for b in self.blocks_for(scale) for p in b.protections))

    def countermeasures(self, scale: str) -> list:
        return list(dict.fromkeys(c for b in self.blocks_for(scale) for c in b.countermeasures))

    def size(self, scale: str) -> int:
        """How many runs (or certificates) the plan holds at ``scale``; a run in two blocks
        (clean data, unfiltered, say) counts once, as in :meth:`run`'s frame."""
        return len({(p, c, a, s, r) for b in self.blocks_for(scale) for p in b.protections
                    for c in b.countermeasures for a in b.archs for s in b.seeds
                    for r in b.poison_ratios})

    def command(self, scale: str) -> str:
        verb = "certify" if self.kind == "certify" else "grid"
        return f"fuselib {verb} --plan {self.name} --scale {scale}"

    def settings_for(self, scale: str) -> dict:
        return dict(self.settings.get(scale, self.settings.get("*", {})))

    # ------------------------------------------------------------------ running it
    def run(self, scale: str, seeds=None, cached_only=None, worker=None, **common):
        """Every run of the plan at ``scale`` as one tidy frame (:func:`grid`'s columns, plus
        ``poison_ratio``); ``seeds`` replaces the plan's seeds (a notebook's ``seed``);
        ``cached_only`` defaults to the plan's setting for the scale. ``kind="certify"``:
        one row per certificate. ``worker=(i, n)``: only worker ``i``'s share of ``n``
        (:meth:`fits`; run ``n`` of them side by side, then read the whole with
        ``cached_only=True``)."""
        import pandas as pd

        if cached_only is None:
            cached_only = scale in self.cached_only
        if self.kind != "grid" and worker is not None:
            raise ValueError(f"plan {self.name!r} is not a grid of runs: it has no workers")
        if self.kind == "certify":
            return self._certify(scale, seeds, cached_only, **common)
        if self.kind == "profile":
            return self._profiles(scale, seeds, cached_only)
        from .sweeps import COLUMNS, grid

        common = self._common(common)
        if worker is not None:
            common.update(worker=worker, fits=self.fits(scale, seeds, **common))
        parts = []
        for b in self.blocks_for(scale):
            for ratio in b.poison_ratios:
                df = grid(list(b.protections), list(b.countermeasures), archs=list(b.archs),
                          seeds=list(seeds or b.seeds), scale=scale, poison_ratio=ratio,
                          cached_only=cached_only, **common)
                df["poison_ratio"] = ratio
                parts.append(df)
        if not parts:
            return pd.DataFrame(columns=COLUMNS + ["poison_ratio"])
        df = pd.concat(parts, ignore_index=True)
        # a cell in two blocks (e.g. clean data, unfiltered) counts once
        return df.drop_duplicates(["protection", "countermeasure", "arch", "seed",
                                   "poison_ratio"], ignore_index=True)

    def queue(self, scale: str, seeds=None, worker=None, **common) -> list:
        """Where each run of the plan stands, training nothing, in the order :meth:`run` makes
        them (worker ``(i, n)``'s share alone when given): one dict a run with ``protection``,
        ``countermeasure``, ``arch``, ``seed``, ``poison_ratio`` and :func:`.runner.state`'s
        fields (``record``, ``epoch`` of a stopped run, ``fit``)."""
        from .runner import state
        from .sweeps import cells

        if self.kind != "grid":
            raise ValueError(f"plan {self.name!r} is not a grid of runs: it has no queue")
        common = self._common(common)
        fits = self.fits(scale, seeds, **common) if worker is not None else None
        where = {k: v for k, v in common.items()
                 if k in ("trainer", "dataset", "n_train", "n_test", "data_root", "recipe",
                          "epochs", "measured")}
        out, seen = [], set()
        for b in self.blocks_for(scale):
            for ratio in b.poison_ratios:
                for p, c, a, s in cells(b.protections, b.countermeasures, b.archs,
                                        seeds or b.seeds, worker, fits, scale=scale, **where):
                    if (p, c, a, s, ratio) in seen:  # a cell in two blocks counts once
                        continue
                    seen.add((p, c, a, s, ratio))
                    out.append({"protection": p, "countermeasure": c, "arch": a, "seed": s,
                                "poison_ratio": ratio,
                                **state(p, c, arch=a, seed=s, scale=scale, poison_ratio=ratio,
                                        **where)})
        return out

    def _common(self, common: dict) -> dict:
        """``common`` with the plan's dataset and recipe where it sets none."""
        common = dict(common)
        if self.dataset != "cifar10":
            common.setdefault("dataset", self.dataset)
        if self.recipe:
            common.setdefault("recipe", dict(self.recipe))
        if self.trainer != "fast":
            common.setdefault("trainer", self.trainer)
        return common

    def fits(self, scale: str, seeds=None, **common) -> list:
        """The fit keys the plan's runs use at ``scale``, each once, seed by seed: the list its
        workers share out (:func:`.sweeps.share`).

        The plan's own seeds are always in it, with ``seeds`` where they add to them, so that a
        worker given one seed (``bench/queue.sh`` walks the seeds one at a time) makes the same
        fits as a worker given all of them: its queue and ``--list`` agree, and two workers at
        different seeds never make one fit twice."""
        from .sweeps import fit_keys

        common = self._common(common)
        blocks = self.blocks_for(scale)
        every = sorted({s for b in blocks for s in b.seeds} | set(seeds or ()))
        out = []
        for s in every:
            for b in blocks:
                if s in b.seeds or s in (seeds or ()):
                    out += fit_keys(b.protections, [s], scale=scale, **common).values()
        return list(dict.fromkeys(out))

    def share(self, scale: str, worker, seeds=None, **common) -> list:
        """The ``(protection, seed)`` pairs whose fits (and runs) worker ``(i, n)`` makes."""
        from .sweeps import fit_keys, share

        common = self._common(common)
        mine = share(self.fits(scale, seeds, **common), worker)
        return list(dict.fromkeys(
            (b.protections[i], s) for b in self.blocks_for(scale)
            for (i, s), key in fit_keys(b.protections, seeds or b.seeds, scale=scale,
                                        **common).items() if key in mine))

    def _profiles(self, scale, seeds, cached_only):
        import pandas as pd

        from .runner import spectral_profile

        rows = []
        for b in self.blocks_for(scale):
            for p in b.protections:
                for s in seeds or b.seeds:
                    f = spectral_profile(p, scale=scale, seed=s, cached_only=cached_only)
                    if f is not None:
                        rows.append({"protection": p, "seed": s, "low": f[0], "mid": f[1],
                                     "high": f[2]})
        return pd.DataFrame(rows, columns=["protection", "seed", "low", "mid", "high"])

    def _certify(self, scale, seeds, cached_only, device=None, progress=None, **common):
        import pandas as pd

        from .certificates import certify_protection

        rows = []
        for b in self.blocks_for(scale):
            for p in b.protections:
                for cm in b.countermeasures:
                    for s in seeds or b.seeds:
                        c = certify_protection(p, scale=scale, seed=s, countermeasure=cm,
                                               device=device, progress=progress,
                                               cached_only=cached_only,
                                               **self.settings_for(scale), **common)
                        if c is not None:
                            rows.append({"protection": p, "countermeasure": cm, "seed": s, **c})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ as a table
    def table(self, scale: str, df=None, markdown: bool = True, **common):
        """The plan's cells at ``scale`` as strings (blank = not measured): from ``df`` (a
        :meth:`run` frame) when given, else from what is measured (nothing is trained)."""
        from .sweeps import table

        if df is None:
            df = self.run(scale, cached_only=True, **common)
        if self.kind == "certify":
            return certificate_table(df)
        if self.kind == "profile":
            return profile_table(df, self.protections(scale))
        return table(df, self.rows, self.cols, markdown,
                     row_order=self.order(self.rows, scale),
                     col_order=self.order(self.cols, scale),
                     labels=(self.names(self.rows, df), self.names(self.cols, df)))

    def names(self, axis: str, df) -> dict:
        """Display names of the values on ``axis`` of a :meth:`run` frame: the plan's labels,
        else :func:`.names.label`."""
        own = self.labels.get(axis, {})
        values = dict.fromkeys(df[axis]) if axis in df else {}
        if axis in ("protection", "countermeasure"):  # a row or column not measured yet too
            values = {**dict.fromkeys(getattr(self, axis + "s")(df.scale.iloc[0])
                                      if len(df) and "scale" in df else ()), **values}
        return {v: own.get(v, display.label(axis, v)) for v in values}

    def order(self, axis: str, scale: str):
        if axis == "protection":
            return self.protections(scale)
        if axis == "countermeasure":
            return self.countermeasures(scale)
        return None

    def markdown(self, scale: str, df=None, **common) -> str:
        from .sweeps import markdown

        return markdown(self.table(scale, df, **common))


def profile_table(df, order):
    """Spectral profiles as a table: the share of perturbation energy in the low, middle and
    high thirds of the radial DCT frequency (percent strings)."""
    out = df.set_index("protection").reindex([p for p in order if p in set(df.protection)])
    out = out[["low", "mid", "high"]].map(lambda v: f"{v:.1%}")
    out.columns = ["low (r < 1/3)", "mid", "high (r ≥ 2/3)"]
    out.index = [display.protection(p) for p in out.index]
    out.index.name = "protection"
    return out


def certificate_table(df):
    """Certificates as a table: trained accuracy, unsmoothed and mean smoothed accuracy on the
    certified images, and the certified bound (percent strings)."""
    import pandas as pd

    rows = {}
    for r in df.itertuples():
        rows[display.protection(r.protection)] = {
            "trained, all test": f"{r.accuracy:.2%}",
            f"unsmoothed, {r.n_eval}": f"{r.clean_accuracy:.2%}",
            "mean smoothed": f"{r.mean:.2%}",
            "certified bound": "abstain" if r.abstain else f"**{r.bound:.2%}**"}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "training data"
    return out


# --------------------------------------------------------------------------- the plans
_PLANS = [
    Plan("headline", "FUSE against clean data, AR, class-wise EM, PUE and GUE, unfiltered and "
         "under two strong low-pass filters",
         {"ci": (Block(("none", "fuse"), ("none", "lowpass:0.25")),),
          "*": (Block(("none", "ar", "em", "pue", "gue", "fuse"),
                      ("none",) + lowpass(0.25, 0.125)),)},
         notebook="04_main_results", rows="protection", cols="countermeasure"),
    Plan("quickstart", "Clean data and FUSE, no filter",
         {"*": (Block(("none", "fuse")),)}, notebook="00_quickstart", rows="protection",
         cols="countermeasure"),
    Plan("prior_lowpass", "Prior unlearnable examples without a filter and under low-pass "
         "filtering",
         {"ci": (Block(("none", "ar"), ("none", "lowpass:0.25")),),
          "cpu": (Block(("none", "ar", "em"), ("none",) + lowpass(*CUTOFFS)),
                  Block(("random",), ("none", "lowpass:0.25")),
                  Block(("lsp", "ops", "cuda", SAMPLE_EM_CPU,
                         "tap", "rem", "dh", "uc", f"uc:eps={16 / 255}"))),
          "*": (Block(ZOO, ("none",) + lowpass(*CUTOFFS)),)},
         notebook="01_high_frequency_failure", rows="protection",
         cols="countermeasure"),
    Plan("prior_profiles", "Where each prior method's perturbation puts its energy",
         {"ci": (Block(("random", "ar", "lsp", "ops", "cuda")),),
          "cpu": (Block(("random", "ar", "lsp", "ops", "cuda", "em",
                         SAMPLE_EM_CPU, "tap", "rem", "dh",
                         "uc")),),
          "*": (Block(ZOO[1:]),)},
         notebook="01_high_frequency_failure", rows="protection",
         cols="countermeasure", kind="profile"),
    Plan("main_filters", "Every protection with no filter, low-pass and high-pass",
         {"ci": (Block(("none", "ar", "fuse"), ("none", "lowpass:0.25")),),
          "cpu": (Block(("none", "random", "ar", "em", "fuse"), ("none", "lowpass:0.25")),),
          "*": (Block(ZOO + ("fuse",), ("none", "lowpass:0.25", "highpass:0.25")),)},
         notebook="04_main_results", rows="protection", cols="countermeasure"),
    Plan("main_table", "The paper's main table: every protection with no filter, three "
         "low-passes, a high-pass and JPEG 10 then low-pass, with seeds",
         {"ci": (Block(("none", "fuse"), ("none", "lowpass:0.25")),),  # the headline's runs
          "cpu": (Block(MAIN_TABLE_CPU, MAIN_FILTERS),
                  Block(MAIN_SEEDED, MAIN_FILTERS, seeds=(0, 1, 2)),
                  Block(NEWER_PROTECTIONS, MAIN_FILTERS)),
          "full": (Block(MAIN_TABLE_CPU, MAIN_FILTERS),
                   Block(MAIN_SEEDED, MAIN_FILTERS, seeds=(0, 1, 2))),
          "*": (Block(MAIN_TABLE, MAIN_FILTERS),
                Block(MAIN_SEEDED, MAIN_FILTERS, seeds=(0, 1, 2)))},
         notebook="04_main_results", rows="protection", cols="countermeasure",
         cached_only=("ci", "cpu", "full"),
         labels={"protection": {"fuse": "FUSE, the paper's reading"}}),
    Plan("lowpass_sweep", "Accuracy across DCT low-pass cutoffs",
         {"ci": (Block(("none", "fuse"), ("none", "lowpass:0.25")),),
          "*": (Block(("none", "em", "fuse", "ar"), ("none",) + lowpass(*CUTOFFS)),)},
         notebook="04_main_results"),
    Plan("suite", "The countermeasure suite (Deep Hiding protocol settings)",
         {"ci": (),
          "cpu": (Block(("none", "ar", "em"), _countermeasures.SUITE),),
          "*": (Block(("none", "ar", "em", "fuse"), _countermeasures.SUITE),)},
         notebook="04_main_results", cached_only=("cpu",)),
    Plan("newer_countermeasures", "Countermeasures newer than the paper: COIN, stronger data "
         "augmentation (SDA) and SDA with adversarial noise",
         {"ci": (), "*": (Block(("none", "ar", "em", "fuse"),
                                ("none",) + NEWER_COUNTERMEASURES),)},
         notebook="04_main_results", cached_only=("cpu",)),
    Plan("ablations", "FUSE's ablation: Random Spectral Masking and Cross-Band Guidance on/off",
         {"ci": (Block(("fuse", "fuse:rsm=False,cbg=False"), ("lowpass:0.25",)),),
          "cpu": (Block(("fuse", "fuse:rsm=False", "fuse:cbg=False",
                         "fuse:rsm=False,cbg=False", FIX, FIX + ",cbg=False"),
                        ("none", "lowpass:0.25"), seeds=(0, 1, 2)),),
          "*": (Block(("fuse", "fuse:rsm=False", "fuse:cbg=False", "fuse:rsm=False,cbg=False",
                       "fuse:cbg_weight=0.5", "fuse:cbg_weight=2.0", "fuse:cbg_cutoff=0.125",
                       "fuse:rsm_max_width=0.25", "fuse:rsm_max_width=0.75"),
                      ("none", "lowpass:0.25", "highpass:0.25")),)},
         notebook="03_ablations", rows="protection", cols="countermeasure", cached_only=("cpu",),
         labels={"protection": {"fuse": "FUSE (RSM + CBG)", "fuse:rsm=False": "no RSM",
                                "fuse:cbg=False": "no CBG",
                                "fuse:rsm=False,cbg=False": "neither (VTG-style)",
                                FIX: "FUSE + low-pass rehearsal (RSM + CBG)",
                                FIX + ",cbg=False": "low-pass rehearsal, no CBG",
                                "fuse:cbg_weight=0.5": "CBG weight 0.5",
                                "fuse:cbg_weight=2.0": "CBG weight 2",
                                "fuse:cbg_cutoff=0.125": "CBG cutoff 0.125",
                                "fuse:rsm_max_width=0.25": "RSM bands ≤ 0.25 wide",
                                "fuse:rsm_max_width=0.75": "RSM bands ≤ 0.75 wide"}}),
    Plan("fuse_leads", "Why FUSE leaks under strong low-pass filters: RSM that rehearses "
         "strong low-passes, and a generator that sees filtered images",
         {"ci": (Block(("fuse",), ("lowpass:0.25",)),),
          "*": (Block(("none", "fuse", "fuse:rsm_max_width=0.9", "fuse:rsm_lowpass=0.5",
                       "fuse:rsm_lowpass=0.5,rsm_images=True"),
                      ("none",) + lowpass(0.5, 0.25, 0.125)),
                Block(("fuse:rsm_lowpass=0.25",), ("none",) + lowpass(0.25, 0.125)),
                Block(("fuse:fast=True",), ("none", "lowpass:0.25")),
                Block((REF_LOW, REF_LOW_SEEN), ("none", "lowpass:0.125", "lowpass:0.25")),
                Block((REF_LOW_25,), ("none", "lowpass:0.25")),
                Block(("fuse:lowband=0.125,lowband_share=0.5",),
                      ("none", "lowpass:0.125", "lowpass:0.25", "highpass:0.25")))},
         notebook="03_ablations", rows="protection", cols="countermeasure", cached_only=("ci",),
         labels={"protection": {"fuse": "FUSE (RSM widths 0.1–0.5)",
                                "fuse:fast=True": "FUSE, fit in bf16 (fast=True)",
                                "fuse:rsm_max_width=0.9": "RSM widths 0.1–0.9",
                                "fuse:rsm_lowpass=0.25": "a quarter of the RSM draws a low-pass",
                                "fuse:rsm_lowpass=0.5": "half the RSM draws a low-pass",
                                "fuse:rsm_lowpass=0.5,rsm_images=True":
                                    "… and RSM filters the whole image",
                                REF_LOW: "reference: all of δ below 0.125",
                                REF_LOW_SEEN: "… optimised against low-passed images",
                                REF_LOW_25: "reference: all of δ below 0.25",
                                "fuse:lowband=0.125,lowband_share=0.5":
                                    "half the budget below 0.125"}}),
    Plan("fuse_fix", "FUSE that rehearses strong low-passes (half the RSM draws a low-pass) "
         "against the paper's reading, with seeds",
         {"ci": (Block(("none", "fuse", FIX), ("lowpass:0.25",)),),
          "*": (Block(("none",), ("none",) + lowpass(*CUTOFFS) + OTHER_FILTERS),
                Block(("fuse", FIX), ("none",) + lowpass(0.125, 0.25, 0.5), seeds=(0, 1, 2)),
                Block(("fuse", FIX), lowpass(0.375, 0.625, 0.75) + OTHER_FILTERS))},
         notebook="04_main_results", cached_only=("ci", "cpu"),
         labels={"protection": {"fuse": "FUSE, the paper's reading",
                                FIX: "FUSE + low-pass rehearsal (rsm_lowpass=0.5)"}}),
    Plan("imagenette", "The paper's ImageNet-subset claim on Imagenette at 64 px: clean data, "
         "FUSE, class-wise EM and AR, unfiltered and low-passed",
         {"ci": (), "*": (Block(("none", "fuse", "em", "ar"), ("none", "lowpass:0.25")),
                          # is FUSE's 10-epoch fit (its CIFAR-10 default) too short at 64 px?
                          # (protect's default at 64 px now): seeds tell it from the 10-epoch fit
                          Block((FUSE_64,), ("none", "lowpass:0.25"), seeds=(0, 1, 2)))},
         notebook="05_transfer", cached_only=("ci", "cpu"), dataset="imagenette:64",
         recipe=FOLDER_RECIPE),
    # the same at 64 px with CIFAR-10's augmentation (a flip and a 2-px shift, no random
    # resized crop): which protections the attacker's rescaling crop defeats
    Plan("imagenette_augment", "Imagenette at 64 px trained with CIFAR-10's augmentation (flip "
         "+ 2-px shift, no random resized crop): does the attacker's crop decide?",
         {"ci": (), "*": (Block(("none", "fuse", "em", "ar"), ("none",)),)},
         notebook="05_transfer", cached_only=("ci", "cpu"), dataset="imagenette:64"),
    # claim 5: perturbations made on one dataset, moved to another (fuselib/experiments/
    # transfer.py): Imagenette's 128-px ones randomly cropped to CIFAR-10's 32 px (the paper's
    # method), CIFAR-10's tiled to Imagenette's 64 px; beside each, the same method made on the
    # target itself. One dataset a plan, so two plans.
    Plan("transfer", "Cross-dataset transfer to CIFAR-10: FUSE, class-wise EM and AR made on "
         "Imagenette (128 px, randomly cropped to 32 px) against the same made on CIFAR-10, "
         "with seeds",
         {"ci": (), "*": (Block(TRANSFER_CIFAR, ("none", "lowpass:0.25"), seeds=(0, 1, 2)),)},
         notebook="05_transfer", rows="protection", cols="countermeasure",
         cached_only=("ci", "cpu"),
         labels={"protection": transfer_labels("CIFAR-10", "Imagenette", "imagenette:128"),
                 "countermeasure": {"none": "no filter", "lowpass:0.25": "low-pass 0.25"}}),
    Plan("transfer_imagenette", "Cross-dataset transfer to Imagenette (64 px): FUSE, "
         "class-wise EM and AR made on CIFAR-10 (32 px, tiled) against the same made on "
         "Imagenette, with seeds",
         {"ci": (), "*": (Block(TRANSFER_IMAGENETTE, ("none", "lowpass:0.25"), seeds=(0, 1)),)},
         notebook="05_transfer", rows="protection", cols="countermeasure",
         cached_only=("ci", "cpu"), dataset="imagenette:64", recipe=FOLDER_RECIPE,
         labels={"protection": {**transfer_labels("Imagenette", "CIFAR-10", "cifar10"),
                                FUSE_64: "FUSE made on Imagenette, 20-epoch fit"},
                 "countermeasure": {"none": "no filter", "lowpass:0.25": "low-pass 0.25"}}),
    Plan("architectures", "FUSE across the attacker's architectures",
         {"ci": (Block(("none", "fuse")),), "cpu": (Block(("none", "fuse")),),
          "*": (Block(("none", "em", "ar", "fuse"),
                      archs=(None, "resnet18", "resnet50", "vgg11", "densenet121", "vit")),)},
         notebook="05_transfer", rows="arch"),
    Plan("victims", "The paper's network: ResNet-18 by the paper's recipe (SGD, cosine over "
         "the scale's epochs; batch 64 at lr 0.05 at cpu and full) on clean data, AR, class-wise "
         "EM, PUE and FUSE, unfiltered and under two strong low-passes, with seeds",
         {"ci": (Block(("none", "fuse"), ("none", "lowpass:0.25")),),
          "*": (Block(VICTIM_PROTECTIONS, VICTIM_FILTERS, seeds=(0, 1, 2)),)},
         notebook="08_victims", rows="protection", cols="countermeasure",
         cached_only=("ci",), trainer="standard"),
    *(Plan(f"victims_{arch}", f"Another victim: {name} by the paper's recipe (bf16) on clean "
           "data, AR, class-wise EM and FUSE, unfiltered and under low-pass 0.25",
           {"ci": (), "*": (Block(("none", "ar", "em", "fuse"), ("none", "lowpass:0.25"),
                                  archs=(arch,)),)},
           notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
           recipe=BF16)
      for arch, name in VICTIM_ARCHS.items()),
    Plan("victims_vit", "A Vision Transformer (AdamW, warm-up, cosine) on clean data, AR, "
         "class-wise EM and FUSE, unfiltered and under low-pass 0.25",
         {"ci": (), "*": (Block(("none", "ar", "em", "fuse"), ("none", "lowpass:0.25")),)},
         notebook="08_victims", rows="protection", cols="countermeasure", trainer="vit"),
    Plan("victims_more", "ResNet-18 (bf16) against sample-wise EM and FUSE with low-pass "
         "rehearsal, and JPEG 10 then low-pass 0.25 against every protection",
         {"ci": (), "*": (Block((SAMPLE_EM_CPU, FIX), VICTIM_FILTERS),
                          Block(VICTIM_PROTECTIONS, ("jpeg:10+lowpass:0.25",)))},
         notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
         recipe=BF16),
    Plan("victims_long", "ResNet-18 by the paper's recipe (bf16) over 60 epochs: does the "
         "short schedule flatter a protection?",
         {"ci": (), "*": (Block(("none", "em", "fuse")),)},
         notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
         recipe={"epochs": 60, **BF16}),
    Plan("victims_amp", "ResNet-18 on clean data in bf16 autocast at the paper's batch and lr, "
         "beside the fp32 run of plan schedule_paper (bench/evaluator.py --archs --amp-check "
         "compares them)",
         {"ci": (), "*": (Block(("none",), ("none", "lowpass:0.25")),)},
         notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
         recipe={"amp": "auto", **SCHEDULE_CANDIDATES["paper"]}),
    Plan("victims_bf16", "ResNet-18 on clean data in bf16 autocast by the chosen schedule "
         "(batch 64, lr 0.05), with seeds, beside plan victims' fp32 runs: may the tiers after "
         "ResNet-18 train in bf16?",
         {"ci": (), "*": (Block(("none",), seeds=(0, 1, 2)),)},
         notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
         recipe=BF16),
    *(Plan(f"schedule_{name}", "ResNet-18 on clean data by a candidate short schedule: "
           + ", ".join(f"{k} {v}" for k, v in recipe.items()),
           {"ci": (), "*": (Block(("none",)),)},
           notebook="08_victims", rows="protection", cols="countermeasure", trainer="standard",
           recipe=recipe)
      for name, recipe in SCHEDULE_CANDIDATES.items()),
    Plan("partial_poisoning", "Only a share of the training images protected",
         {"ci": (Block(("fuse",)),), "cpu": (Block(("fuse",)),),
          "*": (Block(("em", "ar", "fuse"), poison_ratios=(0.2, 0.5, 0.8, 0.9, 1.0)),)},
         notebook="05_transfer", rows="poison_ratio"),
    Plan("jpeg_lowpass", "JPEG, then low-pass",
         {"ci": (Block(("none", "fuse")),), "cpu": (Block(("none", "fuse")),),
          "*": (Block(("none", "em", "ar", "fuse"),
                      ("none", "jpeg:10", "jpeg:50", "jpeg:10+lowpass:0.25",
                       "jpeg:50+lowpass:0.25")),)},
         notebook="05_transfer"),
    Plan("interactive", "Low- and high-pass at every cutoff (the slider's measured points)",
         {"*": (Block(("none", "fuse"), ("none",) + lowpass(*CUTOFFS)
                      + tuple(f"highpass:{c}" for c in CUTOFFS)),)},
         notebook="06_interactive_cutoff", cached_only=("ci", "cpu", "full", "paper")),
    Plan("rivals_lowpass", "GUE and PUE, the direct rivals, against FUSE across low-pass "
         "cutoffs",
         {"ci": (Block(("none", "fuse")),),
          "cpu": (Block(("none", "pue", "fuse"), ("none",) + lowpass(0.125, 0.25, 0.5)),
                  Block(("gue",), ("none", "lowpass:0.25", "lowpass:0.125"))),
          "*": (Block(("none", "gue", "pue", "pue:robust=True", "vtg", "fuse"),
                      ("none",) + lowpass(*CUTOFFS)),)},
         notebook="07_rivals", rows="countermeasure"),
    Plan("certificates", "The certified learnability bound (PUE's parametric smoothing)",
         {"ci": (Block(("fuse",)),), "*": (Block(("none", "pue", "em", "fuse")),)},
         notebook="07_rivals", kind="certify",
         settings={"ci": dict(sigma=0.01, n_samples=10, alpha=0.1, q=0.7, eta=0.0),
                   "*": dict(sigma=0.01, n_samples=100, alpha=0.01, q=0.7, eta=0.0,
                             n_eval=2000)}),
    Plan("cuda_rsk", "CUDA under random sharpening + square-DCT low-pass (rsk) and under COIN",
         {"ci": (), "*": (Block(("none", "cuda"), ("none", "rsk", "coin")),)},
         notebook="07_rivals", rows="protection", cols="countermeasure", cached_only=("cpu",)),
]
PLANS = {p.name: p for p in _PLANS}


def names() -> list:
    return list(PLANS)


def get(name: str) -> Plan:
    if name not in PLANS:
        raise KeyError(f"unknown plan {name!r}; known: {', '.join(PLANS)}")
    return PLANS[name]
