"""The reward model: code -> predicted B-WR, for screening hypotheses before any training.

features/ (what the model reads: structural.py from the AST, grid.py behaviour on a probe grid and
probes.py N(0,1) and at-initialisation signals that transfer, both in the sandbox, embed.py
transformers encoders), ranker.py (data from MLflow with validation targets, XGBoost ranker or regressor, held-out
correlations), ensemble.py (bootstrap spread, acquisition, in-round refit), pyfunc.py (the MLflow
model), registry.py (challenger -> champion on an unbiased sample), screen.py (selection in rounds).
"""
