"""``python manage.py rate_battles FILE [FILE…]``: the rating core on battle files.

No Django and no database: manage.py dispatches this command here before
Django starts (start-up is most of the run time for a file of a million
battles), and the management command of the same name calls it too.
Prints JSON (or a table, or CSV) to stdout; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time

import numpy as np

from . import engine
from .battle_files import BattleFileError, read_battles


class CommandError(Exception):
    """A one-line error for the user; exit status 1."""


def _anchor(value: str) -> tuple[str, float]:
    name, sep, rating = value.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"takes MODEL=RATING, got {value!r}")
    try:
        return name, float(rating)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"rating must be a number, got {rating!r}") from exc


HELP = "Rate the battles in LMArena clean_battle JSON/JSONL or CSV files (no database needed)."


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--method", choices=["bt", "elo"], default="bt")
    parser.add_argument("--ci", choices=["sandwich", "bootstrap", "none"], default="sandwich")
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds (default 100)")
    parser.add_argument("--seed", type=int, default=None, help="bootstrap seed")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty (lambda/2)*sum(w^2), w=(R-1000)/400")
    parser.add_argument("--anchor", type=_anchor, default=None, metavar="MODEL=RATING")
    parser.add_argument("--style-control", action="store_true", help="contextual BT with the four style features")
    parser.add_argument("--reweight", action="store_true", help="weight battles by 1/max(n_pair, 50)")
    parser.add_argument("--include-named", action="store_true", help="count battles with anony=false too")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows instead of failing")
    parser.add_argument("--format", choices=["json", "table", "csv"], default="json")
    parser.add_argument(
        "--simultaneous",
        action="store_true",
        help="95%% intervals that hold for all models at once (rank (UB) from them too)",
    )
    parser.add_argument(
        "--ties",
        choices=["half", "davidson"],
        default="half",
        help="a tie counts as half a win (default), or Davidson's tie model with its own parameter nu",
    )


class RateBattles:
    """One run: read, rate, print."""

    def handle(self, *args, **opts):
        if opts.get("ties", "half") == "davidson" and (opts["method"] == "elo" or opts["style_control"]):
            raise CommandError("--ties davidson works with --method bt without --style-control")
        if opts.get("simultaneous") and opts["method"] == "elo":
            raise CommandError("--simultaneous works with --method bt")
        if opts["rounds"] < 1:
            raise CommandError("--rounds must be at least 1")
        if opts["l2"] < 0:
            raise CommandError("--l2 must not be negative")
        t0 = time.perf_counter()
        try:
            battles = read_battles(
                opts["files"],
                include_named=opts["include_named"],
                skip_bad_rows=opts["skip_bad_rows"],
                ordered=opts["method"] == "elo",
                want_style=opts["style_control"],
            )
        except BattleFileError as exc:
            raise CommandError(str(exc)) from None
        t1 = time.perf_counter()
        if opts["style_control"] and not battles.has_style:
            raise CommandError(
                "--style-control needs the responses: conversation_a/b or conv_metadata (clean_battle), "
                "or response_a/response_b (CSV)"
            )
        anchor = None
        if opts["anchor"]:
            name, rating = opts["anchor"]
            if name not in battles.names:
                raise CommandError(f"--anchor model {name!r} is not in the battles")
            anchor = (battles.names.index(name), rating)
        result = self.rate(battles, opts, anchor, t1 - t0)
        self.emit(result, opts["format"])

    # ------------------------------------------------------------------
    def rate(self, battles, opts, anchor, read_seconds: float) -> dict:
        n = len(battles.names)
        method, ci = opts["method"], opts["ci"]
        t1 = time.perf_counter()
        pc = engine.aggregate(battles.a, battles.b, battles.y, n, count=battles.count)
        t2 = time.perf_counter()
        style_coefficients = None
        warnings: list[str] = []
        simultaneous = bool(opts.get("simultaneous"))
        tie_model = opts.get("ties", "half")
        critical_value = None
        tie_param = None
        if method == "elo":
            keep = battles.a != battles.b
            order = np.argsort(battles.tstamp[keep], kind="stable")
            rating = engine.online_elo(battles.a[keep][order], battles.b[keep][order], battles.y[keep][order], n)
            if anchor:
                rating = rating + (anchor[1] - rating[anchor[0]])
            battles_n, wins, losses, ties = engine.model_counts(pc)
            active = battles_n > 0
            lower, upper = rating.copy(), rating.copy()
            ci = "none"
            rank = np.zeros(n, dtype=np.int64)
            rank[active] = engine.rank_ub(rating[active], rating[active])
            fit_s, int_s = time.perf_counter() - t2, 0.0
        else:
            style = self.style_battles(battles) if opts["style_control"] else None
            try:
                lb = engine.leaderboard(
                    pc,
                    names=battles.names,
                    ci=ci,
                    rounds=opts["rounds"],
                    seed=opts["seed"],
                    l2=opts["l2"],
                    anchor=anchor,
                    simultaneous=simultaneous,
                    ties=tie_model,
                    reweight=opts["reweight"],
                    style=style,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            rating, lower, upper, rank, active = lb.rating, lb.lower, lb.upper, lb.rank, lb.active
            if simultaneous:
                lower, upper, rank = lb.sim_lower, lb.sim_upper, lb.sim_rank
                critical_value = lb.critical_value
            tie_param = lb.tie_param
            battles_n, wins, losses, ties = lb.battles, lb.wins, lb.losses, lb.ties
            warnings = lb.warnings
            if lb.style_coefficients is not None:
                style_coefficients = {k: round(v, 6) for k, v in lb.style_coefficients.items()}
            fit_s, int_s = lb.timings["fit"], lb.timings["intervals"]
        rows = [
            {
                "model": battles.names[i],
                "rating": round(float(rating[i]), 4),
                "lower": round(float(lower[i]), 4),
                "upper": round(float(upper[i]), 4),
                "rank": int(rank[i]),
                "battles": int(battles_n[i]),
                "wins": int(wins[i]),
                "losses": int(losses[i]),
                "ties": int(ties[i]),
            }
            for i in range(n)
            if active[i]
        ]
        rows.sort(key=lambda r: (-r["rating"], r["model"]))
        skipped = {"self_battle": int(pc.n_self), "named": battles.named, "bad_row": battles.bad_rows,
                   "excluded": battles.excluded}  # fmt: skip
        extra = {}
        if simultaneous:
            extra["critical_value"] = None if critical_value is None else round(critical_value, 6)
        if tie_model == "davidson":
            extra["tie_param"] = (
                None if tie_param is None else {k: (None if v is None else round(v, 6)) for k, v in tie_param.items()}
            )
        return {
            "method": method,
            "ci": ci,
            "intervals": "simultaneous" if simultaneous else "marginal",
            "ties": tie_model,
            "style_control": bool(opts["style_control"]),
            "anchor": {"model": battles.names[anchor[0]], "rating": anchor[1]} if anchor else None,
            **extra,
            "battles_used": int(round(pc.total)),
            "battles_skipped": skipped,
            "models": rows,
            "style_coefficients": style_coefficients,
            "warnings": [*battles.warnings, *warnings],
            "timings": {
                "read": round(read_seconds, 6),
                "aggregate": round(t2 - t1, 6),
                "fit": round(fit_s, 6),
                "intervals": round(int_s, 6),
            },
        }

    @staticmethod
    def style_battles(battles) -> engine.StyleBattles:
        """The file's battles one row each (self-battles left out) with their style features."""
        keep = battles.a != battles.b
        return engine.StyleBattles(
            a=battles.a[keep],
            b=battles.b[keep],
            y=battles.y[keep],
            features=engine.style_design(battles.style_a[keep], battles.style_b[keep]),
            count=battles.count[keep],
        )

    def emit(self, result: dict, fmt: str) -> None:
        out = sys.stdout
        if fmt == "json":
            out.write(json.dumps(result, indent=1) + "\n")
            return
        cols = ["rank", "model", "rating", "lower", "upper", "battles", "wins", "losses", "ties"]
        if fmt == "csv":
            w = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(result["models"])
            return
        width = max([len(r["model"]) for r in result["models"]] + [5])
        out.write(f"{'rank':>4}  {'model':<{width}}  {'rating':>8}  {'95% CI':>17}  {'battles':>8}\n")
        for r in result["models"]:
            out.write(
                f"{r['rank']:>4}  {r['model']:<{width}}  {r['rating']:>8.1f}  "
                f"{r['lower']:>8.1f}-{r['upper']:<8.1f}  {r['battles']:>8}\n"
            )
        if result.get("tie_param"):
            tp = result["tie_param"]
            bounds = f" ({tp['lower']:.4f}-{tp['upper']:.4f})" if tp.get("lower") is not None else ""
            out.write(f"davidson tie parameter nu={tp['nu']:.4f}{bounds}\n")
        if result.get("critical_value") is not None:
            out.write(f"simultaneous 95% intervals: critical value {result['critical_value']:.4f} (marginal 1.96)\n")
        if result["style_coefficients"]:
            out.write("style: " + ", ".join(f"{k}={v:+.4f}" for k, v in result["style_coefficients"].items()) + "\n")
        for w_ in result["warnings"]:
            out.write(f"warning: {w_}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manage.py rate_battles", description=HELP)
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = vars(build_parser().parse_args(argv))
    try:
        RateBattles().handle(**opts)
    except CommandError as exc:
        sys.stderr.write(f"rate_battles: error: {exc}\n")
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
