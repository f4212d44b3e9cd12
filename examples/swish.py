import torch


def activation(x):
    """Swish / SiLU (Ramachandran et al., 2017)."""
    return x * torch.sigmoid(x)
