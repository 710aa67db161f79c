"""``fuselib protect`` is crash-consistent by design: killed with SIGKILL at any line of its
own code (``fuselib/protect.py`` and ``fuselib/utils.py``), then resumed, it ends with the same
bytes as a run that was never interrupted, and the lock the killed run held does not stop the
next one.

Each trial forks the test process (torch already imported: no start-up cost), counts the
line events of fuselib's own files in the child and sends the child SIGKILL at a seeded random
event: at any instruction of the run, between a journal line and its rename included. A
second kill during the ``--resume`` follows, then a last ``--resume`` that must finish; every
third trial then kills an ``--overwrite`` and runs it again."""
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from fuselib.protect import protect_folder
from fuselib.utils import lock_path

from test_protect_safety import make_protection, photo, save

OURS = tuple(str(Path(__file__).resolve().parent.parent / "fuselib" / f)
             for f in ("protect.py", "utils.py"))
KILLS = 24   # trials; each kills twice (a first run, then its --resume)


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _in_child(fn, kill_at=None) -> int:
    """Run ``fn`` in a forked child, SIGKILLed at the ``kill_at``-th line event of fuselib's
    own files (never, when None); returns the child's line-event count (its exit code says
    how it ended: 0 done, -9 killed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        count = [0]

        def local(frame, event, arg):
            if event == "line":
                count[0] += 1
                if count[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return local

        def hook(frame, event, arg):
            return local if frame.f_code.co_filename in OURS else None

        code = 0
        try:
            sys.settrace(hook)
            fn()
        except BaseException:  # noqa: BLE001 - reported through the exit code
            code = 3
        finally:
            sys.settrace(None)
            os.write(w, str(count[0]).encode())
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r) as fh:
        events = int(fh.read() or 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return code, events


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_anywhere_then_resume_gives_the_same_bytes(tmp_path):
    src = tmp_path / "in"
    for c, name in enumerate(["a", "b"]):
        for i in range(4):
            save(src / name / f"p{i}.png", photo(20, 24, seed=10 * c + i))
    save(src / "b" / "odd name é.png", photo(18, 18, seed=7))
    (src / "a" / "notes.txt").write_text("not an image")
    ckpt = make_protection(tmp_path / "fuse.pt", size=16)
    ref = tmp_path / "ref"
    code, total = _in_child(lambda: protect_folder(src, ref, checkpoint=ckpt))
    assert code == 0 and total > 100
    want = _tree(ref)
    assert "manifest.csv" in want and len(want) == 11

    rng = random.Random(44)
    kills = 0
    for trial in range(KILLS):
        out = tmp_path / f"out{trial}"
        code, _ = _in_child(lambda: protect_folder(src, out, checkpoint=ckpt),
                            kill_at=rng.randrange(1, total))
        kills += code == -signal.SIGKILL
        code, _ = _in_child(lambda: protect_folder(src, out, checkpoint=ckpt, resume=True),
                            kill_at=rng.randrange(1, total))
        kills += code == -signal.SIGKILL
        assert code in (0, -signal.SIGKILL), f"trial {trial}: the resume failed ({code})"
        code, _ = _in_child(lambda: protect_folder(src, out, checkpoint=ckpt, resume=True))
        assert code == 0, f"trial {trial}: the last --resume failed"
        assert _tree(out) == want, f"trial {trial}: not the bytes of an uninterrupted run"
        assert not lock_path(out).exists()
        if trial % 3 == 0:  # an --overwrite killed while it removes or rewrites
            code, _ = _in_child(lambda: protect_folder(src, out, checkpoint=ckpt,
                                                       overwrite=True),
                                kill_at=rng.randrange(1, total))
            kills += code == -signal.SIGKILL
            code, _ = _in_child(lambda: protect_folder(src, out, checkpoint=ckpt,
                                                       overwrite=True))
            assert code == 0 and _tree(out) == want, f"trial {trial}: --overwrite after a kill"
    print(f"{kills} kills")
    assert kills >= KILLS  # most kill points fall inside a run
