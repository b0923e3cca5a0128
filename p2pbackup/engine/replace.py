"""Shares placed again off friends that can no longer be counted on, and dropped again.

Two cases, one mechanism (``Replacement.run``, under the daemon's job lock):

- A friend unseen longer than the grace period (daemon/replacer.py decides who): each
  record with a share placed on it, and no copy of that share on a friend online, has
  that share rebuilt from k others and stored on a friend online, so every record again
  survives losing one more friend. Each copy made is an *extra*, noted in local state
  (``state.extras``: where it is, whom it stands in for).
- A friend whose quota is now below what it holds for me (its ``stat``): shares placed
  on it are rebuilt elsewhere, then removed from it, until what I keep there fits.

When a friend with extras answers again and still lists those shares (and a few of them
prove right: a random block each, engine/audit.py), the extras are removed where they were
made and the placement points at it again: nothing is stored or counted twice. A share
it no longer lists keeps its extra, which becomes the placed copy.

Rebuilding is engine/rebuild.py's, a batch of segments at a time whatever the share's
size, so memory is bounded. A record that the friends online have no room for is left
as it was, and counted: the caller is told who could give how much more room, or that
the safety rule needs another friend (``Outcome.short``, ``Outcome.more_friends``).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import trio

from p2pbackup.core import erasure, placement
from p2pbackup.core.refs import RecordDescriptor
from p2pbackup.engine import events as ev
from p2pbackup.engine import rebuild
from p2pbackup.engine.audit import prove_blocks
from p2pbackup.engine.fetcher import list_holders
from p2pbackup.engine.rangecheck import check_share
from p2pbackup.engine.state import BackupState, StoredRecord
from p2pbackup.engine.verify import CHALLENGES
from p2pbackup.errors import IntegrityError, NoBlockProofs, P2PBackupError, PeerError
from p2pbackup.storage.store import ShareKey, ShareStore, Usage

PROOFS = 3  # shares a returning friend proves before its extras are dropped
RECORDS_AT_ONCE = 4  # records placed again at the same time
SAVE_EXTRAS = 64  # records placed again between two writes of the extras
UNLIMITED = 1 << 62  # room, when working out how much more room would do
_pick = secrets.SystemRandom()


@dataclass
class Outcome:
    records: int = 0  # records placed again
    shares: int = 0  # shares stored again
    dropped: int = 0  # extras removed from the friends that held them
    unplaced: int = 0  # records that still need a friend they cannot count on
    damaged: int = 0  # records too few good shares were found of (a repair's work)
    short: Counter[str] = field(default_factory=Counter)  # friend -> bytes more room needed
    more_friends: bool = False  # room alone would not do: the rule needs more friends
    moved_off: Counter[str] = field(default_factory=Counter)  # friend -> bytes moved (quota)
    distrusted: list[str] = field(default_factory=list)  # back, but failed a proof
    more: bool = False  # stopped at its time limit with work left: run again


class Replacement:
    """One run's work over the friends online (``stores``, with their ``usage``)."""

    def __init__(
        self,
        stores: Mapping[str, ShareStore],
        usage: Mapping[str, Usage],
        state: BackupState,
        events: ev.EventSink,
        workers: trio.CapacityLimiter,
        survive: int = 1,
    ) -> None:
        self._stores = stores
        self._usage = usage
        self._state = state
        self._events = events
        self._workers = workers
        self._survive = survive
        self._room = {f: u.free for f, u in usage.items() if f in stores}
        self._holders: dict[ShareKey, set[str]] = {}
        self._answered: set[str] = set()
        self._extras: dict[tuple[bytes, int], tuple[str, str]] = {}
        self._unsaved = 0  # records placed since the extras were last written
        self._until: float | None = None
        self.outcome = Outcome()

    async def run(
        self, gone: Iterable[str], friends: Iterable[str], until: float | None = None
    ) -> Outcome:
        """Drop the extras of friends back, place again what ``gone`` friends held, and
        move what no longer fits off friends over quota. ``friends``: every friend still a
        friend (an extra standing in for one unfriended since is simply the copy now).
        ``until`` (trio time): no record is started after it (``Outcome.more``), so a
        backup waiting for the job lock gets it between two runs."""
        self._until = until
        listed, unreachable = await list_holders(self._stores, self._events)
        answered = set(self._stores) - set(unreachable)
        self._holders = {key: set(who) for key, who in listed.items()}
        self._answered = answered
        self._extras = dict(self._state.extras)
        try:
            await self._drop_extras(answered, set(friends))
            await self._place_off(set(gone) - answered)
            await self._fit_quotas(answered)
        finally:
            self._save_extras()
        return self.outcome

    def _save_extras(self) -> None:
        """Written every SAVE_EXTRAS records and at the end (a run cut short loses only
        the notes since: those copies stay placed, never dropped, which costs room)."""
        self._state.put_extras(self._extras)
        self._unsaved = 0

    # ---- friends back: their extras go

    async def _drop_extras(self, answered: set[str], friends: set[str]) -> None:
        extras = self._extras
        for key, (_, instead_of) in list(extras.items()):
            if instead_of not in friends or key[0] not in self._state.records:
                del extras[key]  # unfriended, or the record is gone: nothing to drop
        for friend in sorted({f for _, f in extras.values()} & answered):
            mine = [(rid, i) for (rid, i), (_, f) in extras.items() if f == friend]
            still = [
                (rid, i) for rid, i in mine if friend in self._holders.get(ShareKey(rid, i), ())
            ]
            if not await self._proves(friend, still):
                self.outcome.distrusted.append(friend)
                continue  # its copies may be bad: the extras stay (an audit will tell)
            for rid, i in mine:
                if (rid, i) in still and not await self._drop_one(
                    rid, i, extras[(rid, i)][0], friend
                ):
                    continue  # the extra's holder is away: dropped when it is back
                del extras[(rid, i)]  # dropped, or the friend lost it: the extra is the copy

    async def _proves(self, friend: str, shares: list[tuple[bytes, int]]) -> bool:
        """A few of the shares listed prove right: a random block each against the share
        hash (format version 2 or 3), else a proof pair where one is left, else a full read
        (version 1), as an audit does."""
        store = self._stores[friend]
        for rid, i in _pick.sample(shares, min(PROOFS, len(shares))):  # it cannot guess which
            try:
                try:
                    await prove_blocks(store, self._state.records[rid].descriptor, i)
                    continue
                except NoBlockProofs:
                    pass
                pair = self._state.next_challenge(ShareKey(rid, i))
                if pair is None:  # a version-1 share without pairs: read and checked in full
                    await check_share(store, self._state.records[rid].descriptor, i,
                                      self._workers, 0)  # fmt: skip
                elif await store.prove(ShareKey(rid, i), pair[0]) != pair[1]:
                    return False
            except (PeerError, IntegrityError):
                return False
        return True

    async def _drop_one(self, rid: bytes, index: int, holder: str, friend: str) -> bool:
        """The extra at ``holder`` removed (or noted for prune) and ``friend``'s copy placed
        again; False if nothing could be done yet."""
        rec = self._state.records[rid]
        if rec.placement.get(index) != holder:
            return True  # placed elsewhere since (a repair): the extra's note is stale
        if holder in self._stores:
            try:
                await self._stores[holder].remove(ShareKey(rid, index))
            except PeerError:
                return False
            self._holders.get(ShareKey(rid, index), set()).discard(holder)
            self._room[holder] = self._room.get(holder, 0) + _share_size(rec.descriptor)
        else:  # away: prune removes it there once it is back (the copy is in flight)
            self._state.sending(rid, {index: holder})
        self._state.record_stored(
            rid, StoredRecord(rec.descriptor, {**rec.placement, index: friend})
        )
        self.outcome.dropped += 1
        return True

    # ---- friends gone: what they held is made again

    async def _place_off(self, gone: set[str]) -> None:
        if not gone:
            return
        todo = [
            rid
            for rid, rec in self._state.records.items()
            if any(friend in gone and not self._held(rid, i) for i, friend in rec.placement.items())
        ]
        queue, done = iter(todo), 0

        async def _worker() -> None:
            nonlocal done
            for rid in queue:  # shared: each record goes to one worker
                if self._out_of_time():
                    return
                await self._place_again(rid, off=gone, leaving={})
                done += 1
                self._events(ev.Progress("replace", done, len(todo)))

        async with trio.open_nursery() as nursery:  # a few records at once: round trips
            for _ in range(RECORDS_AT_ONCE):  # overlap, memory stays a few batches each
                nursery.start_soon(_worker)

    def _out_of_time(self) -> bool:
        if self._until is not None and trio.current_time() >= self._until:
            self.outcome.more = True
        return self.outcome.more

    def _held(self, rid: bytes, index: int, leaving: str | None = None) -> set[str]:
        return self._holders.get(ShareKey(rid, index), set()) - {leaving}

    async def _place_again(self, rid: bytes, off: set[str], leaving: Mapping[int, str]) -> bool:
        """Shares of record ``rid`` held by none of the friends online (``leaving``: share ->
        friend it must leave) rebuilt on friends online; whether they all landed."""
        rec = self._state.records[rid]
        d, size = rec.descriptor, _share_size(rec.descriptor)
        held = {i: self._held(rid, i, leaving.get(i)) for i in range(d.n)}
        existing, load = {}, Counter[str]()
        for i in range(d.n):
            placed = rec.placement.get(i)
            if placed in held[i] or (placed not in self._answered and placed not in off and
                                     placed is not None):  # fmt: skip
                existing[i] = placed  # where it is, or on a friend away within its grace
            elif held[i]:
                existing[i] = min(held[i], key=lambda f: (load[f], f))
            else:
                continue
            load[existing[i]] += 1
        rooms = [placement.FriendRoom(f, free) for f, free in sorted(self._room.items())
                 if f not in off and f not in leaving.values()]  # fmt: skip
        try:
            targets = placement.place(d.k, d.n, size, rooms, self._survive, existing)
        except P2PBackupError:
            self._short(d, size, rooms, existing)
            return False
        if not targets:  # every share is on a friend online already: only the note moves
            self._state.record_stored(rid, StoredRecord(d, {**rec.placement, **existing}))
            return True
        candidates = [(i, f) for i, who in self._holders_of(rid, d.n).items() for f in who]
        self._state.sending(rid, targets)  # prune's note, should this stop half way
        for friend in targets.values():  # promised now: other records are placed meanwhile
            self._room[friend] -= size
        try:
            made = await rebuild.rebuild(
                self._stores, d, candidates, targets, self._workers, self._events, CHALLENGES
            )
        except IntegrityError as exc:  # too few good shares: a repair's work, not ours
            self._events(ev.FriendTrouble("replace", exc.message))
            self.outcome.damaged += 1
            made = rebuild.Rebuilt({}, [])
        for i, friend in targets.items():
            if i not in made.sent:
                self._room[friend] += size
        if not made.challenges:
            return False
        for i, pairs in enumerate(made.challenges):
            self._state.new_challenges(ShareKey(rid, i), pairs)
        extras = self._extras
        new = dict(rec.placement)
        new.update(existing)
        for i, friend in made.sent.items():
            self._holders.setdefault(ShareKey(rid, i), set()).add(friend)
            before = rec.placement.get(i)
            if before in leaving.values() and (rid, i) in extras:
                extras[(rid, i)] = (friend, extras[(rid, i)][1])  # an extra moved on
            elif before in off:
                # A copy standing in for an unseen friend's; if that one was itself an
                # extra, for the friend it stood in for, and its copy is garbage for prune.
                earlier = extras.get((rid, i))
                extras[(rid, i)] = (friend, before if earlier is None else earlier[1])
                if earlier is not None:
                    self._state.sending(rid, {i: before})
            new[i] = friend
        self._state.record_stored(rid, StoredRecord(d, new))
        self._unsaved += 1
        if self._unsaved >= SAVE_EXTRAS:
            self._save_extras()
        self.outcome.records += 1
        self.outcome.shares += len(made.sent)
        whole = len(made.sent) == len(targets)
        if not whole:
            self.outcome.unplaced += 1
        return whole

    def _holders_of(self, rid: bytes, n: int) -> dict[int, set[str]]:
        return {i: who for i in range(n) if (who := self._holders.get(ShareKey(rid, i)))}

    def _short(
        self, d: RecordDescriptor, size: int, rooms: list[placement.FriendRoom],
        existing: Mapping[int, str],
    ) -> None:  # fmt: skip
        """Counted: how much more room each friend would need for this record too, or that
        no room would do (too few friends for the rule)."""
        self.outcome.unplaced += 1
        plenty = [placement.FriendRoom(r.friend_id, UNLIMITED) for r in rooms]
        try:
            wanted = placement.place(d.k, d.n, size, plenty, self._survive, existing)
        except P2PBackupError:
            self.outcome.more_friends = True
            return
        for friend in wanted.values():
            self.outcome.short[friend] += size

    # ---- quotas lowered: what no longer fits moves

    async def _fit_quotas(self, answered: set[str]) -> None:
        for friend in sorted(answered):
            usage = self._usage.get(friend)
            if usage is None or usage.used <= usage.quota:
                continue
            over = usage.used - usage.quota
            mine = sorted(
                ((_share_size(rec.descriptor), rid, i)
                 for rid, rec in self._state.records.items()
                 for i, f in rec.placement.items() if f == friend),
                reverse=True,
            )  # fmt: skip
            for size, rid, i in mine:  # the largest first: the fewest to move
                if over <= 0 or self._out_of_time():
                    break
                if not await self._place_again(rid, off=set(), leaving={i: friend}):
                    continue
                try:
                    await self._stores[friend].remove(ShareKey(rid, i))
                except PeerError:
                    continue  # placed elsewhere all the same: prune removes it later
                self._holders.get(ShareKey(rid, i), set()).discard(friend)
                over -= size
                self.outcome.moved_off[friend] += size
        # The room counted short above is what the friends online lack; a friend over
        # quota is asked for what it still holds beyond it, too.
        for friend in sorted(answered):
            usage = self._usage.get(friend)
            if usage is not None and usage.used - self.outcome.moved_off[friend] > usage.quota:
                self.outcome.short[friend] += (
                    usage.used - self.outcome.moved_off[friend] - usage.quota
                )


def _share_size(d: RecordDescriptor) -> int:
    return erasure.share_size(d.length, d.k)
