def regularizer(params):
    """A small L2 penalty on the first layer only."""
    return 3e-4 * params[0].pow(2).sum()
