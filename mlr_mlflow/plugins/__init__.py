"""MLflow extension points this package declares in pyproject.toml, one small module each."""
