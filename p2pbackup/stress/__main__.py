"""``python -m p2pbackup.stress [--json] [--seed N] [--kills N] [--only SCENARIO] [-v]``.

Exit 0 when every scenario kept its promises (a skipped one, with its reason, counts as
kept), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys

from p2pbackup.stress.suite import DEFAULT_KILLS, SCENARIOS, run_all, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2pbackup.stress", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--seed", type=int, help="repeat a run (default: a random seed)")
    parser.add_argument("--kills", type=int, default=DEFAULT_KILLS,
                        help="SIGKILLs of the owner's backup (default: %(default)s)")  # fmt: skip
    parser.add_argument("--only", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable)")  # fmt: skip
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print every command and how long it took")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep each scenario's folder (profiles, logs, pools)")  # fmt: skip
    args = parser.parse_args(argv)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell: the daemons would inherit the ignored
        # SIGINT, and each stop would wait out LocalGrid's 15 s before a SIGKILL.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    # Progress goes to stderr, so --json prints only the summary on stdout.
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    summary = run_all(seed, args.kills, args.only, say, args.verbose, args.keep)
    print(json.dumps(summary) if args.json else text(summary))
    return 0 if summary["passed"] and not summary["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
