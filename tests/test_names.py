"""Display names: one map from spec strings to what tables and figures show."""
import re
from pathlib import Path

from fuselib import countermeasures, protections
from fuselib.experiments import names, plans

ROOT = Path(__file__).resolve().parent.parent


def test_every_registered_method_has_a_display_name():
    assert set(protections.names()) <= set(names.PROTECTIONS)
    assert set(countermeasures.names()) <= set(names.COUNTERMEASURES)


def test_names_read_as_words():
    assert names.protection("none") == "clean data"
    assert names.countermeasure("none") == "no filter"
    assert names.countermeasure("lowpass:0.25") == "low-pass 0.25"
    assert names.countermeasure("lowpass:cutoff=0.25") == "low-pass 0.25"
    assert names.countermeasure("bandstop:lo=0.25,hi=0.5") == "band-stop 0.25–0.5"
    assert names.countermeasure("jpeg:10+lowpass:0.25") == "JPEG 10, then low-pass 0.25"
    assert names.countermeasure("adv:l2") == "adversarial training (L2)"
    assert names.protection("em:mode=sample,pgd_steps=5,max_rounds=10").startswith(
        "sample-wise EM")
    assert names.protection("fuse@imagenette:128") == "FUSE made on Imagenette"
    assert names.protection("fuse:cbg_weight=2.0") == "FUSE (cbg_weight 2)"
    assert names.arch("resnet18") == "ResNet-18" and names.arch(None) == "fastnet"


def test_every_plan_names_every_spec_it_holds():
    """A plan's labels cover every protection and countermeasure of every scale, and none is
    shown as its raw spec."""
    for name in plans.names():
        plan = plans.get(name)
        for b in (b for bs in plan.blocks.values() for b in bs):
            for axis, values in (("protection", b.protections),
                                 ("countermeasure", b.countermeasures)):
                for v in values:
                    shown = plan.labels[axis][v]
                    assert not re.search(r"[a-z_]+:[\w.]", shown), (name, v, shown)
    shown = {plans.get(n).labels["protection"].get("none") for n in plans.names()}
    assert shown <= {"clean data", None}


def test_generated_tables_show_no_raw_spec():
    """The README's and RESULTS.md's tables name rows and columns in words."""
    raw = re.compile(r"\b(lowpass|highpass|bandstop|jpeg):|\bem:mode|^\| none \|", re.M)
    for f in ("README.md", "RESULTS.md"):
        heads = [line for line in (ROOT / f).read_text().splitlines()
                 if line.startswith("| ") and not line.startswith("| ---")]
        bad = [line[:80] for line in heads if raw.search(line.split(" | ")[0])
               or (line.startswith(("| protection |", "| countermeasure |"))
                   and raw.search(line))]
        assert not bad, (f, bad)
