"""Reference panels: named components from the literature, per kind, that measure an instrument.

`mlr-mlflow suite check` trains a kind's panel on a suite under two disjoint seed sets and asks
whether the suite and the win-rate statistics tell its members apart the same way twice. A panel is
a spread of components whose ordering a good instrument should repeat: a few degenerate ones (the
floor), strong standard ones, and many close variants of the standard ones (the hard part: most
generated hypotheses are such variants). Each member names its source, so a user can read why it is
there. Sources are bodies of the kind's function with the kind's usual imports (torch, F, math for
activations and regularizers; numpy as np for preprocessing).

Groups:
- "degenerate": a component no instrument may rank above a real one (zero, constant, identity...);
- "relu_like": activations that are ReLU with a smooth or shifted corner (the close variants);
- "standard": everything else.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PanelMember:
    name: str
    body: str  # the function's return expression, or a full function body (several lines)
    source: str  # where it comes from
    group: str = "standard"


def _a(name, body, source, group="standard"):
    return PanelMember(name, body, source, group)


ACTIVATIONS = [
    _a("zero", "0.0 * x", "degenerate: no signal passes", "degenerate"),
    _a("constant", "0.0 * x + 1.0", "degenerate: constant output", "degenerate"),
    _a("identity", "x", "degenerate: a linear model", "degenerate"),
    _a("relu", "torch.relu(x)", "Nair & Hinton 2010", "relu_like"),
    _a("leaky_relu", "F.leaky_relu(x, 0.01)", "Maas et al. 2013", "relu_like"),
    _a("leaky_relu_0.2", "F.leaky_relu(x, 0.2)", "Xu et al. 2015", "relu_like"),
    _a("elu", "F.elu(x)", "Clevert et al. 2016", "relu_like"),
    _a("celu_0.5", "torch.clamp(x, min=0) + torch.clamp(0.5 * (torch.exp(x / 0.5) - 1), max=0)",
       "Barron 2017 (CELU)", "relu_like"),
    _a("selu", "1.0507009873554805 * torch.where(x > 0, x, 1.6732632423543772 * (torch.exp(x) - 1))",
       "Klambauer et al. 2017", "relu_like"),
    _a("gelu", "F.gelu(x)", "Hendrycks & Gimpel 2016", "relu_like"),
    _a("gelu_tanh", "0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
       "Hendrycks & Gimpel 2016 (tanh approximation)", "relu_like"),
    _a("silu", "F.silu(x)", "Elfwing et al. 2018; Ramachandran et al. 2017 (Swish)", "relu_like"),
    _a("swish_2", "x * torch.sigmoid(2.0 * x)", "Ramachandran et al. 2017 (beta = 2)", "relu_like"),
    _a("mish", "x * torch.tanh(F.softplus(x))", "Misra 2019", "relu_like"),
    _a("softplus", "F.softplus(x)", "Dugas et al. 2001", "relu_like"),
    _a("hard_swish", "x * torch.clamp(x + 3, 0, 6) / 6", "Howard et al. 2019 (MobileNetV3)", "relu_like"),
    _a("relu6", "torch.clamp(x, 0, 6)", "Krizhevsky 2010", "relu_like"),
    _a("squareplus", "(x + torch.sqrt(x * x + 4)) / 2", "Barron 2021", "relu_like"),
    _a("isrlu", "torch.where(x >= 0, x, x / torch.sqrt(1 + x * x))", "Carlile et al. 2017", "relu_like"),
    _a("tanhexp", "x * torch.tanh(torch.exp(x))", "Liu & Di 2020", "relu_like"),
    _a("logish", "x * torch.log(1 + torch.sigmoid(x))", "Zhu et al. 2021", "relu_like"),
    _a("smish", "x * torch.tanh(torch.log(1 + torch.sigmoid(x)))", "Wang et al. 2022", "relu_like"),
    _a("serf", "x * torch.erf(torch.log(1 + torch.exp(torch.clamp(x, max=30))))",
       "Nag & Bhattacharyya 2021", "relu_like"),
    _a("elish", "torch.where(x >= 0, x * torch.sigmoid(x), (torch.exp(x) - 1) * torch.sigmoid(x))",
       "Basirat & Roth 2018", "relu_like"),
    _a("hard_elish", "torch.where(x >= 0, x, torch.exp(x) - 1) * torch.clamp((x + 1) / 2, 0, 1)",
       "Basirat & Roth 2018", "relu_like"),
    _a("squared_relu", "torch.relu(x) ** 2", "So et al. 2021 (Primer)", "relu_like"),
    _a("tanh", "torch.tanh(x)", "LeCun et al. 1998"),
    _a("sigmoid", "torch.sigmoid(x)", "Rumelhart et al. 1986"),
    _a("hard_tanh", "torch.clamp(x, -1, 1)", "Collobert 2004"),
    _a("softsign", "x / (1 + torch.abs(x))", "Bergstra et al. 2009"),
    _a("arcsinh", "torch.asinh(x)", "inverse hyperbolic sine"),
    _a("isru", "x / torch.sqrt(1 + x * x)", "Carlile et al. 2017"),
    _a("penalized_tanh", "torch.where(x > 0, torch.tanh(x), 0.25 * torch.tanh(x))", "Xu et al. 2016"),
    _a("lisht", "x * torch.tanh(x)", "Roy et al. 2019"),
    _a("bent_identity", "(torch.sqrt(x * x + 1) - 1) / 2 + x", "bent identity"),
    _a("snake_1", "x + torch.sin(x) ** 2", "Ziyin et al. 2020 (Snake, a = 1)"),
    _a("snake_0.5", "x + torch.sin(0.5 * x) ** 2 / 0.5", "Ziyin et al. 2020 (Snake, a = 0.5)"),
    _a("gcu", "x * torch.cos(x)", "Noel et al. 2021 (growing cosine unit)"),
    _a("sine", "torch.sin(x)", "Sitzmann et al. 2020 (SIREN)"),
    _a("square", "x * x", "polynomial"),
    _a("gaussian", "torch.exp(-x * x)", "radial basis"),
    _a("dsilu", "torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x)))", "Elfwing et al. 2018"),
    _a("rational_pade", "(x + 0.5 * x * x) / (1 + torch.abs(x) + 0.1 * x * x)", "Molina et al. 2020 (Padé)"),
    _a("log_sigmoid_shifted", "F.logsigmoid(x) + math.log(2.0)", "log-sigmoid, centred"),
    _a("exp_linear_bipolar", "torch.where(x > 0, 1 - torch.exp(-x), torch.exp(x) - 1) + 0.1 * x",
       "bipolar ELU plus a linear leak"),
]

PREPROCESSING = [
    PanelMember("none", "return X_train, X_test", "no preprocessing", "degenerate"),
    PanelMember("zero_features", "return 0.0 * X_train, 0.0 * X_test", "degenerate: every feature erased",
                "degenerate"),
    PanelMember("standardize", "m = X_train.mean(0)\ns = X_train.std(0)\ns = np.where(s > 1e-8, s, 1.0)\n"
                "return (X_train - m) / s, (X_test - m) / s", "z-scores (scikit-learn StandardScaler)"),
    PanelMember("center", "m = X_train.mean(0)\nreturn X_train - m, X_test - m", "mean centring"),
    PanelMember("minmax", "lo = X_train.min(0)\nspan = X_train.max(0) - lo\nspan = np.where(span > 1e-8, span, 1.0)\n"
                "return (X_train - lo) / span, (X_test - lo) / span", "min-max scaling"),
    PanelMember("maxabs", "s = np.abs(X_train).max(0)\ns = np.where(s > 1e-8, s, 1.0)\n"
                "return X_train / s, X_test / s", "scikit-learn MaxAbsScaler"),
    PanelMember("robust", "med = np.median(X_train, axis=0)\nq1, q3 = np.percentile(X_train, [25, 75], axis=0)\n"
                "iqr = np.where(q3 - q1 > 1e-8, q3 - q1, 1.0)\nreturn (X_train - med) / iqr, (X_test - med) / iqr",
                "scikit-learn RobustScaler"),
    PanelMember("global_scale", "s = X_train.std() + 1e-8\nreturn X_train / s, X_test / s", "one scale for all features"),
    PanelMember("standardize_x10", "m = X_train.mean(0)\ns = X_train.std(0)\ns = np.where(s > 1e-8, s, 1.0)\n"
                "return 10 * (X_train - m) / s, 10 * (X_test - m) / s", "z-scores times ten (a bad scale)"),
    PanelMember("signed_log", "return np.sign(X_train) * np.log1p(np.abs(X_train)), "
                "np.sign(X_test) * np.log1p(np.abs(X_test))", "signed log transform"),
    PanelMember("standardize_tanh", "m = X_train.mean(0)\ns = X_train.std(0)\ns = np.where(s > 1e-8, s, 1.0)\n"
                "return np.tanh((X_train - m) / s), np.tanh((X_test - m) / s)", "squashed z-scores"),
    PanelMember("row_l2", "n1 = np.linalg.norm(X_train, axis=1, keepdims=True) + 1e-8\n"
                "n2 = np.linalg.norm(X_test, axis=1, keepdims=True) + 1e-8\nreturn X_train / n1, X_test / n2",
                "scikit-learn Normalizer (rows to unit length)"),
]

REGULARIZERS = [
    PanelMember("none", "return torch.zeros(())", "no regularization", "degenerate"),
    PanelMember("huge_l2", "return 1.0 * sum(p.pow(2).sum() for p in params)", "degenerate: weights crushed",
                "degenerate"),
    PanelMember("l2", "return 1e-4 * sum(p.pow(2).sum() for p in params)", "weight decay (Krogh & Hertz 1992)"),
    PanelMember("l2_1e-3", "return 1e-3 * sum(p.pow(2).sum() for p in params)", "stronger weight decay"),
    PanelMember("l2_1e-2", "return 1e-2 * sum(p.pow(2).sum() for p in params)", "strong weight decay"),
    PanelMember("l1", "return 1e-5 * sum(p.abs().sum() for p in params)", "lasso (Tibshirani 1996)"),
    PanelMember("l1_1e-3", "return 1e-3 * sum(p.abs().sum() for p in params)", "strong lasso"),
    PanelMember("elastic_net", "return sum(1e-5 * p.abs().sum() + 5e-5 * p.pow(2).sum() for p in params)",
                "Zou & Hastie 2005"),
    PanelMember("orthogonal", "total = torch.zeros(())\nfor w in params:\n"
                "    g = w @ w.t() if w.shape[0] <= w.shape[1] else w.t() @ w\n"
                "    total = total + (g - torch.eye(g.shape[0])).pow(2).sum()\nreturn 1e-4 * total",
                "Brock et al. 2017 (soft orthogonality)"),
    PanelMember("max_norm", "return 1e-2 * sum(torch.relu(p.norm(dim=1) - 1.0).pow(2).sum() for p in params)",
                "soft max-norm (Srebro & Shraibman 2005)"),
    PanelMember("spectral_proxy", "return 1e-3 * sum(p.pow(2).sum(1).max() for p in params)",
                "largest row norm, a cheap spectral proxy"),
    PanelMember("group_lasso", "return 1e-4 * sum(p.norm(dim=0).sum() for p in params)",
                "group lasso over input columns (Yuan & Lin 2006)"),
]

PANELS = {"activation": ACTIVATIONS, "preprocessing": PREPROCESSING, "regularizer": REGULARIZERS}
_HEADERS = {
    "activation": ("activation(x)", "import math\n\nimport torch\nimport torch.nn.functional as F\n\n\n"),
    "preprocessing": ("preprocess(X_train, X_test)", "import numpy as np\n\n\n"),
    "regularizer": ("regularizer(params)", "import torch\n\n\n"),
}


def member_source(kind: str, member: PanelMember) -> str:
    """The member as a hypothesis source of `kind` (what the loader and the sandbox take)."""
    signature, imports = _HEADERS[kind]
    lines = member.body.splitlines()
    if len(lines) == 1 and not lines[0].startswith("return "):
        lines = [f"return {lines[0]}"]
    body = "".join(f"    {line}\n" for line in lines)
    return f"{imports}def {signature}:\n{body}"


def panel(kind: str) -> list[PanelMember]:
    try:
        return PANELS[kind]
    except KeyError:
        raise KeyError(f"no reference panel for kind {kind!r} (known: {', '.join(PANELS)})") from None
