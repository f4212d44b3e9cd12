"""mlr-mlflow: automated, component-level ML research on top of MLflow."""

__version__ = "0.1.0"
