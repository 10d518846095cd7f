"""FP16 graph for GPUs: the networks in half precision, everything that needs range in FP32.

Converted to float16 (weights and activations): the nodes of DriftGraph's two networks, the
vision encoder and the U-Net. Left exactly as in the FP32 graph, with no FP16 rounding between
their nodes:
- the graph's inputs and outputs (same contract as the FP32 graph);
- the glue outside the networks: uint8 → float, state normalization, noise scaling and the
  action unnormalization (robot units such as 180° would lose a tenth of a degree in FP16, and
  LeRobot's 1e-8 epsilon for a constant dimension is 0 in FP16);
- inside the networks, every normalization layer (LeRobot's GroupNorm exports as
  InstanceNormalization, whose variance squares its input and overflows FP16 above ~256), the
  spatial softmax and the sinusoidal step embedding.
A Cast sits wherever an FP16 tensor meets an FP32 node or the reverse. (ONNX Runtime's own
converter rounds the inputs and outputs of every kept-FP32 node to FP16, which defeats the
glue's purpose.)

The result is what ONNX Runtime's CUDA/TensorRT providers run in FP16, and what a strongly typed
TensorRT network (TensorRT 10 and 11 alike) builds from. ONNX Runtime's CPU provider runs it too,
computing FP16 nodes it has no kernel for in FP32 between FP16 roundings: that is how the export
gates it on a machine without a GPU (``onnxruntime-cpu-fp16``).
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NETWORK_SCOPES = ("/rgb_encoder", "/unet/")  # node-name prefixes of DriftGraph's two networks
FP32_OPS = {"InstanceNormalization", "GroupNormalization", "LayerNormalization", "Softmax", "Sin", "Cos"}
TYPE_FIXED_OPS = {"Cast", "CastLike", "Shape", "Size", "ConstantOfShape", "Constant"}
F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def convert_fp16(fp32_model: Path, out: Path) -> None:
    model = onnx.shape_inference.infer_shapes(onnx.load(str(fp32_model)), strict_mode=True)
    graph = model.graph
    _constants_to_initializers(graph)
    dtype = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    weights = {t.name: t for t in graph.initializer}
    dtype |= {name: t.data_type for name, t in weights.items()}
    casts: dict[tuple[str, int], str] = {}
    nodes: list[onnx.NodeProto] = []

    def as_type(name: str, to: int) -> str:
        """``name`` in type ``to``: an FP16 copy of a weight, or a (shared) Cast node."""
        if dtype.get(name) not in (F32, F16) or dtype[name] == to:
            return name
        if (name, to) not in casts:
            new = f"{name}_as_{'fp16' if to == F16 else 'fp32'}"
            if name in weights:
                value = numpy_helper.to_array(weights[name]).astype(np.float16 if to == F16 else np.float32)
                graph.initializer.append(numpy_helper.from_array(value, new))
            else:
                nodes.append(helper.make_node("Cast", [name], [new], name=f"{new}_cast", to=to))
            casts[name, to] = new
            dtype[new] = to
        return casts[name, to]

    for node in graph.node:
        half = node.name.startswith(NETWORK_SCOPES) and node.op_type not in FP32_OPS | TYPE_FIXED_OPS
        want = F16 if half else F32
        if node.op_type not in TYPE_FIXED_OPS:
            node.input[:] = [as_type(i, want) if i else i for i in node.input]
        if half:
            for o in node.output:
                if dtype.get(o) == F32:
                    dtype[o] = F16
        nodes.append(node)
    for output in graph.output:  # the contract's outputs stay FP32
        if dtype.get(output.name) == F16:
            inner = f"{output.name}_fp16"
            for n in nodes:
                n.output[:] = [inner if o == output.name else o for o in n.output]
                n.input[:] = [inner if i == output.name else i for i in n.input]
            nodes.append(helper.make_node("Cast", [inner], [output.name], name=f"{output.name}_cast", to=F32))
    used = {i for n in nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    onnx.save(model, str(out))
    onnx.checker.check_model(str(out), full_check=True)


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Constant nodes become initializers, so a weight read by FP16 nodes gets an FP16 copy and
    one read by FP32 glue keeps its exact value."""
    for node in [n for n in graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"]:
        tensor = onnx.TensorProto()
        tensor.CopyFrom(node.attribute[0].t)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)
