"""The numeric core of the ratings, split as arena-rank splits it:

- ``data``: battles as arrays, aggregation by (a, b, outcome), reweighting,
  diagnostics (does the MLE exist?), counts and matrices, style features;
- ``models``: Bradley–Terry, contextual Bradley–Terry, online Elo, and the one
  damped Newton solver they (and ``davidson``) share;
- ``davidson``: Davidson's tie model;
- ``intervals``: sandwich, bootstrap and simultaneous intervals, rank (UB);
- ``leaderboard``: ``leaderboard(...)``, the one function the command line
  and the recompute call.

Pure numpy: nothing here imports Django or the rest of the project.
"""
