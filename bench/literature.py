"""A held-out source for the reward benchmark: named activations from the literature.

Hand-written, one per family, chosen to be absent from what the reward model is trained on (the
`symbolic` generator's grammar and bench/throughput.py's eight families): no ReLU/GELU/SiLU/ELU
rewrites, no scaled swish, no softsign. The benchmark never trains on these; it only predicts them.
"""
from __future__ import annotations

# name -> the body of `activation(x)` (torch, F and math are imported)
ACTIVATIONS = {
    "selu": "1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1))",
    "celu_0.5": "torch.clamp(x, min=0) + torch.clamp(0.5 * (torch.exp(x / 0.5) - 1), max=0)",
    "hard_swish": "x * torch.clamp(x + 3, 0, 6) / 6",
    "hard_sigmoid_gate": "x * torch.clamp(0.2 * x + 0.5, 0, 1)",
    "hard_tanh": "torch.clamp(x, -1, 1)",
    "relu6": "torch.clamp(x, 0, 6)",
    "snake_1": "x + torch.sin(x) ** 2",
    "snake_0.5": "x + torch.sin(0.5 * x) ** 2 / 0.5",
    "gcu": "x * torch.cos(x)",
    "sinusoid_plus_identity": "torch.sin(30.0 * x) / 30.0 + x",
    "lisht": "x * torch.tanh(x)",
    "bent_identity": "(torch.sqrt(x * x + 1) - 1) / 2 + x",
    "isru": "x / torch.sqrt(1 + 1.0 * x * x)",
    "isrlu": "torch.where(x >= 0, x, x / torch.sqrt(1 + x * x))",
    "squareplus": "(x + torch.sqrt(x * x + 4)) / 2",
    "sqnl": "torch.where(x > 2, torch.ones_like(x), torch.where(x >= 0, x - x * x / 4, "
            "torch.where(x >= -2, x + x * x / 4, -torch.ones_like(x))))",
    "tanhexp": "x * torch.tanh(torch.exp(x))",
    "logish": "x * torch.log(1 + torch.sigmoid(x))",
    "smish": "x * torch.tanh(torch.log(1 + torch.sigmoid(x)))",
    "serf": "x * torch.erf(torch.log(1 + torch.exp(torch.clamp(x, max=30))))",
    "elish": "torch.where(x >= 0, x * torch.sigmoid(x), (torch.exp(x) - 1) * torch.sigmoid(x))",
    "hard_elish": "torch.where(x >= 0, x, torch.exp(x) - 1) * torch.clamp((x + 1) / 2, 0, 1)",
    "dsilu": "torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x)))",
    "penalized_tanh": "torch.where(x > 0, torch.tanh(x), 0.25 * torch.tanh(x))",
    "arcsinh": "torch.asinh(x)",
    "log_sigmoid_shifted": "F.logsigmoid(x) + math.log(2.0)",
    "gelu_tanh_approx": "0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
    "rational_pade": "(x + 0.5 * x * x) / (1 + torch.abs(x) + 0.1 * x * x)",
    "soft_clipping": "torch.log((1 + torch.exp(torch.clamp(2.0 * x, max=30))) / "
                     "(1 + torch.exp(torch.clamp(2.0 * (x - 1), max=30)))) / 2.0",
    "phish": "x * torch.tanh(x * torch.sigmoid(x) * 0.5 + 0.5 * torch.tanh(x))",
    "cosine_gate": "torch.where(x > 1, x, torch.where(x > 0, x * (1 - torch.cos(math.pi * x)) / 2, 0.0 * x))",
    "exp_linear_bipolar": "torch.where(x > 0, 1 - torch.exp(-x), torch.exp(x) - 1) + 0.1 * x",
}


def sources(limit: int | None = None) -> list[str]:
    names = list(ACTIVATIONS)[:limit]
    return [f"import math\n\nimport torch\nimport torch.nn.functional as F\n\n\ndef activation(x):\n"
            f"    return {ACTIVATIONS[name]}\n" for name in names]
