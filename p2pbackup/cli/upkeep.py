"""``p2pbackup upkeep``: what the daemon does by itself (audits, re-placement, retention),
and its settings. With options, changes them (the daemon's ``upkeep`` job checks every
value first: a bad one changes nothing); without, shows them."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from p2pbackup.cli.common import add_common
from p2pbackup.cli.runner import run_job
from p2pbackup.cli.settings import duration
from p2pbackup.core.sizes import format_size

_INTERVALS = (
    ("audit_every", "every share is proved at least once this often, e.g. 1d, 12h, 30s"),
    ("grace", "a friend unseen this long has its shares re-placed, e.g. 7d"),
)
_NUMBERS = (
    ("audit_read", "the fraction of audited bytes also read in full, e.g. 0.001"),
    ("quota_warn", "warn when a quota is this full, e.g. 0.9 or 90%"),
    ("keep_hourly", "snapshots kept, one per hour (0: none by this rule)"),
    ("keep_daily", "snapshots kept, one per day"),
    ("keep_weekly", "snapshots kept, one per week"),
    ("keep_monthly", "snapshots kept, one per month"),
    ("repack_cpu", "the share of one core a repack may use, e.g. 0.5"),
    ("repack_rate", "bytes per second a repack may move (0: the upload limit)"),
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    upkeep = commands.add_parser(
        "upkeep", help="audits, re-placement and retention the daemon runs by itself",
        description="Show what upkeep does and its settings; any option changes that setting. "
        "Retention keeps, per device and folder set, the newest snapshot of each of the last "
        "N hours, days, weeks and months; every --keep-* at 0 turns it off.",
    )  # fmt: skip
    add_common(upkeep)
    for name, helptext in (*_INTERVALS, *_NUMBERS):
        upkeep.add_argument("--" + name.replace("_", "-"), dest=name, metavar="VALUE",
                            help=helptext)  # fmt: skip
    upkeep.set_defaults(run=run_upkeep)


def run_upkeep(args: argparse.Namespace) -> int:
    # Passed as typed: the daemon reads 30s, 1d or 0.9 and says which one is wrong.
    params = {name: getattr(args, name) for name, _ in (*_INTERVALS, *_NUMBERS)}
    params = {name: value for name, value in params.items() if value is not None}
    return run_job(args, "upkeep", params, upkeep_text)


def upkeep_text(data: dict) -> str:
    s = data["settings"]
    keeps = ", ".join(f"{s['keep_' + rule]} {rule}" for rule in ("hourly", "daily", "weekly",
                                                                  "monthly"))  # fmt: skip
    off = not any(s["keep_" + r] for r in ("hourly", "daily", "weekly", "monthly"))
    lines = [
        f"audits           every share at least every {duration(s['audit_every'])}, "
        f"{s['audit_read']:.2%} read in full",
        f"re-placement     after a friend is unseen for {duration(s['grace'])}",
        f"retention        {'off' if off else 'keep ' + keeps} (per device and folder set)",
        f"repack           {s['repack_cpu']:.0%} of a core, "
        + (f"{format_size(s['repack_rate'])}/s" if s["repack_rate"] else "the upload limit"),
        f"quota warning    at {s['quota_warn']:.0%} full",
    ]
    if data.get("changed"):
        lines.append(f"changed          {', '.join(data['changed'])}")
    if not data.get("daemon"):
        lines.append("No daemon runs for this profile: upkeep starts with 'p2pbackup daemon'.")
    lines += state_lines(data)
    return "\n".join(lines)


def state_lines(data: dict[str, Any]) -> list[str]:
    """What each upkeep part of the daemon says (``status`` shows these too)."""
    lines = []
    for name in ("auditor", "replacer", "retention"):
        state = data.get(name)
        if not isinstance(state, dict):
            continue
        told = [f"{key.replace('_', ' ')} {_value(value)}" for key, value in state.items()
                if value not in (None, [], {})]  # fmt: skip
        lines.append(f"{name:<16} {'; '.join(told) or 'nothing yet'}")
    return lines


def _value(value: object) -> str:
    if isinstance(value, float) and value > 1e9:  # a Unix time
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
