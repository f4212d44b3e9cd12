"""Evaluation: datasets, the batched model, training jobs, baselines, win rates, the evaluator.

Import submodules directly; this package keeps torch and lightning out of the importer's process
(they are imported only by `training.model` and `training.job`, which run in the sandbox).
"""
