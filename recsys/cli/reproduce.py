"""``recsys reproduce EXPORT --data SPEC_DIR``: rebuild an export from what it carries, bit for bit or not.

1. Check: the export's fingerprint and config against this environment and SPEC_DIR; each difference
   is named ("data: shard train/part-00003 sha256 differs", "libraries: tensorflow 2.21.0 → 2.20.0",
   "workers: workers 4 → 2"). Any difference stops it with exit 2 before training, unless its kind is
   in ``--allow`` (or ``--force``). ``--check_only`` stops here (exit 0 when nothing differs).
2. Rebuild with the recorded config and topology into ``--output``: in this process for one worker,
   on the supervised local cluster (:mod:`recsys.launch.local`) for more.
3. Verdict: "reproduced bit for bit" (the same weights digest, exit 0) or "not reproduced" with the
   relative PD, absolute PD and flip rate between the original and the rebuild on the eval split, with
   95% bootstrap intervals (exit 1). ``certificate.json`` and ``certificate.md`` go into ``--output``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time

from recsys.cli.flagging import Flags
from recsys.settings.reproduce import ReproduceSettings

SETTINGS = Flags(ReproduceSettings, "reproduce")
EXIT_DIFFERS = 2  # differences found and not allowed (also a usage error, as for every subcommand)


def default_output(export: str) -> str:
    """A new directory under the current one, named after the export's version and the time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return os.path.abspath(f"reproduce-{os.path.basename(os.path.normpath(export))}-{stamp}")


def run(export: str, s: ReproduceSettings, argv: list[str]) -> int:
    """Check, rebuild, judge; the exit status (0 bit for bit, 1 not reproduced, 2 refused).

    ``argv``: the command line after ``recsys`` (cited in the certificate)."""
    from recsys.reproduce import check as reproduce
    from recsys.reproduce import verdict as judge
    from recsys.reproduce.rebuild import rebuild

    export = os.path.abspath(export)
    try:
        chk = reproduce.check(export, s.data, s.workers, os.path.abspath(s.parent) if s.parent else "")
    except (OSError, ValueError) as err:
        print(f"recsys reproduce: {err}", file=sys.stderr)
        return EXIT_DIFFERS
    print(f"recsys reproduce: {export} (weights {chk.fingerprint['weights_sha256'][:16]}, "
          f"{chk.workers} worker{'s' if chk.workers > 1 else ''})")
    for d in chk.differences:
        print(f"  differs: {d}")
    if not chk.differences:
        print("  environment and data match the fingerprint")
    refused = chk.refused(("all",) if s.force else s.allow)
    if refused:
        kinds = ",".join(sorted({d.kind for d in refused}))
        print(f"recsys reproduce: refused before training: {len(refused)} difference(s); pass "
              f"--allow {kinds} (or --force) to rebuild anyway", file=sys.stderr)
        return EXIT_DIFFERS
    if s.check_only:
        return 0
    output = os.path.abspath(s.output) if s.output else default_output(export)
    if os.path.isdir(output) and os.listdir(output):
        print(f"recsys reproduce: --output {output} is not empty", file=sys.stderr)
        return EXIT_DIFFERS
    start = time.monotonic()
    try:
        rebuilt, command = rebuild(chk.config, output, chk.workers)
    except (RuntimeError, OSError, ValueError) as err:
        print(f"recsys reproduce: the rebuild failed: {err}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - start
    v = judge.verdict(export, rebuilt, chk.config.data.spec_dir, draws=s.draws,
                          threshold=s.flip_threshold)
    v["rebuilt_export"] = rebuilt
    commands = {"original": str(chk.fingerprint.get("command") or "not recorded"),
                "reproduce": shlex.join(["recsys", *argv]), "rebuild": command}
    js, md = judge.write_certificate(output, chk, v, commands, seconds)
    for line in judge.verdict_lines(v):
        print(line)
    if not v["reproduced"] and chk.differences:
        print("  next to the differences: " + "; ".join(map(str, chk.differences)))
    print(f"rebuild {seconds:.1f} s; certificate {md} (and {os.path.basename(js)})")
    return 0 if v["reproduced"] else 1


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        print("usage: recsys reproduce EXPORT --data SPEC_DIR [--output DIR] [--check_only] "
              "[--allow KINDS] [--force] [--parent PATH]", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(argv[1], SETTINGS.load("reproduce"), sys.argv[1:]))  # the dispatcher's argv[1]: reproduce
