#!/usr/bin/env bash
# Create (or refresh) the benchmark-only reference venv at <repo>/.bench-venv.
#
# It holds LMArena's `arena-rank` 0.1.1 (JAX, optax, pandas, ...) so that
# bench/bench_engine.py can time it and compare numbers with our engine.
# These packages are NEVER project dependencies: do not add them to
# requirements.in / requirements.txt. The venv is gitignored.
#
# Idempotent: re-running only installs what is missing.
#
# FastChat: the newest `fschat` on PyPI (0.2.36, 2024-02) ships neither
# `compute_bt` nor `compute_bootstrap_bt` (no serve/monitor/rating_systems.py);
# its elo_analysis.py only has the legacy `compute_elo_mle_with_tie`, and that
# module imports fastchat.model -> model_adapter -> torch/transformers. So no
# FastChat reference is installed; see bench/REFERENCE_NOTES.md.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/../.bench-venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$PY" -m venv "$VENV"
fi
VENV="$(cd "$VENV" && pwd)"

# arena-rank pins jax==0.8.1 and numpy==2.3.3 and pulls optax, jaxtyping,
# pandas and datasets; pip resolves them from its metadata.
if "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("arena-rank") == "0.1.1" else 1)
EOF
then
    echo "arena-rank 0.1.1 already installed in $VENV"
else
    # (the grep drops pip's notes about this machine's unused local indexes)
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | { grep -v "is ignored: it is neither" || true; }
    "$VENV/bin/python" -m pip install --quiet "arena-rank==0.1.1" 2>&1 | { grep -v "is ignored: it is neither" || true; }
fi

# Smoke check: the pieces the benchmark uses import and run on a toy problem.
"$VENV/bin/python" - <<'EOF'
import jax, numpy, pandas, optax
import pandas as pd
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.utils.data_utils import PairDataset
df = pd.DataFrame({"model_a": ["x", "y", "x"], "model_b": ["y", "x", "y"],
                   "winner": ["model_a", "tie", "model_b"]})
ds = PairDataset.from_pandas(df)
out = BradleyTerry(n_competitors=ds.n_competitors).compute_ratings_and_cis(ds)
assert len(out["ratings"]) == 2
print(f"ok: jax {jax.__version__}, numpy {numpy.__version__}, pandas {pandas.__version__}, "
      f"optax {optax.__version__}, arena-rank 0.1.1")
EOF
