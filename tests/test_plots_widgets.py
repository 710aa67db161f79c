import pandas as pd
import pytest
import torch

from fuselib import countermeasures, experiments, plots, widgets


def _img(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)


def test_save_writes_html_and_png_for_every_builder(tmp_path):
    figs = {
        "l": plots.lines({"a": [1, 2, 3], "b": ([0.1, 0.5], [3, 1])}, scale="ci", hline=2),
        "b": plots.bars({"low": [1, 2], "high": [3, 4]}, ["x", "y"], scale="ci"),
        "i": plots.images({"r": [_img(0), _img(1)]}, col_titles=["p", "q"], scale="ci"),
        "h": plots.heatmaps({"a": torch.rand(8, 8), "b": torch.rand(8, 8)}, scale="ci"),
        "t": plots.table(pd.DataFrame({"v": [1.0, 2.5]}, index=["a", "b"]), scale="ci"),
    }
    for name, fig in figs.items():
        out = plots.save(fig, f"{name}_ci", folder=tmp_path)
        assert out["html"].stat().st_size > 1000
        assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "scale: ci" in fig.layout.title.text
    assert (tmp_path / "plotly.min.js").is_file()  # the HTML opens offline
    assert not list(tmp_path.glob(".*tmp*"))       # nothing half-written is left


@pytest.mark.parametrize("bad", ["", "a/b", ".hidden"])
def test_save_rejects_bad_names(tmp_path, bad):
    with pytest.raises(ValueError):
        plots.save(plots.lines({"a": [1]}), bad, folder=tmp_path)


def test_perturbation_image_maps_eps_to_the_ends():
    d = torch.zeros(3, 2, 2)
    d[0, 0, 0], d[0, 0, 1] = 8 / 255, -8 / 255
    a = plots.perturbation_image(d)
    assert a[0, 0, 0] == 255 and a[0, 0, 1] == 0 and a[1, 1, 1] == 128


def test_cutoff_view_and_lookup():
    clean = _img(0)
    delta = torch.randint(-8, 9, clean.shape)
    prot = (clean.int() + delta).clamp(0, 255).to(torch.uint8)
    table = pd.DataFrame({"protection": ["none", "fuse", "fuse"],
                          "filter": ["lowpass", "lowpass", "lowpass"],
                          "cutoff": [0.25, 0.25, 0.5], "accuracy": [0.6, 0.2, 0.3]})
    fig, spec, text = widgets.cutoff_view(clean, prot, "lowpass", 0.3, table, scale="ci")
    assert "0.25" in text and "FUSE: 20.0%" in text and "clean data: 60.0%" in text
    assert len(fig.data) == 4 and len(spec.data) == 2
    _, _, text = widgets.cutoff_view(clean, prot, "highpass", 0.3, table)
    assert text.startswith("no measured accuracy")
    box = widgets.cutoff_explorer(clean[None], prot[None], table, cutoffs=[0.25, 0.5])
    assert box.children  # builds without a browser


def test_chain_countermeasure():
    x = torch.stack([_img(i) for i in range(4)])
    chained = countermeasures.get("jpeg:10+lowpass:0.25")
    by_hand = countermeasures.get("lowpass:0.25")(countermeasures.get("jpeg:10")(x))
    assert torch.equal(chained(x), by_hand)
    assert chained.config() == {"steps": ["jpeg:10", "lowpass:0.25"]}
    assert countermeasures.get("lowpass:0.5+cutout").recipe == {"cutout": 16}
    with pytest.raises(ValueError):
        countermeasures.get("none+early_stop")


def test_partial_poisoning_keeps_a_seeded_clean_share():
    clean = torch.zeros(100, 3, 4, 4, dtype=torch.uint8)
    prot = torch.full_like(clean, 8)
    out = experiments.partial(clean, prot, 0.3, seed=0)
    touched = (out != clean).flatten(1).any(1)
    assert int(touched.sum()) == 30
    assert torch.equal(out, experiments.partial(clean, prot, 0.3, seed=0))
    with pytest.raises(ValueError):
        experiments.build_config(poison_ratio=1.5)


def test_cached_only_never_trains(results_tmp):
    before = experiments.STATS["trained"]
    assert experiments.run("none", scale="ci", cached_only=True) is None
    df = experiments.grid(["none"], ["lowpass:0.25"], scale="ci", cached_only=True)
    assert len(df) == 0 and "accuracy" in df.columns
    assert experiments.STATS["trained"] == before


def test_final_peak_table_text():
    from fuselib.notebook import final_peak

    final = pd.DataFrame({"a": [10.0, float("nan")], "b": [50.126, 60.0]}, index=[0.25, 1.0])
    peak = final + 1
    t = final_peak(final, peak)
    assert t.loc[0.25, "a"] == "10.00 (11.00)" and t.loc[1.0, "a"] == ""
    assert t.loc[0.25, "b"] == "50.13 (51.13)"
    assert final_peak(final).loc[1.0, "b"] == "60.00"
