"""``fuselib protect``: a user's image folder protected with FUSE (:mod:`fuselib.protect`)."""
from __future__ import annotations

import sys
import time

from .common import whole_number, seed_number


def cmd_protect(args):
    """Protect an ImageFolder tree with FUSE (see fuselib.protect)."""
    from ..protect import DEFAULT_TRAINING, protect_folder

    training = {"--epochs": args.epochs, "--portion": args.portion,
                "--batch-size": args.batch_size, "--seed": args.seed, "--device": args.device,
                "--save-protection": args.save_protection}
    if args.checkpoint:
        given = [flag for flag, v in training.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply when training on the spot; "
                             f"--checkpoint {args.checkpoint} is already trained: drop them")
        settings = {}
    else:
        settings = {k: v if v is not None else DEFAULT_TRAINING[k] for k, v in
                    {"epochs": args.epochs, "portion": args.portion,
                     "batch_size": args.batch_size}.items()}
    t0 = time.perf_counter()
    try:
        s = protect_folder(args.input, args.output, checkpoint=args.checkpoint, size=args.size,
                           seed=args.seed, device=args.device,
                           save_protection=args.save_protection, resume=args.resume,
                           overwrite=args.overwrite, force=args.force,
                           **({"max_pixels": args.max_pixels} if args.max_pixels else {}),
                           **settings)
    except KeyboardInterrupt as e:
        print(f"fuselib: {e.args[0] if e.args else 'interrupted'}", file=sys.stderr)
        raise SystemExit(130) from None
    for w in s["warnings"]:
        print(f"fuselib: warning: {w}", file=sys.stderr)
    if args.save_protection:
        print(f"saved the FUSE protection to {args.save_protection} (reuse with --checkpoint; "
              "keep it private: it holds the class patterns)")
    kept = f" (kept {s['resumed']} from the earlier run)" if s["resumed"] else ""
    quality = (f"max |δ| {s['max_abs_delta']}/255, min PSNR {s['min_psnr_db']:.1f} dB"
               if s["min_psnr_db"] is not None else "no image written")
    print(f"wrote {s['written']} protected PNGs{kept} to {args.output} ({quality}; patterns "
          f"{s['size'][0]}x{s['size'][1]}) in {time.perf_counter() - t0:.0f} s; manifest "
          f"{s['manifest']}")
    if s["skipped"]:
        print(f"skipped {s['skipped']} file(s): see the manifest's status column",
              file=sys.stderr)


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    p = sub.add_parser("protect", help="protect an image folder (class = sub-folder) with FUSE")
    from ..protect import DEFAULT_TRAINING
    p.add_argument("input", help="ImageFolder tree: INPUT/<class>/<images> (never written to)")
    p.add_argument("output", help="an empty (or new) folder for the protected PNG tree and "
                                  "manifest.csv")
    p.add_argument("--checkpoint", default=None,
                   help="a saved fuse protection to apply (else one is trained on the spot; "
                        "the training flags below are then an error)")
    p.add_argument("--size", "--train-size", dest="size", type=int, default=None,
                   help="working size S: the resolution the images will be used at; class "
                        "patterns are S×S, tiled over larger photos (default 64 when training, "
                        "the checkpoint's otherwise)")
    p.add_argument("--resume", action="store_true",
                   help="finish an earlier run into OUTPUT: keep the files its manifest lists "
                        "whose source and output hashes still match, write the rest")
    p.add_argument("--overwrite", action="store_true",
                   help="remove what an earlier run wrote into OUTPUT (per its manifest) first")
    p.add_argument("--force", action="store_true",
                   help="protect a folder of one class (one pattern for every image)")
    p.add_argument("--max-pixels", type=whole_number(), default=None,
                   help="images of more pixels are skipped before decoding, listed in the "
                        "manifest (default 100,000,000: a 100 MP photo)")
    p.add_argument("--save-protection", default=None,
                   help="training: save the trained protection here right after training "
                        "(outside INPUT and OUTPUT; keep it private)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training: FUSE epochs (default by the working size: 10 up to 32 px, "
                        "20 above)")
    p.add_argument("--portion", type=float, default=None,
                   help="training: share of the images the generator trains on, in (0, 1] "
                        f"(default {DEFAULT_TRAINING['portion']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training: batch size (default {DEFAULT_TRAINING['batch_size']})")
    p.add_argument("--seed", type=seed_number, default=None, help="training: random seed (default 0)")
    p.add_argument("--device", default=None,
                   help="training: cpu, cuda, cuda:1, mps (default: a GPU when there is one)")
    p.set_defaults(func=cmd_protect)
