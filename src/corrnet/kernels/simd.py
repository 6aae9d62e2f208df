"""Explicit SIMD for compiled kernels: what numba's loops cannot be made to say.

A register-blocked kernel (lanes.py) keeps a block of sums in the CPU's vector registers
while it runs through a long loop of multiply-adds. Written as plain numba loops over a
small array of sums, LLVM cannot keep them there: the array lives on the heap, and every
store into it might change the inputs read next, so each multiply-add loads and stores its
sum (measured: 7 GFLOP/s instead of 92 on LeNet's second layer, one core with AVX-512).
Two intrinsics say what is meant (a third, `lanes`, counts the lanes):

    sums = simd.stack_block(x.dtype)
        # BLOCK_BYTES of numbers on the stack: nothing else can point into them, so LLVM
        # keeps the sums a loop adds into in registers
    simd.fma_lanes(sums, at, value, w, w_at)
        # sums[at:at + lanes] += value * w[w_at:w_at + lanes], one vector multiply-add
        # (a fused multiply-add: one rounding), lanes = simd.lanes(sums)

A block's sums are written out transposed, each vector one output pixel's lanes (output
channels), each lane's pixels one run of the output. Written as a loop over lanes and
pixels, LLVM stores them one number at a time, with the index arithmetic for each. Measured
on an Intel Xeon (Emerald Rapids, 2 threads, lanes.py's forward pass, medians of 80 calls
interleaved, three processes): the suite's stem (3 -> 64, 7x7, stride 2, 224x224, N=8)
13.7/14.9/15.2 -> 12.3/14.3/14.1 ms, D2L's ResNet-18 stem (1 -> 64 on 96x96, N=64)
8.0/11.4/9.3 -> 7.3/10.1/8.5 ms; LeNet's second layer level (0.89/1.26/1.31 -> 0.90/1.29/1.32):

    simd.store_columns(out, at, plane, sums, sums_at, count)
        # out[at + lane * plane + p] = sums[sums_at + p * lanes + lane] for each lane and
        # p < count (a constant), lanes = simd.lanes(sums): one shuffle per pair of
        # numbers, one vector store per four

A whole square of lanes x lanes numbers (lanes.py keeps a row's sums and writes them in
squares) is transposed in log2(lanes) rounds of two-vector shuffles, a third of
store_columns' per number, and stored a vector per lane:

    simd.store_transposed(out, at, plane, block, block_at, count)
        # out[at + lane * plane + p] = block[block_at + p * lanes + lane] for each lane and
        # p < count (at most lanes, at run time: the stores masked past it)

A block's sums go into float64 totals one vector at a time (written as a loop over the
lanes, LLVM leaves it scalar: a conversion, an add and a store per number; lanes.py's weight
gradient of LeNet's second layer, interleaved: 2.72 -> 2.51 ms on one thread, 1.65 -> 1.53
on two, the same numbers):

    simd.add_lanes(totals, at, sums, sums_at)
        # totals[at:at + lanes] += sums[sums_at:sums_at + lanes], each number converted to
        # totals' dtype first, lanes = simd.lanes(sums)

Threads that share a pass's images take them from a counter, a few at a time
(`take_next`), so that one that starts late (a helper thread starts some 20-70 microseconds
after the work is handed out) takes fewer, instead of the calling thread waiting for its
fixed half:

    take = simd.take_next(counter)        # counter[0] += 1, atomically; its value before

Threads that wait for one another spin (threads.py, `waiting.py`), reading a counter that
another thread writes, and pausing between reads:

    value = simd.read_atomic(counter)     # counter[0], read from memory on every call
    simd.write_atomic(counter, value)     # counter[0] = value, seen by the reading threads
    simd.spin_pause()                     # the CPU's spin-wait hint (x86's pause)
    now = simd.cycles()                   # the CPU's time-stamp counter (0 where none)

A vectorized float32 exponential builds 2**k from its bits, and rounds its polynomial's
steps once each, in every kernel that inlines it (activation.py's sigmoid):

    scale = simd.float32_from_bits(bits)  # the int32's bits read as a float32
    p = simd.fma(p, r, c)                 # p * r + c, rounded once

A vector is `VECTOR_BYTES` (64) bytes: 16 float32 or 8 float64 lanes, one AVX-512
register, or two AVX2 registers (LLVM splits it), so the same kernel fills either machine's
registers. `lanes(array)` is that count for an array's dtype, a compile-time constant.

The intrinsics are built as numba is set up for corrnet (`jit.load_numba` calls `build`;
nothing is imported at ``import corrnet``), and a kernel names them as ``simd.fma_lanes``.
`fma_lanes_reference`, `fma_reference`, `float32_from_bits_reference`, `add_lanes_reference`,
`store_columns_reference` and `store_transposed_reference` are the plain-NumPy equivalents the
tests compare them with.
"""

from __future__ import annotations

import platform
import threading

import numpy as np

# One vector: an AVX-512 register (two AVX2 registers)
VECTOR_BYTES = 64
# The stack block's size: room for 16 vectors of sums
BLOCK_BYTES = 16 * VECTOR_BYTES

_lock = threading.Lock()
_built = False
_INTRINSICS = ("stack_block", "fma_lanes", "lanes", "take_next", "float32_from_bits", "fma",
               "add_lanes", "store_columns", "store_transposed", "read_atomic", "write_atomic",
               "spin_pause", "cycles")
# the spin-wait hint: x86's pause instruction (other CPUs: none, an empty statement)
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def build() -> None:
    """Create the intrinsics (imports numba): `jit.load_numba` calls it as it sets numba up,
    so that they are registered with numba's typing before any kernel that calls them is
    compiled (one registered during a compilation is not seen by it)."""
    global _built
    with _lock:
        if not _built:
            globals().update(_build())
            _built = True


def __getattr__(name):
    if name in _INTRINSICS and not _built:
        build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lanes_of(dtype) -> int:
    """The numbers of `dtype` in one vector (16 float32, 8 float64)."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def take_next_reference(counter) -> int:
    """`take_next` in plain Python (not atomic)."""
    value = int(counter[0])
    counter[0] += 1
    return value


def fma_reference(a, b, c):
    """`fma` in plain NumPy: float32 numbers through float64, whose product of two float32s is
    exact (one rounding of the sum to float64, then one to float32: equal to a single
    rounding except in rare double-rounding ties)."""
    dtype = np.result_type(a, b, c)
    return dtype.type(np.float64(a) * np.float64(b) + np.float64(c))


def float32_from_bits_reference(bits) -> np.float32:
    """`float32_from_bits` in plain NumPy."""
    return np.array(bits, np.int32).view(np.float32)[()]


def fma_lanes_reference(sums, at, value, w, w_at) -> None:
    """`fma_lanes` in plain NumPy (rounded twice where the intrinsic rounds once)."""
    count = lanes_of(sums.dtype)
    sums[at:at + count] += value * w[w_at:w_at + count]


def add_lanes_reference(totals, at, sums, sums_at) -> None:
    """`add_lanes` in plain NumPy."""
    count = lanes_of(sums.dtype)
    totals[at:at + count] += sums[sums_at:sums_at + count].astype(totals.dtype)


def store_transposed_reference(out, at, plane, block, block_at, count) -> None:
    """`store_transposed` in plain NumPy."""
    lanes = lanes_of(block.dtype)
    square = block[block_at:block_at + lanes * lanes].reshape(lanes, lanes)   # [p, lane]
    for lane in range(lanes):
        out[at + lane * plane:at + lane * plane + count] = square[:count, lane]


def store_columns_reference(out, at, plane, sums, sums_at, count) -> None:
    """`store_columns` in plain NumPy."""
    lanes = lanes_of(sums.dtype)
    for lane in range(lanes):
        start = at + lane * plane
        out[start:start + count] = sums[sums_at + lane:sums_at + count * lanes:lanes]


def _build() -> dict:
    """The intrinsics (imports numba)."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def vector_type(context, dtype):
        number = context.get_value_type(dtype)
        return number, ir.VectorType(number, lanes_of(str(dtype)))

    @intrinsic
    def stack_block(typingctx, dtype):
        """A 1-D array of BLOCK_BYTES on the stack, numbers of `dtype` (uninitialised; it
        lives as long as the kernel's call)."""
        number_type = dtype.dtype
        array_type = types.Array(number_type, 1, "C")

        def codegen(context, builder, signature, args):
            number = context.get_value_type(number_type)
            itemsize = context.get_abi_sizeof(number)
            count = BLOCK_BYTES // itemsize
            data = cgutils.alloca_once(builder, number, size=count)
            block = context.make_array(array_type)(context, builder)
            intp = context.get_value_type(types.intp)
            context.populate_array(block, data=data, shape=[ir.Constant(intp, count)],
                                   strides=[ir.Constant(intp, itemsize)],
                                   itemsize=ir.Constant(intp, itemsize), meminfo=None)
            return block._getvalue()

        return array_type(dtype), codegen

    @intrinsic
    def lanes(typingctx, array):
        """The lanes of one vector of `array`'s dtype, as a constant."""
        def codegen(context, builder, signature, args):
            return ir.Constant(context.get_value_type(types.intp),
                               lanes_of(str(array.dtype)))

        return types.intp(array), codegen

    @intrinsic
    def fma_lanes(typingctx, sums, at, value, w, w_at):
        """sums[at:at+lanes] += value * w[w_at:w_at+lanes]: one vector load of each, one
        broadcast, one fused multiply-add, one store (LLVM keeps the sums in registers where
        `sums` is a stack block and `at` a constant)."""
        if sums.dtype != w.dtype or sums.ndim != 1 or w.ndim != 1:
            return None

        def codegen(context, builder, signature, args):
            sums_type, _, _, w_type, _ = signature.args
            number, vector = vector_type(context, sums_type.dtype)
            sums_data = context.make_array(sums_type)(context, builder, args[0]).data
            w_data = context.make_array(w_type)(context, builder, args[3]).data
            sums_at = builder.bitcast(builder.gep(sums_data, [args[1]]), vector.as_pointer())
            w_vector = builder.load(builder.bitcast(builder.gep(w_data, [args[4]]),
                                                    vector.as_pointer()), align=4)
            count = vector.count
            scalar = context.cast(builder, args[2], signature.args[2], sums_type.dtype)
            one = builder.insert_element(ir.Constant(vector, ir.Undefined), scalar,
                                         ir.Constant(ir.IntType(32), 0))
            broadcast = builder.shuffle_vector(
                one, ir.Constant(vector, ir.Undefined),
                ir.Constant(ir.VectorType(ir.IntType(32), count), [0] * count))
            suffix = "f32" if number == ir.FloatType() else "f64"
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fma.v{count}{suffix}")
            total = builder.call(fma, [broadcast, w_vector, builder.load(sums_at, align=4)])
            builder.store(total, sums_at, align=4)
            return context.get_dummy_value()

        return types.void(sums, types.intp, sums.dtype, w, types.intp), codegen

    @intrinsic
    def add_lanes(typingctx, totals, at, sums, sums_at):
        """totals[at:at+lanes] += sums[sums_at:sums_at+lanes] converted to totals' dtype (at
        least as wide as sums'), lanes those of sums' dtype: one vector load of each, one
        conversion, one add, one store."""
        if not (totals.ndim == sums.ndim == 1 and isinstance(totals.dtype, types.Float)
                and isinstance(sums.dtype, types.Float)
                and totals.dtype.bitwidth >= sums.dtype.bitwidth):
            return None

        def codegen(context, builder, signature, args):
            totals_type, _, sums_type, _ = signature.args
            _, sums_vector = vector_type(context, sums_type.dtype)
            wide = ir.VectorType(context.get_value_type(totals_type.dtype), sums_vector.count)
            totals_data = context.make_array(totals_type)(context, builder, args[0]).data
            sums_data = context.make_array(sums_type)(context, builder, args[2]).data
            totals_at = builder.bitcast(builder.gep(totals_data, [args[1]]), wide.as_pointer())
            values = builder.load(builder.bitcast(builder.gep(sums_data, [args[3]]),
                                                  sums_vector.as_pointer()), align=4)
            if wide != sums_vector:
                values = builder.fpext(values, wide)
            total = builder.fadd(builder.load(totals_at, align=8), values)
            builder.store(total, totals_at, align=8)
            return context.get_dummy_value()

        return types.void(totals, types.intp, sums, types.intp), codegen

    @intrinsic
    def store_columns(typingctx, out, at, plane, sums, sums_at, count):
        """out[at + lane * plane + p] = sums[sums_at + p * lanes + lane] for p < count (a
        constant) and each lane of sums' dtype: count vector loads; per lane, its numbers
        gathered from them by shuffles, two at a time, and stored four (or two, or one) at
        a time."""
        if not (isinstance(count, types.IntegerLiteral) and out.ndim == sums.ndim == 1
                and out.dtype == sums.dtype and isinstance(sums.dtype, types.Float)):
            return None
        pixels = count.literal_value

        def codegen(context, builder, signature, args):
            out_type, at_type, plane_type, sums_type, sums_at_type, _ = signature.args
            number, vector = vector_type(context, sums_type.dtype)
            index = context.get_value_type(types.intp)
            lane_index = ir.IntType(32)
            out_data = context.make_array(out_type)(context, builder, args[0]).data
            sums_data = context.make_array(sums_type)(context, builder, args[3]).data
            at = context.cast(builder, args[1], at_type, types.intp)
            plane = context.cast(builder, args[2], plane_type, types.intp)
            sums_at = context.cast(builder, args[4], sums_at_type, types.intp)
            pixel_vectors = []      # pixel p's vector: sums[sums_at + p * lanes:][:lanes]
            for p in range(pixels):
                first = builder.add(sums_at, ir.Constant(index, p * vector.count))
                pixel_vectors.append(builder.load(builder.bitcast(
                    builder.gep(sums_data, [first]), vector.as_pointer()), align=4))

            def pick(first, second, lanes):
                return builder.shuffle_vector(first, second, ir.Constant(
                    ir.VectorType(lane_index, len(lanes)), lanes))

            for lane in range(vector.count):
                row = builder.add(at, builder.mul(plane, ir.Constant(index, lane)))
                p = 0
                while p < pixels:
                    width = 4 if pixels - p >= 4 else 2 if pixels - p >= 2 else 1
                    if width == 1:
                        value = builder.extract_element(pixel_vectors[p],
                                                        ir.Constant(lane_index, lane))
                    else:       # (lane of pixel p, lane of pixel p + 1), ...
                        pairs = [pick(pixel_vectors[p + k], pixel_vectors[p + k + 1],
                                      [lane, vector.count + lane]) for k in range(0, width, 2)]
                        value = pairs[0] if width == 2 else pick(pairs[0], pairs[1],
                                                                 [0, 1, 2, 3])
                    target = builder.gep(out_data, [builder.add(row, ir.Constant(index, p))])
                    if width > 1:
                        target = builder.bitcast(target,
                                                 ir.VectorType(number, width).as_pointer())
                    builder.store(value, target, align=4)
                    p += width
            return context.get_dummy_value()

        return types.void(out, at, plane, sums, sums_at, count), codegen

    @intrinsic
    def store_transposed(typingctx, out, at, plane, block, block_at, count):
        """out[at + lane * plane + p] = block[block_at + p * lanes + lane] for each lane and
        p < count (at most lanes; a run-time value): the lanes x lanes square of numbers
        (vector p: pixel p's lanes) transposed in registers, then each lane's run written
        with one vector store, masked past count. The transpose swaps the off-diagonal
        h x h sub-squares of every 2h x 2h square, h = lanes/2, ..., 1 (one two-vector
        shuffle per vector and round: 64 for 16 lanes, against store_columns' one per pair
        of numbers)."""
        if not (out.ndim == block.ndim == 1 and out.dtype == block.dtype
                and isinstance(block.dtype, types.Float)):
            return None

        def codegen(context, builder, signature, args):
            out_type, at_type, plane_type, block_type, block_at_type, count_type = (
                signature.args)
            number, vector = vector_type(context, block_type.dtype)
            count_lanes = vector.count
            index = context.get_value_type(types.intp)
            lane_index = ir.IntType(32)
            out_data = context.make_array(out_type)(context, builder, args[0]).data
            block_data = context.make_array(block_type)(context, builder, args[3]).data
            at = context.cast(builder, args[1], at_type, types.intp)
            plane = context.cast(builder, args[2], plane_type, types.intp)
            block_at = context.cast(builder, args[4], block_at_type, types.intp)
            count = context.cast(builder, args[5], count_type, types.intp)
            rows = []       # rows[p][lane] = block[block_at + p * lanes + lane]
            for p in range(count_lanes):
                first = builder.add(block_at, ir.Constant(index, p * count_lanes))
                rows.append(builder.load(builder.bitcast(
                    builder.gep(block_data, [first]), vector.as_pointer()), align=4))
            half = count_lanes // 2
            while half >= 1:
                # rows i and i + half (bit `half` of i clear) trade their off-diagonal parts
                upper = [j if not j & half else count_lanes + j - half
                         for j in range(count_lanes)]
                lower = [j + half if not j & half else count_lanes + j
                         for j in range(count_lanes)]
                for i in range(count_lanes):
                    if i & half:
                        continue
                    first, second = rows[i], rows[i + half]
                    rows[i] = builder.shuffle_vector(first, second, ir.Constant(
                        ir.VectorType(lane_index, count_lanes), upper))
                    rows[i + half] = builder.shuffle_vector(first, second, ir.Constant(
                        ir.VectorType(lane_index, count_lanes), lower))
                half //= 2
            # rows[lane][p] = block[block_at + p * lanes + lane]: stored where p < count
            positions = ir.Constant(ir.VectorType(index, count_lanes), list(range(count_lanes)))
            limit = builder.insert_element(ir.Constant(ir.VectorType(index, count_lanes),
                                                       ir.Undefined), count,
                                           ir.Constant(lane_index, 0))
            limit = builder.shuffle_vector(limit, ir.Constant(ir.VectorType(
                index, count_lanes), ir.Undefined), ir.Constant(ir.VectorType(
                    lane_index, count_lanes), [0] * count_lanes))
            mask = builder.icmp_signed("<", positions, limit)
            pointer = vector.as_pointer()
            # (named for typed pointers, "p0v16f32"; LLVM renames the declaration to its
            # own form as it reads the IR: both names compile on LLVM 14, the oldest numba
            # allowed (llvmlite 0.43), and on LLVM 22)
            vector_name = f"v{count_lanes}{'f32' if number == ir.FloatType() else 'f64'}"
            masked_store = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [
                    vector, pointer, lane_index, ir.VectorType(ir.IntType(1), count_lanes)]),
                f"llvm.masked.store.{vector_name}.p0{vector_name}")
            for lane in range(count_lanes):
                row = builder.add(at, builder.mul(plane, ir.Constant(index, lane)))
                target = builder.bitcast(builder.gep(out_data, [row]), pointer)
                builder.call(masked_store, [rows[lane], target, ir.Constant(lane_index, 4),
                                            mask])
            return context.get_dummy_value()

        return types.void(out, at, plane, block, block_at, count), codegen

    @intrinsic
    def take_next(typingctx, counter):
        """counter[0] += 1 as one atomic operation (other threads may add at the same time);
        returns its value before: each caller gets a different one."""
        if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1),
                                      "monotonic")

        return types.int64(counter), codegen

    @intrinsic
    def fma(typingctx, a, b, c):
        """a * b + c rounded once (llvm.fma: a vector instruction in a vectorized loop), for
        three numbers of one float type: the same rounding in every caller, whatever its
        fast-math flags."""
        if not (a == b == c and isinstance(a, types.Float)):
            return None

        def codegen(context, builder, signature, args):
            number = context.get_value_type(signature.args[0])
            suffix = "f32" if number == ir.FloatType() else "f64"
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(number, [number] * 3), f"llvm.fma.{suffix}")
            return builder.call(function, list(args))

        return a(a, b, c), codegen

    @intrinsic
    def float32_from_bits(typingctx, bits):
        """The float32 whose bits are those of the int32 `bits` (a bitcast: no conversion),
        e.g. 2**k from (k + 127) * 2**23. Where NumPy needs a view of an array, this is a
        register's reinterpretation, which a vectorized loop keeps."""
        if bits != types.int32:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.FloatType())

        return types.float32(bits), codegen

    def is_counter(counter):
        return isinstance(counter, types.Array) and counter.dtype == types.int64

    @intrinsic
    def read_atomic(typingctx, counter):
        """counter[0], loaded anew on every call (an atomic load with acquire ordering: LLVM
        may not hoist it out of a waiting loop, and what the writer stored before it is
        seen after it)."""
        if not is_counter(counter):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.load_atomic(data, "acquire", 8)

        return types.int64(counter), codegen

    @intrinsic
    def write_atomic(typingctx, counter, value):
        """counter[0] = value (an atomic store with release ordering: what this thread wrote
        before it is seen by a thread that reads the new value)."""
        if not (is_counter(counter) and isinstance(value, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            number = context.cast(builder, args[1], signature.args[1], types.int64)
            builder.store_atomic(number, data, "release", 8)
            return context.get_dummy_value()

        return types.void(counter, value), codegen

    @intrinsic
    def spin_pause(typingctx):
        """The CPU's hint that this is a spin-wait loop (x86's pause: it spares the core's
        other hardware thread and the memory order machinery); nothing on other CPUs."""
        def codegen(context, builder, signature, args):
            if _X86:
                function = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
                builder.call(function, [])
            return context.get_dummy_value()

        return types.void(), codegen

    @intrinsic
    def cycles(typingctx):
        """The CPU's time-stamp counter (llvm.readcyclecounter: x86's rdtsc, which counts at
        a constant rate on current CPUs); 0 on a CPU without one."""
        def codegen(context, builder, signature, args):
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
            return builder.call(function, [])

        return types.int64(), codegen

    return {"stack_block": stack_block, "fma_lanes": fma_lanes, "lanes": lanes,
            "take_next": take_next, "float32_from_bits": float32_from_bits, "fma": fma,
            "add_lanes": add_lanes, "store_columns": store_columns,
            "store_transposed": store_transposed, "read_atomic": read_atomic,
            "write_atomic": write_atomic, "spin_pause": spin_pause, "cycles": cycles}
