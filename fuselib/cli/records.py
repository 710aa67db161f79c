"""What the records say: spectral profiles (``profile``), recomputed records (``verify``), the generated files (``results``), certificates (``certify``)."""
from __future__ import annotations

from ..experiments import plans
from ..experiments import SCALES
from .common import whole_number, seed_number, nonnegative_number, certify_setting, check_specs, check_cache, header


def cmd_profile(args):
    """Spectral energy of each protection's perturbations in low / mid / high radial bands."""
    from .. import experiments, spectral

    check_specs(args.protections)
    check_cache(args)
    edges = [0, 1 / 3, 2 / 3, 1]
    r = spectral.radial_frequency((32, 32))
    share = [float(((r >= lo) & ((r <= hi) if hi == 1 else (r < hi))).float().mean())
             for lo, hi in zip(edges[:-1], edges[1:])]
    print(f"energy of protected - clean, orthonormal DCT, radial r in [0, 1] | scale "
          f"{args.scale}, seed {args.seed}")
    print(f"{'protection':40s} {'low <1/3':>9} {'mid':>9} {'high >=2/3':>11}")
    print(f"{'(white noise = share of coefficients)':40s} {share[0]:9.1%} {share[1]:9.1%} "
          f"{share[2]:11.1%}")
    for p in args.protections:
        e = experiments.spectral_profile(p, scale=args.scale, seed=args.seed,
                                         data_root=args.data_root)
        print(f"{p:40s} {e[0]:9.1%} {e[1]:9.1%} {e[2]:11.1%}")


def cmd_verify(args):
    """Recompute shipped run records from scratch and compare (fuselib.experiments.verify)."""
    from .. import experiments

    header()
    if args.fits:
        tol = 0.5 if args.tolerance is None else args.tolerance
        df = experiments.verify_fits(args.scale, names=args.fits or None, tolerance=tol)
        if df.empty:
            raise FileNotFoundError(f"no shipped {args.scale}-scale fits"
                                    + (f" of {' '.join(args.fits)}" if args.fits else ""))
        for r in df.itertuples():
            verdict = "ok" if r.reproduces else "DIFFERS"
            print(f"{r.key}  {r.protection:28s} n_train {r.n_train:6d}  equal pixels "
                  f"{r.equal_pixels:7.2%}  mean |diff| {r.mean_abs_diff:.3f}/255  max "
                  f"{r.max_abs_diff:.0f}/255  {r.seconds:5.0f} s  {verdict}")
        bad = int((~df.reproduces).sum())
        print(f"{len(df) - bad} of {len(df)} shipped fit(s) reproduced "
              f"(tolerance: mean |diff| <= {tol}/255)")
        if bad:
            raise RuntimeError(f"{bad} shipped fit(s) did not reproduce")
        return
    tol = 0.005 if args.tolerance is None else args.tolerance
    df = experiments.verify(args.scale, sample=args.sample, seed=args.seed, keys=args.keys,
                            tolerance=tol)
    for r in df.itertuples():
        verdict = "ok" if r.reproduces else ("CONFIG DIFFERS" if not r.same_config else "DIFFERS")
        print(f"{r.key}  {r.protection:28s} {r.countermeasure:22s} shipped {r.shipped:7.2%}  "
              f"recomputed {r.recomputed:7.2%}  {r.seconds:5.0f} s  {verdict}")
    bad = int((~df.reproduces).sum())
    print(f"{len(df) - bad} of {len(df)} shipped record(s) reproduced "
          f"(tolerance {tol:.2%})")
    if bad:
        raise RuntimeError(f"{bad} shipped record(s) did not reproduce")


def cmd_results(args):
    """Write RESULTS.md and the README's generated blocks from the shipped records."""
    from ..experiments import report

    changed = report.write(check=args.check)
    if args.check:
        if changed:
            raise RuntimeError(f"out of date: {', '.join(map(str, changed))} (run: make results)")
        print("RESULTS.md and the README's generated blocks are up to date")
    else:
        print("wrote " + (", ".join(map(str, changed)) if changed else "nothing (up to date)"))


def cmd_certify(args):
    """Certified learnability bound (fuselib.certify) of each protection's training data."""
    from .. import experiments
    from ..certify import check_settings

    settings = {k: getattr(args, k) for k in experiments.CERTIFY_SETTINGS}
    jobs = [(p, args.countermeasure, args.seed) for p in args.protections]
    if args.plan:
        plan = experiments.plans.get(args.plan)
        if plan.kind != "certify" or args.protections:
            raise ValueError(f"--plan takes a plan of certificates and no protections; "
                             f"{plan.name!r} is run by: {plan.command(args.scale)}")
        settings = plan.settings_for(args.scale)
        jobs = [(p, cm, s) for b in plan.blocks_for(args.scale) for p in b.protections
                for cm in b.countermeasures for s in b.seeds]
    elif not jobs:
        raise ValueError("name the protections to certify, or a plan with --plan NAME")
    # every setting, spec and the cache checked before any classifier is trained (the flags
    # were checked while parsing; a plan's settings are checked here)
    check_settings(**settings)
    check_specs({p for p, _, _ in jobs}, {cm for _, cm, _ in jobs})
    check_cache(args)
    header()
    print(f"scale {args.scale}, " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    print(f"{'protection':40s} {'accuracy':>9s} {'mean(σ)':>9s} {'bound':>9s} {'seconds':>8s}")
    rows = []
    for p, cm, seed in jobs:
        c = experiments.certify_protection(p, scale=args.scale, seed=seed, countermeasure=cm,
                                           data_root=args.data_root, cache=not args.no_cache,
                                           **settings)
        bound = "abstain" if c["abstain"] else f"{c['bound']:.2%}"
        print(f"{p:40s} {c['accuracy']:9.2%} {c['mean']:9.2%} {bound:>9s} "
              f"{c['seconds']:8.0f}{' (cached)' if c['cached'] else ''}")
        rows.append(c)
    return rows


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    scale, seed, no_cache = f.scale, f.seed, f.no_cache
    p = sub.add_parser("profile", help="spectral energy profile of protections' perturbations")
    p.add_argument("protections", nargs="+", help="protection specs, e.g. random lsp fuse")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the protection's fit (default 0)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("verify", help="recompute shipped records from scratch and compare")
    p.add_argument("--scale", default="cpu", choices=list(SCALES),
                   help="the scale of the shipped records (default cpu, the scale most of them are at; "
                        "the training commands default to ci, which ships few)")
    p.add_argument("--sample", type=whole_number(), default=3,
                   help="how many records, drawn at random (default 3)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the random draw")
    p.add_argument("--keys", nargs="*", default=None, help="verify these record keys instead")
    p.add_argument("--tolerance", type=nonnegative_number, default=None,
                   help="largest accepted accuracy difference (default 0.005 = 0.5 points); "
                        "with --fits, mean grey-level difference (default 0.5 of 255)")
    p.add_argument("--fits", nargs="*", default=None,
                   help="refit the shipped fitted protections instead (all, or these names) "
                        "and compare the protected images")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("results", help="write RESULTS.md and the README's generated blocks "
                                       "from results/measured")
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail when a generated file is out of date")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("certify", help="certified learnability bound of protected training data")
    p.add_argument("protections", nargs="*", help="protection specs")
    p.add_argument("--plan", default=None, choices=[n for n in plans.names()
                                                    if plans.get(n).kind == "certify"],
                   help="certify a named plan (its protections and settings)")
    p.add_argument("--countermeasure", default="none",
                   help="countermeasure spec the classifier is trained under (default none)")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **seed)
    p.add_argument("--sigma", type=certify_setting("sigma"), default=0.01,
                   help="weight-noise std, > 0 (default 0.01)")
    p.add_argument("--n-samples", type=certify_setting("n_samples", int), default=100,
                   help="weight draws, >= 1 (default 100)")
    p.add_argument("--n-eval", type=certify_setting("n_eval", int), default=None,
                   help="certify on the first N test images (default all; each draw evaluates "
                        "them)")
    p.add_argument("--alpha", type=certify_setting("alpha"), default=0.01,
                   help="1 - confidence, in (0, 1) (default 0.01)")
    p.add_argument("--q", type=certify_setting("q"), default=0.7,
                   help="accuracy quantile, in (0, 1) (default 0.7)")
    p.add_argument("--eta", type=certify_setting("eta"), default=0.0,
                   help="certified weight radius, >= 0 (default 0)")
    p.add_argument("--no-cache", **no_cache)
    p.set_defaults(func=cmd_certify)
