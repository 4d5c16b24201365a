"""Four float64 in one AVX2 register, for numba kernels that run four sequences in lockstep.

Numba leaves LLVM's SLP vectoriser off and unrolls a four-iteration loop before its loop
vectoriser sees it, so a step written for four lanes compiles to four scalar chains. These
intrinsics emit the ``<4 x double>`` operations directly: the lanes of a
``(..., 4)``-shaped C-contiguous array are loaded, combined and stored as one vector. Each
operation is the IEEE operation of each lane (``fma4`` is a fused multiply-add, rounded
once), so a lane computes exactly what scalar code in the same order would.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = ["load4", "store4", "splat4", "fma4", "mul4", "add4", "sub4", "div4", "select_ge4",
           "recip_above4", "count_below4", "all_above4", "exp_nonpositive4", "prefetch"]

_V4 = ir.VectorType(ir.DoubleType(), 4)


class Vec4(types.Type):
    """Numba type of four float64 held in one vector register."""

    def __init__(self):
        super().__init__(name="Vec4")


vec4 = Vec4()


@register_model(Vec4)
class _Vec4Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V4)


def _c_float_array(ary) -> bool:
    return isinstance(ary, types.Array) and ary.dtype == types.float64 and ary.layout == "C"


def _pointer(context, builder, aryty, ary, idx):
    """Address of flat element ``idx`` of a C-contiguous array, as a vector pointer."""
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.bitcast(builder.gep(data, [idx]), _V4.as_pointer())


def _splat(context, builder, x, xty):
    """IR: the float ``x`` (of numba type ``xty``) in every lane."""
    x = context.cast(builder, x, xty, types.float64)
    v = builder.insert_element(ir.Constant(_V4, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), 4), [0] * 4))


@intrinsic
def load4(typingctx, ary, idx):
    """``ary.flat[idx:idx + 4]`` as a vector (no bounds check)."""
    if not (_c_float_array(ary) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], *args), align=8)
    return vec4(ary, idx), codegen


@intrinsic
def store4(typingctx, ary, idx, v):
    """``ary.flat[idx:idx + 4] = v`` (no bounds check)."""
    if not (_c_float_array(ary) and isinstance(idx, types.Integer) and v == vec4):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1]),
                      align=8)
        return context.get_dummy_value()
    return types.none(ary, idx, v), codegen


@intrinsic
def splat4(typingctx, x):
    """``x`` in every lane."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        return _splat(context, builder, args[0], sig.args[0])
    return vec4(x), codegen


@intrinsic
def fma4(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once."""
    if not a == b == c == vec4:
        return None

    def codegen(context, builder, sig, args):
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V4, [_V4] * 3),
                                             "llvm.fma.v4f64")
        return builder.call(fma, args)
    return vec4(a, b, c), codegen


def _binary(typingctx, a, b, name):
    """Typing and code of a lane-by-lane binary operation (``name`` of the IR builder)."""
    if not a == b == vec4:
        return None

    def codegen(context, builder, sig, args):
        return getattr(builder, name)(*args)
    return vec4(a, b), codegen


@intrinsic
def mul4(typingctx, a, b):
    """``a * b`` lane by lane."""
    return _binary(typingctx, a, b, "fmul")


@intrinsic
def add4(typingctx, a, b):
    """``a + b`` lane by lane."""
    return _binary(typingctx, a, b, "fadd")


@intrinsic
def div4(typingctx, a, b):
    """``a / b`` lane by lane."""
    return _binary(typingctx, a, b, "fdiv")


@intrinsic
def recip_above4(typingctx, a, floor):
    """``1 / a`` in the lanes where ``a >= floor``, 0 in the others (and where ``a`` is NaN)."""
    if not (a == vec4 and isinstance(floor, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        a, floor = args
        lim = _splat(context, builder, floor, sig.args[1])
        keep = builder.fcmp_ordered(">=", a, lim)
        one = ir.Constant(_V4, [1.0] * 4)
        return builder.select(keep, builder.fdiv(one, a), ir.Constant(_V4, [0.0] * 4))
    return vec4(a, floor), codegen


@intrinsic
def count_below4(typingctx, a, floor, count):
    """``count + 1`` in the lanes where ``a < floor``, ``count`` in the others."""
    if not (a == vec4 and count == vec4 and isinstance(floor, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        a, floor, count = args
        lim = _splat(context, builder, floor, sig.args[1])
        below = builder.fcmp_ordered("<", a, lim)
        return builder.fadd(count, builder.uitofp(below, _V4))
    return vec4(a, floor, count), codegen


@intrinsic
def sub4(typingctx, a, b):
    """``a - b`` lane by lane."""
    return _binary(typingctx, a, b, "fsub")


@intrinsic
def select_ge4(typingctx, a, b, x, y):
    """``x`` in the lanes where ``a >= b`` (ordered: false when either is NaN), else ``y``."""
    if not a == b == x == y == vec4:
        return None

    def codegen(context, builder, sig, args):
        a, b, x, y = args
        return builder.select(builder.fcmp_ordered(">=", a, b), x, y)
    return vec4(a, b, x, y), codegen


# exp(v) for v <= 0: v = k ln2 + r with |r| <= ln2 / 2, a degree-13 Taylor polynomial in r
# (relative error below 3e-16) and 2**k built in the exponent bits. Below -708 the result
# would be subnormal and is flushed to 0; NaN propagates.
_EXP_MIN = -708.0
_LOG2E = 1.4426950408889634
_ROUND = 6755399441055744.0            # 1.5 * 2**52: adding it rounds to an integer
_ROUND_BITS = 0x4338000000000000       # its bits
_LN2_HI = 0.6931471803691238           # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10
_TAYLOR = (1.6059043836821613e-10, 2.08767569878681e-09, 2.505210838544172e-08,
           2.755731922398589e-07, 2.7557319223985893e-06, 2.48015873015873e-05,
           0.0001984126984126984, 0.001388888888888889, 0.008333333333333333,
           0.041666666666666664, 0.16666666666666666, 0.5, 1.0, 1.0)


@intrinsic
def exp_nonpositive4(typingctx, v):
    """``exp(v)`` lane by lane for ``v <= 0`` (no libm call: vector instructions only)."""
    if v != vec4:
        return None

    def codegen(context, builder, sig, args):
        (v,) = args
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V4, [_V4] * 3),
                                             "llvm.fma.v4f64")

        def const(x):
            return ir.Constant(_V4, [float(x)] * 4)
        low = builder.fcmp_ordered("<", v, const(_EXP_MIN))
        w = builder.select(low, const(_EXP_MIN), v)
        kd = builder.call(fma, [w, const(_LOG2E), const(_ROUND)])
        k = builder.fsub(kd, const(_ROUND))
        r = builder.call(fma, [k, const(-_LN2_HI), w])
        r = builder.call(fma, [k, const(-_LN2_LO), r])
        # c_3 .. c_13 by Estrin's scheme (pairs of coefficients, then pairs of pairs), the
        # three leading terms by Horner's, which keeps their rounding small: 7 dependent
        # operations instead of 13
        terms = [const(c) for c in _TAYLOR[-4::-1]]        # c_3 .. c_13
        power = r
        while len(terms) > 1:
            terms = [builder.call(fma, [terms[i + 1], power, terms[i]]) if i + 1 < len(terms)
                     else terms[i] for i in range(0, len(terms), 2)]
            power = builder.fmul(power, power)
        p = terms[0]
        for c in _TAYLOR[-3:]:
            p = builder.call(fma, [p, r, const(c)])
        i64 = ir.VectorType(ir.IntType(64), 4)
        bits = builder.bitcast(kd, i64)
        expo = builder.add(builder.sub(bits, ir.Constant(i64, [_ROUND_BITS] * 4)),
                           ir.Constant(i64, [1023] * 4))
        scale = builder.bitcast(builder.shl(expo, ir.Constant(i64, [52] * 4)), _V4)
        return builder.select(low, const(0.0), builder.fmul(p, scale))
    return vec4(v), codegen


@intrinsic
def all_above4(typingctx, a, floor):
    """True when every lane of ``a`` is above ``floor`` (False where one is NaN)."""
    if not (a == vec4 and isinstance(floor, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        a, floor = args
        above = builder.fcmp_ordered(">", a, _splat(context, builder, floor, sig.args[1]))
        bits = builder.bitcast(above, ir.IntType(4))
        return builder.icmp_unsigned("==", bits, ir.Constant(ir.IntType(4), 15))
    return types.boolean(a, floor), codegen


@intrinsic
def prefetch(typingctx, ary, idx):
    """Hint that ``ary.flat[idx]`` will be read soon (no bounds check, no fault)."""
    if not (_c_float_array(ary) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(_pointer(context, builder, sig.args[0], *args), i8p)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p] + [ir.IntType(32)] * 3),
            "llvm.prefetch.p0i8")
        i32 = ir.IntType(32)
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(ary, idx), codegen
