"""Battle files (clean_battle JSON/JSONL, CSV): one pure reader for every command
that reads them. No Django here; see reader.py."""

from .reader import (
    EXCLUDED,
    LABELS,
    NAMED,
    SCORE,
    SELF_BATTLE,
    BadRow,
    Battle,
    BattleFile,
    BattleFileError,
    read,
    row_style,
)

__all__ = [
    "EXCLUDED", "LABELS", "NAMED", "SCORE", "SELF_BATTLE", "BadRow", "Battle", "BattleFile", "BattleFileError",
    "read", "row_style",
]  # fmt: skip
