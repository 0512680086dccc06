"""Davidson's tie model; the code lives in ``ratings.core.davidson``."""

from .core.davidson import (  # noqa: F401
    DavidsonFit,
    bootstrap_samples,
    fit_davidson,
    fit_pair_outcomes,
    log_loss,
    pair_outcomes,
    probabilities,
    sandwich_cov,
)
