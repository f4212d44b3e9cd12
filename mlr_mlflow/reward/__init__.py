"""The reward model: code -> predicted B-WR, for screening hypotheses before any training.

features.py (AST), grid.py (behaviour on a probe grid, in the sandbox), embed.py (transformers
encoders), ranker.py (data from MLflow, XGBoost ranker or regressor, held-out correlations),
pyfunc.py (the MLflow model), registry.py (challenger -> champion), screen.py (selection in rounds).
"""
