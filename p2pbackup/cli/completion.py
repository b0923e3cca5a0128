"""Shell completion: ``p2pbackup completion bash|zsh|fish`` prints a script.

The scripts are made from the parser itself, so commands and options can never
drift from what the CLI accepts. Snapshot ids and friend names come at
completion time from ``p2pbackup __complete KIND``: friends from the profile's
catalog, snapshots from the running daemon only (a completion never starts a
node and waits on friends; without a daemon it offers ``latest``).
"""

from __future__ import annotations

import argparse
import sys

from p2pbackup.cli.common import add_home, profile_of
from p2pbackup.errors import P2PBackupError

SHELLS = ("bash", "zsh", "fish")
SNAPSHOT_ARGS = {"snapshot", "old", "new"}  # positionals that name a snapshot
FRIEND_ARGS = {"friend"}
DAEMON_WAIT = 2.0  # seconds a completion waits for the daemon's snapshot list


def add_parser(commands: argparse._SubParsersAction, root: argparse.ArgumentParser) -> None:
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        epilog="Install: bash: p2pbackup completion bash > ~/.local/share/bash-completion/"
        "completions/p2pbackup; zsh: p2pbackup completion zsh > \"${fpath[1]}/_p2pbackup\"; "
        "fish: p2pbackup completion fish > ~/.config/fish/completions/p2pbackup.fish",
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(run=lambda args: _print(script(root, args.shell)))
    # Hidden: the words a script offers for a snapshot or a friend, one per line.
    words = commands.add_parser("__complete")
    add_home(words, default=argparse.SUPPRESS)
    words.add_argument("kind", choices=("snapshots", "friends"))
    words.set_defaults(run=run_words)


def _print(text: str) -> int:
    sys.stdout.write(text)
    return 0


def _commands(root: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: sub for name, sub in action.choices.items() if not name.startswith("_")}
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def _kinds(parser: argparse.ArgumentParser) -> list[str]:
    """What each positional argument names, in order: snapshots, friends, or files
    (the last one repeats)."""
    kinds = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        if action.dest in SNAPSHOT_ARGS:
            kinds.append("snapshots")
        elif action.dest in FRIEND_ARGS:
            kinds.append("friends")
        else:
            kinds.append("files")
    return kinds or ["files"]


def _valued(parser: argparse.ArgumentParser) -> list[str]:
    """The options that take a value: the word after one is not a positional argument."""
    return sorted(o for a in parser._actions if a.nargs != 0 for o in a.option_strings)


def _help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def script(root: argparse.ArgumentParser, shell: str) -> str:
    commands = _commands(root)
    if shell == "fish":
        return _fish(root, commands)
    bash = _bash(root, commands)
    if shell == "zsh":  # zsh runs the bash function through its bashcompinit layer
        return "#compdef p2pbackup\nautoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash


def _bash(root: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser]) -> str:
    cases = "\n".join(
        f'        {name}) opts="{" ".join(_options(sub))}"; valued=" {" ".join(_valued(sub))} "'
        f'; kinds=({" ".join(_kinds(sub))}) ;;'
        for name, sub in commands.items()
    )
    return f"""# p2pbackup completion for bash (made by `p2pbackup completion bash`)
_p2pbackup() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local cmd="" home=() i n=0 opts="" valued=" " kinds=(files)
    for ((i = 1; i < COMP_CWORD; i++)); do
        local word=${{COMP_WORDS[i]}}
        if [[ $word == --home ]]; then
            home=(--home "${{COMP_WORDS[i+1]}}"); ((i++))
        elif [[ -z $cmd && $word != -* ]]; then
            cmd=$word
            case $cmd in
{cases}
            esac
        elif [[ -n $cmd && $valued == *" $word "* ]]; then
            ((i++))
        elif [[ -n $cmd && $word != -* ]]; then
            ((n++))
        fi
    done
    if [[ $prev == --home || $prev == --to ]]; then
        COMPREPLY=($(compgen -d -- "$cur")); return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "{" ".join(commands)} {" ".join(_options(root))}" -- "$cur"))
        return
    fi
    [[ $valued == *" $prev "* ]] && return
    local kind=${{kinds[n]:-${{kinds[-1]}}}}
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $kind == files ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    else
        local IFS=$'\\n'
        COMPREPLY=($(compgen -W "$(p2pbackup "${{home[@]}}" __complete $kind 2>/dev/null)" \\
            -- "$cur"))
    fi
}}
complete -F _p2pbackup p2pbackup
"""


def _fish(root: argparse.ArgumentParser, commands: dict[str, argparse.ArgumentParser]) -> str:
    lines = [
        "# p2pbackup completion for fish (made by `p2pbackup completion fish`)",
        "complete -c p2pbackup -f",
    ]
    for name, sub in commands.items():
        text = _help(root, name).replace("'", "\\'")
        lines.append(f"complete -c p2pbackup -n __fish_use_subcommand -a {name} -d '{text}'")
        seen = f"-n '__fish_seen_subcommand_from {name}'"
        for option in _options(sub):
            lines.append(f"complete -c p2pbackup {seen} -l {option[2:]}")
        for kind in dict.fromkeys(_kinds(sub)):  # fish offers every kind a command takes
            if kind == "files":
                lines.append(f"complete -c p2pbackup {seen} -F")
            else:
                lines.append(f"complete -c p2pbackup {seen} -a '(p2pbackup __complete {kind})'")
    return "\n".join(lines) + "\n"


def run_words(args: argparse.Namespace) -> int:
    profile = profile_of(args)
    if not profile.exists:
        return 0
    words = _friend_names(profile) if args.kind == "friends" else _snapshot_words(profile)
    sys.stdout.write("".join(f"{word}\n" for word in words))
    return 0


def _friend_names(profile) -> list[str]:
    from p2pbackup.storage.catalog import Catalog

    catalog = Catalog(profile.path("catalog.sqlite"))
    try:
        return sorted({friend.name for friend in catalog.friends()})
    finally:
        catalog.close()


def _snapshot_words(profile) -> list[str]:
    from p2pbackup.cli import client

    try:
        snaps = client.call(profile.home, "snapshots", {}, _ignore, timeout=DAEMON_WAIT)
    except (client.NoDaemon, P2PBackupError, OSError):  # a completion offers what it can
        snaps = []
    devices = sorted({snap["device"] for snap in snaps if snap.get("device")})
    return ["latest", *(f"latest@{d}" for d in devices), *(snap["id"] for snap in snaps)]


def _ignore(event: object) -> None:
    pass
