"""Grammar-constrained decoding: a small local model can only write one function of the kind's
contract, built from allow-listed calls, arithmetic, numbers and the argument.

A 270M-parameter model asked for code mostly writes prose, half a function or an unknown call; a
grammar (llama.cpp's GBNF, sent as the request's `grammar` field) makes every reply a file the
validator can judge. The grammar is deliberately narrow: elementwise expressions of bounded depth
over the kind's argument, so almost every reply that it admits also passes the dynamic checks.
`json_schema` is for servers that constrain only to a JSON schema: the reply is {"code": "..."}.

Modes (`[llm] grammar`): "auto" asks the server what it is (llama.cpp -> "gbnf", else "off"),
"gbnf", "json_schema", "off".
"""
from __future__ import annotations

import json
import urllib.request

from ..validate import allowlist

MODES = ("auto", "gbnf", "json_schema", "off")
DEPTH = 3  # nesting of calls and parentheses: bounds the reply's length too

# Elementwise calls that are finite and differentiable (almost everywhere) on every real input.
TENSOR_UNARY = ("torch.tanh", "torch.sigmoid", "torch.relu", "torch.abs", "torch.erf", "torch.sin",
                "torch.cos", "torch.atan", "torch.square", "torch.sign", "F.softplus", "F.gelu",
                "F.silu", "F.elu", "F.mish", "F.softsign", "F.logsigmoid", "F.hardtanh")
TENSOR_BINARY = ("torch.maximum", "torch.minimum")
ARRAY_UNARY = ("np.tanh", "np.arctan", "np.abs", "np.sign", "np.square", "np.sin")
ARRAY_CENTRES = ("np.mean(X_train, axis=0)", "np.median(X_train, axis=0)",
                 "np.min(X_train, axis=0)", "np.max(X_train, axis=0)")
ARRAY_SPREADS = ("np.std(X_train, axis=0)", "np.ptp(X_train, axis=0)",
                 "np.max(np.abs(X_train - m), axis=0)", "np.mean(np.abs(X_train - m), axis=0)",
                 "np.percentile(X_train, 75, axis=0) - np.percentile(X_train, 25, axis=0)")

PREAMBLE = {
    "activation": "import torch\nimport torch.nn.functional as F\n\ndef activation(x):\n    return ",
    "regularizer": ("import torch\nimport torch.nn.functional as F\n\ndef regularizer(params):\n"
                    "    return "),
    "preprocessing": ("import numpy as np\n\ndef preprocess(X_train, X_test):\n    m = "),
}


def allowed(call: str) -> bool:
    """Is `call` (as written in a grammar: torch.x, F.x, np.x) on the validator's allow-list?"""
    module, _, name = call.partition(".")
    full = {"torch": "torch", "F": "torch.nn.functional", "np": "numpy"}[module]
    return name in allowlist.MODULES[full]


def _q(text: str) -> str:
    return json.dumps(text)  # a GBNF string literal is a JSON string


def _alts(options) -> str:
    return " | ".join(_q(o) for o in options)


def _call(name: str) -> tuple[str, str]:
    """A call's opening and closing text: `np.log1p(np.abs` opens two parentheses."""
    return name + "(", ")" * (1 + name.count("("))


def _expressions(var: str, unary, binary, prefix: str) -> list[str]:
    """Rules `<prefix>x<d>`: an expression that depends on `var` (so it is an array, never a bare
    number) at nesting depth d = 0..DEPTH; the deepest level is `var` or a multiple of it, so
    recursion ends."""
    rules = []
    for d in range(DEPTH + 1):
        x, t, f, a = (f"{prefix}{r}{d}" for r in "xtfa")
        if d == DEPTH:
            rules.append(f"{x} ::= {_q(var)} | {_q(var)} \" * \" num")
            continue
        nx = f"{prefix}x{d + 1}"
        calls = [f"{_q(o)} {nx} {_q(c)}" for o, c in map(_call, unary)]
        # both arguments depend on the variable: torch.maximum takes no Python number
        calls += [f"{_q(o)} {nx} \", \" {nx} {_q(c)}" for o, c in map(_call, binary)]
        rules += [
            f"{x} ::= {t} (addop {t} (addop {t})?)?",
            f"{t} ::= (num \" * \")? {f} (\" * \" {f})? (\" / \" div)?",
            f"{f} ::= \"-\"? {a}",
            f"{a} ::= {_q(var)} | \"(\" {nx} \")\" | " + " | ".join(calls),
        ]
    return rules


NUMBERS = [
    "num ::= [0-9] (\".\" [0-9] [0-9]?)?",
    "div ::= [1-9] (\".\" [0-9])?",
    "addop ::= \" + \" | \" - \"",
]
ARRAY_CALLS = (*ARRAY_UNARY, "np.log1p(np.abs", "np.sqrt(np.abs")


def gbnf(kind: str) -> str:
    """The GBNF grammar of one hypothesis file of `kind`."""
    if kind == "activation":
        root = [f"root ::= {_q(PREAMBLE[kind])} ax0 \"\\n\""]
        rules = _expressions("x", TENSOR_UNARY, TENSOR_BINARY, "a")
    elif kind == "regularizer":
        root = [f"root ::= {_q(PREAMBLE[kind])} coef \" * sum(\" red \"(\" rx0 \") for p in params)\\n\"",
                "coef ::= [1-9] \"e-\" [3-6]",
                "red ::= \"torch.sum\" | \"torch.mean\""]
        rules = _expressions("p", TENSOR_UNARY, TENSOR_BINARY, "r")
    elif kind == "preprocessing":
        tail = ("\\n    s = np.where(s > 1e-8, s, 1.0)\\n    def transform(X):\\n"
                "        z = (X - m) / s\\n        return ")
        root = [f"root ::= {_q(PREAMBLE[kind])} centre \"\\n    s = \" spread \"{tail}\" out "
                "\"\\n    return transform(X_train), transform(X_test)\\n\"",
                f"centre ::= {_alts(ARRAY_CENTRES)}",
                f"spread ::= {_alts(ARRAY_SPREADS)}",
                "out ::= px0 | \"np.hstack([z, \" px0 \"])\""]
        rules = _expressions("z", ARRAY_CALLS, (), "p")
    else:
        raise ValueError(f"no grammar for kind {kind!r}")
    return "\n".join([*root, *rules, *NUMBERS]) + "\n"


SCHEMA = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}


def request_fields(mode: str, kind: str) -> dict:
    """Keyword arguments for `chat.completions.create` that constrain the reply."""
    if mode == "gbnf":
        return {"extra_body": {"grammar": gbnf(kind)}}
    if mode == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "hypothesis", "schema": SCHEMA}}}
    return {}


def unwrap(reply: str, mode: str) -> str:
    """The code inside a json_schema reply ({"code": ...}); any other reply as it is."""
    if mode != "json_schema":
        return reply
    try:
        data = json.loads(reply)
    except ValueError:
        return reply
    return data["code"] if isinstance(data, dict) and isinstance(data.get("code"), str) else reply


def detect(base_url: str, api_key: str = "", timeout_s: float = 3.0) -> str:
    """"gbnf" when `base_url` is a llama.cpp server (llama.cpp's own, or llama-cpp-python's),
    else "off". Asks /props (llama.cpp's server), then the OpenAPI title (llama-cpp-python), then
    /v1/models's `owned_by`; any failure means "off"."""
    root = base_url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def get(url: str):
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read(1_000_000))
        except (OSError, ValueError):
            return None

    props = get(f"{root}/props")
    if isinstance(props, dict) and ("default_generation_settings" in props or "chat_template" in props):
        return "gbnf"
    api = get(f"{root}/openapi.json")
    if isinstance(api, dict) and "llama" in str(api.get("info", {}).get("title", "")).lower():
        return "gbnf"
    models = get(f"{base_url.rstrip('/')}/models")
    owners = [m.get("owned_by", "") for m in (models or {}).get("data", []) if isinstance(m, dict)] \
        if isinstance(models, dict) else []
    return "gbnf" if any("llama" in str(o).lower() for o in owners) else "off"
