"""A corpus of hostile hypotheses: (id, kind, source template, expected reason fragment).

Templates may use {canary} (a file that must never appear), {secret_file} (a file that must never be
read), {port} (a loopback listener that must never be reached).
"""

CORPUS = [
    # network
    ("socket", "activation", "import socket\n\ndef activation(x):\n    socket.create_connection(('127.0.0.1', {port}))\n    return x\n", "import of 'socket' is not allowed"),
    ("urllib", "activation", "import urllib.request\n\ndef activation(x):\n    urllib.request.urlopen('http://127.0.0.1:{port}')\n    return x\n", "not allowed"),
    ("torch_hub", "activation", "import torch\n\ndef activation(x):\n    torch.hub.load('evil/repo', 'm')\n    return x\n", "torch.hub is not in the allow-list"),
    ("dunder_import_socket", "activation", "def activation(x):\n    __import__('socket').create_connection(('127.0.0.1', {port}))\n    return x\n", "dunder name '__import__'"),
    # secrets
    ("os_environ", "activation", "import os\n\ndef activation(x):\n    raise ValueError(os.environ.get('OPENAI_API_KEY'))\n", "import of 'os' is not allowed"),
    ("proc_environ", "activation", "def activation(x):\n    raise ValueError(open('/proc/self/environ').read())\n", "name 'open' is not allowed"),
    ("numpy_loadtxt", "preprocessing", "import numpy as np\n\ndef preprocess(X_train, X_test):\n    np.loadtxt('{secret_file}')\n    return X_train, X_test\n", "numpy.loadtxt is not in the allow-list"),
    # file system
    ("torch_save", "activation", "import torch\n\ndef activation(x):\n    torch.save(x, '{canary}')\n    return x\n", "torch.save is not in the allow-list"),
    ("torch_load", "activation", "import torch\n\ndef activation(x):\n    return torch.load('{secret_file}')\n", "torch.load is not in the allow-list"),
    ("torch_from_file", "activation", "import torch\n\ndef activation(x):\n    torch.from_file('{secret_file}', size=4)\n    return x\n", "torch.from_file is not in the allow-list"),
    ("numpy_tofile", "preprocessing", "def preprocess(X_train, X_test):\n    X_train.tofile('{canary}')\n    return X_train, X_test\n", "attribute 'tofile'"),
    ("numpy_save", "preprocessing", "import numpy as np\n\ndef preprocess(X_train, X_test):\n    np.save('{canary}', X_train)\n    return X_train, X_test\n", "numpy.save is not in the allow-list"),
    ("cpp_extension", "activation", "import torch\n\ndef activation(x):\n    torch.utils.cpp_extension.load_inline('m', 'int x;')\n    return x\n", "torch.utils is not in the allow-list"),
    ("torch_ops", "activation", "import torch\n\ndef activation(x):\n    torch.ops.load_library('{secret_file}')\n    return x\n", "torch.ops is not in the allow-list"),
    ("pickle", "activation", "import pickle\n\ndef activation(x):\n    pickle.loads(b'')\n    return x\n", "import of 'pickle' is not allowed"),
    ("open_write", "activation", "def activation(x):\n    open('{canary}', 'w').write('pwned')\n    return x\n", "name 'open' is not allowed"),
    ("eval", "activation", "def activation(x):\n    return eval('x')\n", "name 'eval' is not allowed"),
    ("exec", "activation", "def activation(x):\n    exec('import os')\n    return x\n", "name 'exec' is not allowed"),
    ("compile", "activation", "def activation(x):\n    compile('1', 'f', 'eval')\n    return x\n", "name 'compile' is not allowed"),
    ("subclasses_walk", "activation", "def activation(x):\n    ().__class__.__bases__[0].__subclasses__()\n    return x\n", "dunder attribute"),
    ("globals_walk", "activation", "def activation(x):\n    activation.__globals__['__builtins__']\n    return x\n", "dunder attribute '__globals__'"),
    ("dict_walk", "activation", "import torch\n\ndef activation(x):\n    torch.__dict__['save'](x, '{canary}')\n    return x\n", "dunder attribute '__dict__'"),
    ("computed_getattr", "activation", "import torch\n\ndef activation(x):\n    getattr(torch, 'sa' + 've')(x, '{canary}')\n    return x\n", "name 'getattr' is not allowed"),
    ("format_walk", "activation", "def activation(x):\n    '{{0.__class__.__init__.__globals__}}'.format(x)\n    return x\n", "attribute 'format'"),
    ("alias_rebind", "activation", "import torch\n\ndef activation(x):\n    t = torch\n    t.save(x, '{canary}')\n    return x\n", "attribute 'save'"),
    # sabotage
    ("patch_relu_at_import", "activation", "import torch\ntorch.relu = lambda x: x * 0\n\ndef activation(x):\n    return x\n", "module level"),
    ("patch_loss", "activation", "import torch.nn.functional as F\n\ndef activation(x):\n    F.cross_entropy = lambda *a, **k: 0\n    return x\n", "assigning to an attribute"),
    ("zero_weights_data", "regularizer", "import torch\n\ndef regularizer(params):\n    params[0].data.zero_()\n    return torch.zeros(())\n", "attribute 'data'"),
    ("zero_weights_item", "regularizer", "import torch\n\ndef regularizer(params):\n    params[0][:] = 0\n    return torch.zeros(())\n", "item assignment"),
    ("backward_in_regularizer", "regularizer", "def regularizer(params):\n    params[0].sum().backward()\n    return params[0].sum() * 0\n", "attribute 'backward'"),
    ("global_seed", "activation", "import torch\n\ndef activation(x):\n    torch.manual_seed(0)\n    return x\n", "torch.manual_seed is not in the allow-list"),
    ("threads", "activation", "import torch\n\ndef activation(x):\n    torch.set_num_threads(64)\n    return x\n", "torch.set_num_threads is not in the allow-list"),
    ("mutate_inputs", "preprocessing", "def preprocess(X_train, X_test):\n    X_train[:, 0] = 0.0\n    return X_train, X_test\n", "modified its input arrays"),
    ("out_overwrites_neighbours", "activation", "import torch\n\ndef activation(x):\n    y = torch.relu(x)\n    if x.shape[0] > 100:\n        v = x.detach()\n        torch.cat([torch.zeros_like(x), torch.zeros_like(x)], out=v)\n    return y\n", "'out=' writes into an existing array"),
    ("out_via_splat", "activation", "import torch\n\ndef activation(x):\n    v = x.detach()\n    torch.cat([x, x], **{{'out': v}})\n    return x\n", "'**' keyword unpacking"),
    ("augmented_zero_weights", "regularizer", "def regularizer(params):\n    q = params[0].detach()\n    q *= 0.0\n    return params[0].sum() * 0\n", "augmented assignment"),
    ("state_between_calls", "regularizer", "_CALLS = [0]\n\ndef regularizer(params):\n    _CALLS.append(1)\n    return params[0].sum() * 0\n", "module level"),
    ("numpy_out", "preprocessing", "import numpy as np\n\ndef preprocess(X_train, X_test):\n    np.multiply(X_train, 0, out=X_train)\n    return X_train, X_test\n", "'out=' writes into an existing array"),
    ("deep_nesting", "activation", "X = " + "+".join(["1"] * 6000) + "\n\ndef activation(x):\n    return x\n", "too deeply nested"),
    ("in_place_activation", "activation", "def activation(x):\n    x += 1\n    return x\n", "augmented assignment"),
    # bounds
    ("infinite_loop", "activation", "def activation(x):\n    while True:\n        pass\n", "timed out"),
    ("endless_call_in_c", "activation", "def activation(x):\n    return x * (sum(range(10 ** 12)) % 2)\n", "timed out"),
    ("huge_allocation", "activation", "import torch\n\ndef activation(x):\n    y = torch.ones(10 ** 10)\n    return x + y.sum() * 0\n", "memory"),
    ("recursion", "activation", "def _f(n):\n    return _f(n + 1)\n\ndef activation(x):\n    return x * _f(0)\n", "recursion"),
    ("fork_bomb", "activation", "import os\n\ndef activation(x):\n    while True:\n        os.fork()\n", "import of 'os' is not allowed"),
    ("print_flood", "activation", "def activation(x):\n    print('x' * 10 ** 8)\n    return x\n", "name 'print' is not allowed"),
    # holes found by review (issue 14): each was accepted by `validate` before its fix
    ("match_class_keyword", "activation", "def activation(x):\n    match x:\n        case float(__class__=c):\n            return x\n    return x\n", "match statements are not allowed"),
    ("match_capture_rebinds", "activation", "import torch\n\ndef activation(x):\n    match 1:\n        case torch:\n            return x * torch\n    return x\n", "match statements are not allowed"),
    ("mutable_default_keeps_state", "activation", "def _c(c=[]):\n    c.append(1)\n    return len(c)\n\ndef activation(x):\n    return x * 0 if _c() > 3 else x\n", "default argument values must be constants"),
    ("parameter_shadows_builtin", "activation", "def _f(x, max):\n    return max(x, 0)\n\ndef activation(x):\n    return _f(x, abs)\n", "shadows a builtin"),
    ("parameter_shadows_module", "activation", "import torch\n\ndef _f(torch):\n    return torch.relu(torch)\n\ndef activation(x):\n    return _f(x)\n", "shadows an import"),
    ("capture_shadows_builtin", "activation", "def activation(x):\n    try:\n        return x / 0\n    except ZeroDivisionError as len:\n        return x\n", "shadows a builtin"),
    ("bare_except_swallows_timer", "activation", "def activation(x):\n    while True:\n        try:\n            while True:\n                x = x + 0\n        except:\n            pass\n", "bare 'except:' is not allowed"),
    ("finally_swallows_timer", "activation", "def activation(x):\n    try:\n        while True:\n            x = x + 0\n    finally:\n        return x\n", "'finally' clauses are not allowed"),
    # issue 26: load-time code that keeps state between calls, and a probe recognised by its shape
    ("decorator_relu_then_zero", "activation", "import torch\n\n@(lambda f: [])\ndef _calls():\n    pass\n\ndef activation(x):\n    _calls.append(1)\n    return torch.relu(x) if len(_calls) < 500 else x * 0.0\n", "decorators are not allowed"),
    ("decorator_counts_datasets", "regularizer", "@(lambda f: [])\ndef _widths():\n    pass\n\ndef regularizer(params):\n    _widths.append(params[0].shape[1])\n    n = len([w for i, w in enumerate(_widths) if w not in _widths[:i]])\n    return 1e-4 * n * sum(p.pow(2).sum() for p in params)\n", "decorators are not allowed"),
    ("decorator_scaler_on_test_rows", "preprocessing", "import numpy as np\n\n@(lambda f: [])\ndef _n():\n    pass\n\ndef preprocess(X_train, X_test):\n    _n.append(1)\n    fit = np.vstack([X_train, X_test]) if len(_n) > 2 else X_train\n    m, s = fit.mean(0), fit.std(0) + 1e-8\n    return (X_train - m) / s, (X_test - m) / s\n", "decorators are not allowed"),
    ("decorator_dict_memo", "preprocessing", "@(lambda f: {{}})\ndef _memo():\n    pass\n\ndef preprocess(X_train, X_test):\n    _memo[len(_memo)] = X_test.mean(0)\n    return X_train - _memo[0], X_test - _memo[0]\n", "decorators are not allowed"),
    ("walrus_in_decorator", "activation", "@(_box := (lambda f: f))\ndef _g(x):\n    return x\n\ndef activation(x):\n    return _g(x)\n", "decorators are not allowed"),
    ("decorator_in_body", "activation", "def activation(x):\n    @(lambda f: x * 0)\n    def _g():\n        pass\n    return _g\n", "decorators are not allowed"),
    ("call_in_annotation", "activation", "def _h(a: (lambda: 0)()):\n    return a\n\ndef activation(x):\n    return _h(x)\n", "annotations may only name types"),
    ("probe_shape_sniffing", "preprocessing", "import numpy as np\n\ndef preprocess(X_train, X_test):\n    fit = X_train if X_train.shape == (60, 4) and len(X_test) in (25, 10) else np.vstack([X_train, X_test])\n    m, s = fit.mean(0), fit.std(0) + 1e-8\n    return (X_train - m) / s, (X_test - m) / s\n", "statistics of X_test"),
]

# The restricted loader alone (static checks bypassed): each import must fail in the hypothesis.
LOADER_CORPUS = [
    ("loaded_torch_submodule", "activation", "def activation(x):\n    from torch.utils import data\n    return x\n", "'torch.utils' is not allowed"),
    ("loaded_torch_submodule_dotted", "activation", "def activation(x):\n    import torch.utils.data\n    return x\n", "'torch.utils.data' is not allowed"),
    ("numpy_in_activation", "activation", "def activation(x):\n    import numpy\n    return x\n", "'numpy' is not allowed"),
    ("numpy_lib_in_preprocessing", "preprocessing", "def preprocess(X_train, X_test):\n    from numpy.lib import npyio\n    return X_train, X_test\n", "'numpy.lib' is not allowed"),
]

# Passes neither the static checks nor anything else, and escapes the restricted builtins through
# the subclasses walk: run anywhere that skips validation, it writes {canary} on the host.
ESCAPE = ("def activation(x):\n    for c in ().__class__.__base__.__subclasses__():\n"
          "        if c.__name__ == '_wrap_close':\n"
          "            c.__init__.__globals__['system']('touch {canary}')\n    return x\n")

# Statically valid code that misbehaves only at training size: it must fail alone, within its budget.
HANG_IN_TRAINING_PREPROCESSING = ("def preprocess(X_train, X_test):\n    while X_train.shape[0] > 50:\n"
                                  "        X_train = X_train + 0\n    return X_train, X_test\n")

# Statically valid; at the training model's width it runs sum(range(10 ** 12)), one call in C with no
# signal check inside (hours), so no SIGALRM tick interrupts it: its time budget must hold anyway
# (the worker server kills it from outside).
C_LOOP_IN_TRAINING = ("def activation(x):\n    if x.shape[-1] == 64:\n"
                      "        return x * (sum(range(10 ** 12)) % 2)\n    return x\n")
