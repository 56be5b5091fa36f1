"""An ONNX graph written from a jseg model's modules, without PyTorch and without tracing.

Every module class that computes something has an ``onnx(self, g, *inputs)`` method beside its
``execute`` that emits the same computation through this builder (``g``) and returns the output
tensor names; a container calls ``g.call(child, ...)`` for its children.  The builder only needs the
``onnx`` package (``pip install -e '.[export]'``) when the model is written (``to_model``).

A class that defines ``execute`` without ``onnx`` (or inherits an ``onnx`` written for another
``execute``) cannot be exported: ``ExportError`` names it and where it sits in the model.

Shapes are not tracked here: a reshape that needs a runtime size reads it from the graph
(``Shape`` / ``Gather``), so the same emitters serve fixed and symbolic (``--dynamic``) inputs.
Parameters become initializers named by their state-dict keys.
"""
import numpy as np
from jittor import nn

from ..errors import UserError
from ..models.layers.conv import conv_onnx

OPSETS = range(13, 18)   # ReduceMean's axes attribute (< 18), Softmax on one axis and Split's input form (>= 13)


class ExportError(UserError):
    """The model cannot be written as ONNX (a module without an exporter, an unsupported setting)."""


def _own_method(cls, name):
    """The class of ``cls``'s MRO that defines ``name`` (None if none does)."""
    for c in cls.__mro__:
        if name in vars(c):
            return c
    return None


class OnnxGraph:
    """Nodes, initializers, inputs and outputs of one graph, and the helpers emitters use."""

    def __init__(self, model, opset=17):
        if opset not in OPSETS:
            raise ExportError(f"--opset {opset}: jseg writes opsets {OPSETS.start}-{OPSETS.stop - 1}")
        self.opset = opset
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self.output_shapes = {}   # output name -> its shape (ints and symbolic names)
        self.batch = 1            # the batch dim of the inputs: an int, or a symbolic name ('N')
        self.random_mode = None   # random streams: None = graph inputs, an int = constants drawn from that seed
        self.static_shapes = {}   # id(module) -> its input shapes, for fixed-shape exports (onnx_export.input_shapes)
        self._used = set()
        self._param_names = {id(v): k for k, v in model.state_dict().items()}
        self._module_names = {id(m): n for n, m in model.named_modules()}
        self._consts = {}
        self._scope = []

    # ------------------------------------------------------------------ names
    def fresh(self, hint):
        base = f"{self._scope[-1]}/{hint}" if self._scope else hint
        name, i = base, 1
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    # ------------------------------------------------------------------ modules
    def call(self, module, *args):
        """Emit ``module(*args)``: its class's ``onnx`` method, or a Jittor container/layer rule."""
        cls = type(module)
        rule = _JITTOR_RULES.get(cls)
        if rule is None:
            run = _own_method(cls, "execute")
            emit = _own_method(cls, "onnx")
            if emit is None or (run is not None and not issubclass(emit, run)):
                where = self._module_names.get(id(module), "?") or "the model"
                raise ExportError(f"cannot export to ONNX: {where} is a {cls.__module__}.{cls.__qualname__}, "
                                  f"which has no ONNX exporter (an 'onnx' method beside its 'execute', see "
                                  f"jseg/export/onnx_graph.py)")
            rule = cls.onnx
        name = self._module_names.get(id(module))
        if name:
            self._scope.append(name)   # node names start with the module's path: backbone.block1.0.attn/MatMul
        try:
            return rule(module, self, *args)
        finally:
            if name:
                self._scope.pop()

    def static_shape(self, module, i=0):
        """Shape of ``module``'s input ``i`` in this fixed-shape export."""
        shapes = self.static_shapes.get(id(module))
        if not shapes:
            raise ExportError(f"internal: {type(module).__name__} needs the input shapes of a fixed-shape export")
        return shapes[i]

    # ------------------------------------------------------------------ values
    def param(self, var):
        """A model parameter or buffer (initializer named by its state-dict key)."""
        key = self._param_names.get(id(var))
        if key is None:
            return self.const(var.numpy(), "value")
        if key not in self._used:
            self._used.add(key)
            self._add_initializer(key, np.array(var.numpy(), order="C"))
        return key

    def const(self, value, hint="const", dtype=np.float32):
        """A constant tensor (deduplicated by value)."""
        a = np.array(value, dtype=dtype, order="C")   # (np.ascontiguousarray would make a scalar 1-D)
        key = (a.dtype.str, a.shape, a.tobytes())
        if key not in self._consts:
            name = self.fresh(hint)
            self._add_initializer(name, a)
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values):
        return self.const(list(values), "shape", np.int64)

    def _add_initializer(self, name, array):
        self.initializers.append((name, array))

    def input(self, name, shape, dtype=np.float32):
        """A graph input; ``shape``: ints and symbolic names."""
        if name in self._used:
            raise ExportError(f"cannot export to ONNX: two graph inputs would be named {name!r}")
        self._used.add(name)
        self.inputs.append((name, shape, dtype))
        return name

    def output(self, value, name):
        self.nodes.append(("Identity", [value], [name], {}, self.fresh("output")))
        self._used.add(name)
        self.outputs.append((name, None))
        return name

    # ------------------------------------------------------------------ nodes
    def op(self, op_type, *inputs, outputs=1, **attrs):
        outs = [self.fresh(op_type) for _ in range(outputs)]
        self.nodes.append((op_type, [i if i is not None else "" for i in inputs], outs, attrs,
                           self.fresh(op_type + "_node")))
        return outs[0] if outputs == 1 else outs

    def shape(self, x, start=None, end=None):
        s = self.op("Shape", x)
        if start is None and end is None:
            return s
        return self.op("Slice", s, self.ints([start or 0]), self.ints([end if end is not None else 2 ** 62]))

    def reshape(self, x, shape):
        """``shape``: a list of ints (0 copies the input's dim, -1 infers one) or a shape tensor name."""
        return self.op("Reshape", x, shape if isinstance(shape, str) else self.ints(shape))

    def concat_shape(self, *parts):
        """A shape tensor from pieces: lists of ints and 1-D int64 tensor names."""
        names = [p if isinstance(p, str) else self.ints(p) for p in parts]
        return names[0] if len(names) == 1 else self.op("Concat", *names, axis=0)

    def transpose(self, x, perm):
        return self.op("Transpose", x, perm=list(perm))

    def matmul(self, a, b, trans_a=False, trans_b=False, rank=3):
        """``a @ b`` over the last two axes of rank-``rank`` operands, either one transposed there."""
        swap = list(range(rank - 2)) + [rank - 1, rank - 2]
        if trans_a:
            a = self.op("Transpose", a, perm=swap)
        if trans_b:
            b = self.op("Transpose", b, perm=swap)
        return self.op("MatMul", a, b)

    def mean(self, x, axes):
        return self.op("ReduceMean", x, axes=list(axes), keepdims=1)

    def softmax(self, x, axis=-1):
        return self.op("Softmax", x, axis=axis)

    def resize(self, x, like=None, size=None, align_corners=False, mode="linear"):
        """Bilinear ``F.interpolate`` of NCHW ``x`` to ``like``'s H, W (read at run time) or to ``size``."""
        hw = self.shape(like, 2, 4) if like is not None else self.ints(size)
        sizes = self.op("Concat", self.shape(x, 0, 2), hw, axis=0)
        ct = "align_corners" if align_corners else "pytorch_half_pixel"
        return self.op("Resize", x, "", "", sizes, mode=mode, coordinate_transformation_mode=ct)

    def normalize(self, x, axes, eps):
        """``(x - mean) / sqrt(var + eps)`` over ``axes`` with the biased variance (jseg's centred rule)."""
        centered = self.op("Sub", x, self.mean(x, axes))
        var = self.mean(self.op("Mul", centered, centered), axes)
        return self.op("Div", centered, self.op("Sqrt", self.op("Add", var, self.const(eps, "eps"))))

    # ------------------------------------------------------------------ the file
    def to_model(self, producer="jseg"):
        """The ``onnx.ModelProto`` (needs the ``onnx`` package)."""
        try:
            from onnx import helper, numpy_helper, TensorProto
        except ImportError:
            raise ExportError("ONNX export needs the onnx package: pip install 'onnx<1.18' (or pip install "
                              "-e '.[export]' in the jseg checkout)") from None
        elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
        nodes = [helper.make_node(t, i, o, name=n, **a) for t, i, o, a, n in self.nodes]
        inits = [numpy_helper.from_array(a, name) for name, a in self.initializers]
        inputs = [helper.make_tensor_value_info(n, elem[np.dtype(d)], list(s)) for n, s, d in self.inputs]
        outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, self.output_shapes.get(n))
                   for n, _ in self.outputs]
        graph = helper.make_graph(nodes, "jseg", inputs, outputs, initializer=inits)
        model = helper.make_model(graph, producer_name=producer, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = min(model.ir_version, 8)   # onnxruntime < 1.21 reads IR <= 10; 8 is ample for opset 17
        return model


# -------------------------------------------------------------------------- Jittor's own classes
def _sequential(m, g, x):
    for layer in m.layers.values():
        x = g.call(layer, x)
    return x


_JITTOR_RULES = {
    nn.Sequential: _sequential,
    nn.Conv2d: conv_onnx,
    nn.ReLU: lambda m, g, x: g.op("Relu", x),
    nn.Sigmoid: lambda m, g, x: g.op("Sigmoid", x),
}
