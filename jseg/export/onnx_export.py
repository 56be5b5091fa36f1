"""A segmentor as an ONNX model: input ``input`` (N, 3, H, W) float32, output ``logits`` (N, C, H, W) =
``encode_decode`` at the input size, before softmax.

The graph comes from the modules' own ``onnx`` methods (``jseg/export/onnx_graph.py``).  Random
streams (the Ham head's NMF bases) are graph inputs by default, so a result can be checked against a
PyTorch or jseg run given the same bases; ``bases_seed`` makes them constants.  ``dynamic`` makes N,
H and W symbolic where every module allows it; a module whose computation depends on the input size
(``onnx_fixed_shape`` says why: CGRSeg's resized attention biases) keeps the model at the given shape,
and ``notes`` says so.
"""
import jittor as jt

from ..fileio import write_atomic
from .onnx_graph import OnnxGraph


def fixed_shape_reasons(model):
    return sorted({f"{type(m).__name__}: {m.onnx_fixed_shape}" for m in model.modules()
                   if getattr(type(m), "onnx_fixed_shape", None)})


def input_shapes(model, shape, batch):
    """Run the model once at (batch, 3, *shape) and note every module's input shapes (what fixed-shape
    emitters read through ``g.static_shape``)."""
    seen = {}

    def shapes(v):
        if isinstance(v, jt.Var):
            return tuple(v.shape)
        return [shapes(x) for x in v] if isinstance(v, (list, tuple)) else None

    def hook(module, inputs, output):
        seen.setdefault(id(module), [shapes(v) for v in inputs])

    modules = list(model.modules())
    for m in modules:
        m.register_forward_hook(hook)
    try:
        with jt.no_grad():
            model.encode_decode(jt.zeros((batch, 3) + tuple(int(s) for s in shape), "float32")).sync()
    finally:
        for m in modules:
            m.remove_forward_hook()
        jt.clean_graph()
    return seen


def build_graph(model, shape=(512, 512), batch=1, opset=17, dynamic=False, bases_seed=None):
    """``(OnnxGraph, notes)`` of ``model.encode_decode`` (the model is put in eval mode)."""
    model.eval()
    notes = []
    fixed = fixed_shape_reasons(model)
    if dynamic and fixed:
        notes.append(f"--dynamic: exported at the fixed shape {batch}x3x{shape[0]}x{shape[1]}, because "
                     + "; ".join(fixed))
        dynamic = False
    g = OnnxGraph(model, opset)
    g.batch = "N" if dynamic else int(batch)
    g.random_mode = bases_seed
    if fixed:
        g.static_shapes = input_shapes(model, shape, batch)
    H, W = ("H", "W") if dynamic else (int(shape[0]), int(shape[1]))
    img = g.input("input", [g.batch, 3, H, W])
    g.output(g.call(model, img), "logits")
    g.output_shapes = {"logits": [g.batch, int(model.num_classes), H, W]}
    return g, notes


def check_model(proto):
    import onnx
    onnx.checker.check_model(proto)


def save_model(proto, path):
    write_atomic(path, proto.SerializeToString())


