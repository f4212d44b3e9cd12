"""What a hypothesis may touch: an allow-list of module attributes and of attributes on values.

Everything here is pure, deterministic math. Left out on purpose: I/O (save, load, from_file,
tofile), code loading (hub, jit, ops, cpp_extension, library), global state (set_*, manual_seed,
set_num_threads), random numbers (global RNG state makes results depend on batch composition),
in-place mutation (`*_` methods, `.data`, `.set_`, `.copy_`), memory aliasing (`as_strided`,
`storage`, `.numpy()`), autograd hooks and `.backward`, and anything private or dunder.
"""
from __future__ import annotations

import math

_w = str.split

TORCH = frozenset(_w("""
abs absolute acos acosh add addcdiv addcmul amax amin arange arccos arccosh arcsin arcsinh arctan
arctan2 arctanh argmax argmin argsort asin asinh atan atan2 atanh broadcast_to cat ceil clamp
clamp_max clamp_min clip concat concatenate copysign cos cosh cummax cummin cumprod cumsum deg2rad
diag diag_embed diagonal diff div divide dot einsum eq erf erfc erfinv exp exp2 expm1 eye flatten
flip float_power floor floor_divide fmax fmin fmod frac full full_like ge greater gt heaviside
hstack hypot i0 isclose isfinite isinf isnan kron ldexp le lerp less lgamma linspace log log10
log1p log2 log_softmax logaddexp logaddexp2 logcumsumexp logical_and logical_not logical_or
logical_xor logit logspace logsumexp lt matmul max maximum mean median min minimum mm movedim mul
multiply mv nan_to_num nanmean nanmedian nansum ne neg negative norm ones ones_like outer permute
polar pow prod quantile rad2deg reciprocal relu remainder repeat_interleave reshape roll rot90
round rsqrt sgn sigmoid sign signbit sin sinc sinh softmax sort split sqrt square squeeze stack std
std_mean sub subtract sum swapaxes t take tan tanh tensor tensordot tile topk trace transpose
trapezoid tril triu true_divide trunc unbind unsqueeze var var_mean vstack where xlogy zeros
zeros_like
float16 float32 float64 bfloat16 float double half int32 int64 long bool uint8 int8 int16
pi e inf nan
nn special linalg
"""))

FUNCTIONAL = frozenset(_w("""
celu elu gelu glu hardshrink hardsigmoid hardswish hardtanh leaky_relu log_softmax logsigmoid mish
normalize relu relu6 selu sigmoid silu softmax softmin softplus softshrink softsign tanh
tanhshrink threshold layer_norm cosine_similarity pairwise_distance one_hot pad prelu
"""))

SPECIAL = frozenset(_w("""
digamma entr erf erfc erfcx erfinv exp2 expit expm1 gammaln i0 i0e i1 i1e log1p log_ndtr
log_softmax logit logsumexp multigammaln ndtr ndtri polygamma psi round sinc softmax xlog1py xlogy
zeta
"""))

TORCH_LINALG = frozenset(_w("""
norm vector_norm matrix_norm svdvals eigvalsh det slogdet inv pinv qr cholesky solve cross
matrix_rank
"""))

NUMPY = frozenset(_w("""
abs absolute add all allclose amax amin any arange arccos arccosh arcsin arcsinh arctan arctan2
arctanh argmax argmin argpartition argsort around array asarray atleast_2d average bincount cbrt
ceil clip column_stack concatenate copy copysign corrcoef cos cosh count_nonzero cov cumprod cumsum
deg2rad diag diff digitize divide dot e einsum equal exp exp2 expand_dims expm1 eye fabs float32
float64 floor floor_divide fmax fmin fmod full full_like greater greater_equal heaviside histogram
hstack hypot inf int32 int64 interp isclose isfinite isinf isnan less less_equal linspace log
log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor matmul max maximum mean
median min minimum mod multiply nan nan_to_num nanmax nanmean nanmedian nanmin nanpercentile
nanquantile nanstd nansum negative newaxis ones ones_like outer partition percentile pi power prod
ptp quantile rad2deg ravel reciprocal remainder repeat reshape rint round searchsorted sign sin
sinc sinh sort sqrt square squeeze stack std subtract sum take tan tanh tile trace transpose tril
triu trunc unique var vstack where zeros zeros_like
linalg
"""))

NUMPY_LINALG = frozenset(_w("norm svd eigh eigvalsh pinv qr det slogdet inv solve cholesky lstsq matrix_rank"))

MATH = frozenset(name for name in dir(math) if not name.startswith("_"))

# Attributes of modules, by the module's dotted path. A name listed here that is itself a module
# (torch.nn, torch.special...) continues the path.
MODULES: dict[str, frozenset[str]] = {
    "torch": TORCH,
    "torch.nn": frozenset({"functional"}),
    "torch.nn.functional": FUNCTIONAL,
    "torch.special": SPECIAL,
    "torch.linalg": TORCH_LINALG,
    "numpy": NUMPY,
    "numpy.linalg": NUMPY_LINALG,
    "math": MATH,
}

# Attributes of values: tensors, arrays, numbers, lists, tuples and dicts.
VALUES = frozenset(_w("""
shape ndim dtype size numel T mT t reshape view view_as flatten ravel squeeze unsqueeze transpose
permute expand expand_as repeat repeat_interleave tile chunk split unbind flip roll narrow
sum mean std var max min amax amin argmax argmin argsort sort topk prod cumsum cumprod median
quantile nanmean nansum logsumexp norm abs exp exp2 log log2 log10 log1p expm1 sqrt rsqrt pow
square sigmoid tanh relu sin cos tan sinh cosh asin acos atan arcsin arccos arctan sign sgn clamp
clamp_min clamp_max clip floor ceil round trunc frac neg negative reciprocal softmax log_softmax
matmul mm mv dot outer mul multiply add sub subtract div divide true_divide remainder fmod maximum
minimum lerp erf erfc erfinv lgamma where masked_fill isnan isinf isfinite nan_to_num all any
diag diagonal tril triu gather index_select take float double half long int bool type_as
new_zeros new_ones new_full new_tensor item tolist detach clone contiguous real imag
astype copy ptp mean nonzero searchsorted conj
append extend insert pop index count items keys values get
"""))

# Names a hypothesis could reach through `from torch import x` etc.: same lists as attributes.
def module_attributes(module: str) -> frozenset[str] | None:
    return MODULES.get(module)
