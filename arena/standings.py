"""What the battle domain reads from the published ratings, through a narrow
interface it owns: the ratings app registers its readers here at start-up
(ratings/apps.py), so arena never imports ratings (the dependency runs
ratings → votes → arena; an import-linter contract checks it).

Without a registered reader (the ratings app not installed) the battle domain
behaves as before the first snapshot: nothing is rated yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingStandings:
    """The newest published snapshot's overall view, as sampling needs it.

    ``battles``: model id → counted battles; ``theta``: model id → strength in
    natural-log units (Bradley–Terry θ, not rating points); ``pair_battles``:
    (lower model id, higher model id) → counted battles between the two (only
    when asked for pairs).
    """

    battles: dict[int, float] = field(default_factory=dict)
    theta: dict[int, float] = field(default_factory=dict)
    pair_battles: dict[tuple[int, int], float] = field(default_factory=dict)


_readers: dict[str, Callable] = {}


def register(
    *,
    sampling: Callable[[bool], SamplingStandings | None],
    overall: Callable[[], dict[int, dict]],
    reset: Callable[[], None] | None = None,
) -> None:
    """Install the readers: ``sampling(with_pairs)`` and ``overall()`` (model
    id → its overall row as the leaderboard shows it), and ``reset()``, which
    forgets what the readers keep per process."""
    _readers["sampling"] = sampling
    _readers["overall"] = overall
    if reset is not None:
        _readers["reset"] = reset


def reset() -> None:
    """Forget the readers' per-process caches (tests: ids repeat after a rollback)."""
    reader = _readers.get("reset")
    if reader:
        reader()


def for_sampling(*, with_pairs: bool) -> SamplingStandings | None:
    """The newest snapshot's figures for sampling; None before the first snapshot."""
    reader = _readers.get("sampling")
    return reader(with_pairs) if reader else None


def overall_rows() -> dict[int, dict]:
    """model id → its row in the newest snapshot's overall leaderboard (rating,
    lower, upper, rank, battles, caveats, …), ranked as the leaderboard ranks
    it; empty before the first snapshot."""
    reader = _readers.get("overall")
    return reader() if reader else {}
