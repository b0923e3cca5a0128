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
    for name, told in (("auditor", _audits), ("replacer", _replacement), ("retention", _kept)):
        state = data.get(name)
        if isinstance(state, dict):
            lines += [f"{title:<16} {text}" for title, text in told(state)]
    return lines


def _when(value: object) -> str:
    """An ISO time from the daemon, as a person reads it: 2026-12-05 16:40."""
    if not isinstance(value, str):
        return "never"
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _audits(state: dict) -> list[tuple[str, str]]:
    out = [
        ("last audits", f"{row['name']} {_when(row.get('last_audit'))}: {row.get('proved', 0)} "
         f"proved, {row.get('missing', 0)} missing, {row.get('damaged', 0)} damaged")
        for row in state.get("friends") or ()
    ]  # fmt: skip
    if state.get("last_error"):
        out.append(("audit trouble", state["last_error"]))
    return out


def _replacement(state: dict) -> list[tuple[str, str]]:
    out = [("friends unseen", state["unseen"])] if state.get("unseen") else []
    if state.get("extras"):
        out.append(("extra copies", f"{state['extras']} standing in for friends away"))
    for key in ("advice", "last_error"):
        if state.get(key):
            out.append(("upkeep needs" if key == "advice" else "re-placement", state[key]))
    return out


def _kept(state: dict) -> list[tuple[str, str]]:
    out = []
    if state.get("last_run"):
        text = (f"{_when(state['last_run'])}: forgot {state.get('forgotten', 0)}, kept "
                f"{state.get('kept', 0)}, repacked {state.get('repacked_revisions', 0)} "
                f"revision(s), removed {state.get('removed_shares', 0)} share(s)")  # fmt: skip
        repack = state.get("repack")
        if repack:
            text += (f"; repack {repack['seconds']:g} s, read {format_size(repack['bytes_read'])}"
                     f", sent {format_size(repack['bytes_sent'])}")  # fmt: skip
        out.append(("last retention", text))
    if state.get("last_error"):
        out.append(("retention failed", state["last_error"]))
    for quota in state.get("quotas_nearly_full") or ():
        used, size = format_size(quota["used"]), format_size(quota["quota"])
        if quota["whose"] == "theirs":
            out.append(("nearly full", f"{quota['name']} gives you {size}: {used} used"))
        else:
            out.append(("nearly full", f"you give {quota['name']} {size}: {used} used"))
    return out
