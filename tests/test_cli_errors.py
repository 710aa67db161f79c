"""The command line given bad arguments: one line (``fuselib: error: ...`` or argparse's usual
form) and exit code 2, before any work starts — never a traceback, never after training.

Every run here fails in its checks, so nothing trains: ``forbid_work`` makes the test fail if
anything would.
"""
import inspect
import io
import os
import subprocess
import sys
from dataclasses import fields

import pytest
import torch

from fuselib import cli, countermeasures, experiments, models, protections
from fuselib.experiments import certificates, store


def one_line_error(capsys, *needles):
    """stderr is one ``fuselib: error: ...`` line holding every needle (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fuselib: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def argparse_error(capsys, *needles):
    """argparse's form: usage, then ``fuselib <command>: error: argument ...``."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("fuselib ") and ": error: argument " in last, err
    for n in needles:
        assert n in last, (n, last)
    return last


@pytest.fixture
def forbid_work(monkeypatch):
    """Fail the test if a command gets as far as fitting, training or running anything."""
    def no(*a, **k):
        raise AssertionError("the command started work before checking its arguments")

    monkeypatch.setattr(experiments, "run", no)
    monkeypatch.setattr(experiments.sweeps, "run", no)
    monkeypatch.setattr(experiments.runner, "fit_cached", no)
    monkeypatch.setattr(experiments, "certify_protection", no)
    monkeypatch.setattr(experiments, "spectral_profile", no)
    monkeypatch.setattr(certificates, "train", no)


# --------------------------------------------------------------------------- specs
@pytest.mark.parametrize("argv, needles", [
    (["grid", "tap:steps=0", "--scale", "smoke"], ["'tap:steps=0'", "steps", "got 0"]),
    (["grid", "tap:steps=-1", "--scale", "smoke"], ["'tap:steps=-1'", "steps", "got -1"]),
    (["grid", "none", "em:pgd_steps=-3", "--scale", "smoke"],
     ["'em:pgd_steps=-3'", "pgd_steps", "got -3"]),
    (["grid", "em:max_rounds=0", "--scale", "smoke"], ["'em:max_rounds=0'", "max_rounds"]),
    (["grid", "none", "--countermeasures", "none", "jpeg:abc", "--scale", "smoke"],
     ["'jpeg:abc'", "quality", "'abc'"]),
    (["grid", "none", "--countermeasures", "lowpass:abc"], ["'lowpass:abc'"]),
    (["grid", "none", "--countermeasures", "median+jpeg:0"], ["'jpeg:0'", "quality"]),
    (["evaluate", "--protection", "tap:steps=0", "--scale", "smoke"], ["'tap:steps=0'"]),
    (["evaluate", "--countermeasure", "jpeg:abc"], ["'jpeg:abc'", "quality"]),
    (["evaluate", "--protection", "nope"], ["unknown protection 'nope'"]),
    (["certify", "tap:steps=0"], ["'tap:steps=0'", "steps"]),
    (["certify", "none", "--countermeasure", "jpeg:abc"], ["'jpeg:abc'"]),
    (["profile", "none", "lsp:patch=0"], ["'lsp:patch=0'", "patch"]),
    (["fit", "fuse", "--out", "x.pt", "--epochs", "0"], ["epochs", "got 0"]),
])
def test_bad_specs_fail_first_in_one_line(argv, needles, results_tmp, forbid_work, capsys):
    assert cli.main(argv) == 2
    one_line_error(capsys, *needles)


def test_em_max_rounds_0_caches_nothing(results_tmp, forbid_work, capsys):
    """It used to fit an all-zero 'em' (0 rounds), cache it under the name em and train on it."""
    assert cli.main(["grid", "em:max_rounds=0", "--scale", "smoke"]) == 2
    one_line_error(capsys, "max_rounds must be a whole number >= 1, got 0")
    assert not (results_tmp / "protections").exists()


def test_spec_errors_name_the_spec_in_the_library_too():
    with pytest.raises(ValueError, match=r"^protection 'tap:steps=0': steps .* got 0$"):
        protections.get("tap:steps=0")  # was a ZeroDivisionError
    with pytest.raises(ValueError, match=r"^countermeasure 'jpeg:abc': quality .*'abc'$"):
        countermeasures.get("jpeg:abc")  # was "invalid literal for int()", no spec named
    with pytest.raises(ValueError, match=r"^countermeasure 'jpeg:0': quality"):  # named once
        countermeasures.get("none+jpeg:0")
    with pytest.raises(ValueError, match="^protection 'em': pgd_steps"):
        protections.get("em", pgd_steps=0)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1, got 2.5"):
        protections.get("tap", steps=2.5)  # not silently truncated to 2
    assert protections.get("tap", steps=3.0).steps == 3  # a whole float is fine


def _int_parameters(cls):
    """The int-valued parameters of a registered class (FUSE's settings included)."""
    out = []
    for name, prm in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "seed", "target_offset") or prm.kind is prm.VAR_KEYWORD:
            continue  # a seed, an offset (mod the clusters): any whole number
        if str(prm.annotation).startswith("int") or type(prm.default) is int:
            out.append(name)
    if issubclass(cls, protections.REGISTRY.cls("fuse")):
        from fuselib.protections.fuse import FuseConfig

        out += [f.name for f in fields(FuseConfig) if f.type in ("int", int) and f.name != "seed"]
    return out


# counts where 0 is meaningful: no steps (an untrained net), no residual/extra blocks
ZERO_ALLOWED = {("dh", "steps"), ("fuse", "gen_res"), ("fuse", "surrogate_steps"),
                ("vtg", "gen_res"), ("vtg", "surrogate_steps"), ("gue", "inner_steps"),
                ("rem", "adv_steps"), ("uc", "gen_blocks")}


@pytest.mark.parametrize("kind", ["protection", "countermeasure"])
def test_every_registered_count_is_checked(kind):
    """Every count of every protection and countermeasure refuses a non-positive value with a
    ValueError naming the parameter and its spec (was: accepted, or a ZeroDivisionError)."""
    reg = protections.REGISTRY if kind == "protection" else countermeasures.REGISTRY
    checked = 0
    for name in reg.names():
        for param in _int_parameters(reg.cls(name)):
            bad = [-1] if (name, param) in ZERO_ALLOWED else [-1, 0]
            for v in bad:
                with pytest.raises(ValueError, match=f"^{kind} '{name}': .*{param}") as e:
                    reg.get(name, **{param: v})
                assert "\n" not in str(e.value)
                checked += 1
    assert checked > (40 if kind == "protection" else 8)


# --------------------------------------------------------------------------- certify settings
@pytest.mark.parametrize("flag, value, needle", [
    ("--q", "2", "argument --q: must be in (0, 1), got 2.0"),
    ("--sigma", "-1", "argument --sigma: must be > 0, got -1.0"),
    ("--n-samples", "0", "argument --n-samples: must be >= 1, got 0"),
    ("--alpha", "0", "argument --alpha: must be in (0, 1), got 0.0"),
    ("--eta", "-0.5", "argument --eta: must be >= 0"),
    ("--n-eval", "0", "argument --n-eval: must be >= 1"),
    ("--sigma", "nan", "argument --sigma: must be > 0, got nan"),
    ("--q", "abc", "argument --q: expected a number, got 'abc'"),
])
def test_certify_settings_fail_while_parsing(flag, value, needle, results_tmp, forbid_work,
                                             capsys):
    """Each bad setting is named alone (not every constraint listed), before anything runs."""
    with pytest.raises(SystemExit) as e:
        cli.main(["certify", "none", "--scale", "smoke", flag, value])
    assert e.value.code == 2
    line = argparse_error(capsys, needle)
    assert line.count("must") <= 1


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["evaluate", "--epochs", "two"], "argument --epochs: expected a whole number"),
    (["evaluate", "--arch", "lenet"], "argument --arch: invalid choice"),
    (["evaluate", "--scale", "huge"], "argument --scale: invalid choice"),
    (["verify", "--sample", "0"], "argument --sample: must be >= 1"),
    (["verify", "--tolerance", "-1"], "argument --tolerance: must be >= 0"),
    (["fit", "fuse", "--out", "x.pt", "--images", "0"], "argument --images: must be >= 1"),
])
def test_bad_flag_values_are_argparse_errors(argv, needle, forbid_work, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    argparse_error(capsys, needle)


# --------------------------------------------------------------------------- where results go
@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("not a folder")
    return f


@pytest.mark.parametrize("argv", [["evaluate", "--scale", "smoke"],
                                  ["demo", "--scale", "smoke"],
                                  ["grid", "none", "--scale", "smoke"],
                                  ["certify", "none", "--scale", "smoke"],
                                  ["profile", "random"]])
def test_unwritable_results_cache_fails_before_training(argv, a_file, results_tmp, monkeypatch,
                                                        forbid_work, capsys):
    """It trained first, then ended in a 17-26-line traceback."""
    monkeypatch.setenv("FUSELIB_RESULTS", str(a_file / "c"))
    assert cli.main(argv) == 2
    one_line_error(capsys, f"FUSELIB_RESULTS={a_file / 'c'}", f"{a_file} is a file",
                   "--no-cache")


def test_no_cache_needs_no_writable_cache(a_file, results_tmp, monkeypatch, capsys):
    monkeypatch.setenv("FUSELIB_RESULTS", str(a_file / "c"))
    seen = []
    monkeypatch.setattr(experiments, "run", lambda **kw: seen.append(kw) or {
        "accuracy": 0.5, "peak_accuracy": 0.5, "peak_epoch": 1, "seconds": 0.0,
        "cached": False, "recipe": {"arch": "fastnet"}})
    assert cli.main(["evaluate", "--scale", "smoke", "--no-cache"]) == 0
    assert seen and seen[0]["cache"] is False


def test_certify_protection_checks_the_cache_before_training(a_file, results_tmp, monkeypatch,
                                                            forbid_work):
    monkeypatch.setenv("FUSELIB_RESULTS", str(a_file / "c"))
    with pytest.raises(NotADirectoryError, match="FUSELIB_RESULTS"):
        certificates.certify_protection("none", scale="smoke", n_samples=2)


@pytest.mark.parametrize("where, needle", [("f/x.csv", "is a file"), (".", "is a folder")])
def test_grid_csv_is_checked_before_the_table(where, needle, a_file, results_tmp, forbid_work,
                                              capsys):
    """It printed the table (after computing it), then a traceback."""
    target = a_file.parent / where
    assert cli.main(["grid", "none", "--scale", "smoke", "--csv", str(target)]) == 2
    one_line_error(capsys, "--csv", needle)


def test_writable_dir(tmp_path, a_file):
    assert store.writable_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert not list((tmp_path / "new" / "deep").iterdir())  # the probe is gone
    with pytest.raises(NotADirectoryError, match=f"{a_file} is a file"):
        store.writable_dir(a_file / "x", "the thing")


# --------------------------------------------------------------------------- cached classifiers
def _cached_run(results_dir):
    """A run record of the smoke scale in the cache, and the path of its classifier."""
    config, _, _ = experiments.build_config("none", scale="smoke")
    key = store.config_key(config)
    store.write_record(f"{key}.json", {"key": key, "config": store.as_json(config),
                                       "accuracy": 0.4, "peak_accuracy": 0.4, "curve": [0.4],
                                       "seconds": 1.0})
    return config, results_dir / "models" / f"{key}.pt"


def _fake_train(calls):
    def train(x, y, xte, yte, recipe, **kw):  # the run's own architecture, untrained
        calls.append(len(y))
        torch.manual_seed(0)
        return {"model": models.get(recipe.arch, 10, **recipe.model_kwargs), "accuracy": 0.25}

    return train


def test_truncated_classifier_is_named_and_recomputed(results_tmp, monkeypatch):
    """A truncated ``models/<key>.pt`` broke certify with a message that did not name the file;
    now it is treated like a corrupt record: a warning naming it, trained again, replaced."""
    config, f = _cached_run(results_tmp)
    f.parent.mkdir(parents=True)
    buf = io.BytesIO()
    torch.save({"state": models.get("fastnet", 10).state_dict()}, buf)
    f.write_bytes(buf.getvalue()[:2000])  # truncated
    with pytest.warns(UserWarning, match=f"unreadable cached classifier {f}"):
        assert store.trained_model(config) is None
    calls = []
    monkeypatch.setattr(certificates, "train", _fake_train(calls))
    with pytest.warns(UserWarning, match=str(f)):
        c = certificates.certify_protection("none", scale="smoke", n_samples=2, n_eval=20)
    assert calls and c["model_from_run"] is None and c["accuracy"] == 0.25
    assert store.trained_model(config) is not None  # recomputed and written back
    c2 = certificates.certify_protection("none", scale="smoke", n_samples=3, n_eval=20)
    assert len(calls) == 1 and c2["model_from_run"] == store.config_key(config)


def test_truncated_classifier_through_the_command_line(results_tmp, monkeypatch, capsys):
    config, f = _cached_run(results_tmp)
    f.parent.mkdir(parents=True)
    f.write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setattr(certificates, "train", _fake_train([]))
    with pytest.warns(UserWarning, match=str(f)):
        assert cli.main(["certify", "none", "--scale", "smoke", "--n-samples", "2",
                         "--n-eval", "20"]) == 0
    assert "none" in capsys.readouterr().out
    # what the warning looks like on a terminal: one line, no source line
    line = cli.short_warning("ignoring x", UserWarning, store.__file__, 1)
    assert line == "fuselib: warning: ignoring x\n"


# --------------------------------------------------------------------------- the handler
def test_errors_fuselib_raises_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.info, "cmd_info", lambda args: protections.load(tmp_path / "nope.pt"))
    assert cli.main(["info"]) == 2
    one_line_error(capsys, f"no saved protection at {tmp_path / 'nope.pt'}")


def test_foreign_errors_say_where_and_debug_shows_the_traceback(monkeypatch, capsys):
    """A ValueError raised outside fuselib (a library, a bare KeyError) may be a bug: its line
    says where and how to see the traceback; FUSELIB_DEBUG=1 re-raises; other exceptions
    (TypeError, ZeroDivisionError...) are never swallowed."""
    def foreign(args):
        int("x")  # raised by Python itself, not a message of fuselib's

    def lookup(args):
        return {}["missing"]

    monkeypatch.setattr(cli.info, "cmd_info", foreign)
    monkeypatch.setattr(cli.info, "cmd_demo", lookup)
    monkeypatch.setattr(cli.records, "cmd_results", lambda args: 1 / 0)
    monkeypatch.delenv("FUSELIB_DEBUG", raising=False)
    code = cli.main(["info"])
    err = capsys.readouterr().err
    # int() is a builtin: the innermost frame is this test file, outside the package
    assert code == 1 and "FUSELIB_DEBUG=1" in err and "test_cli_errors.py" in err
    assert cli.main(["demo"]) == 1  # a bare KeyError('missing'): a bug, not a message
    assert "KeyError" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        cli.main(["results"])
    monkeypatch.setenv("FUSELIB_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["info"])


# --------------------------------------------------------------------------- help and entry points
def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def _parser(monkeypatch):
    import argparse

    seen = {}
    real = argparse.ArgumentParser.parse_args

    def grab(self, *a, **k):
        seen["parser"] = self
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", grab)
    with pytest.raises(SystemExit):
        cli.main(["info"])
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", real)
    return seen["parser"]


def test_every_flag_has_help(monkeypatch):
    """(``protect``'s flags are checked by its own tests.)"""
    top = _parser(monkeypatch)
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, sub in [("fuselib", top), *_subparsers(top)] if name != "protect"
               for a in sub._actions if not a.help and a.dest != "help"
               and type(a).__name__ != "_SubParsersAction"]
    assert not missing, missing
    names = dict(_subparsers(top))
    for flag in ("--protection", "--countermeasure", "--arch", "--epochs"):
        assert any(flag in a.option_strings and a.help for a in names["evaluate"]._actions)
    assert any("--countermeasure" in a.option_strings and a.help
               for a in names["certify"]._actions)
    # fit fuse: every FuseConfig flag says what it does, not only its default
    bare = [a.dest for a in names["fit fuse"]._actions if a.help and a.help.startswith("(")]
    assert not bare, bare


def test_scale_defaults_differ_only_with_a_reason(monkeypatch):
    """The commands that train default to the cheap ``ci``; a command with another default (or
    none) says why in its help."""
    top = _parser(monkeypatch)
    unexplained = []
    for name, sub in _subparsers(top):
        for a in sub._actions:
            if "--scale" not in a.option_strings or a.default == "ci":
                continue
            why = (f"default {a.default}:" in a.help or f"default {a.default}," in a.help
                   if a.default else "no default:" in a.help)
            if not why:
                unexplained.append(f"{name}: {a.help}")
    assert not unexplained, unexplained


def test_top_level_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "`" not in out and "``" not in out
    assert "python -m fuselib" in out and "FUSELIB_DEBUG" in out


def test_version_and_python_m(tmp_path, capsys):
    from fuselib.version import __version__

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"fuselib {__version__}"
    # python -m fuselib, a whole process: its stderr is the one line, nothing else
    r = subprocess.run([sys.executable, "-m", "fuselib", "grid", "tap:steps=0"],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "FUSELIB_RESULTS": str(tmp_path / "results")})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("fuselib: error: protection 'tap:steps=0'")
