"""Rewriting a LiteRT flatbuffer: its signature, smaller (shared constants, no names), and the
fixes a fused LSTM file needs (integer hand-overs, a zero state at every call)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def with_signature(model_bytes: bytes) -> bytes:
    """The flatbuffer with one signature, `serving_default`: window -> forecast.

    Converting a concrete function writes none, and ai-edge-quantizer calibrates by signature.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    graph = model.subgraphs[0]

    def tensor_map(name: str, index: int) -> Any:
        item = schema.TensorMapT()
        item.name, item.tensorIndex = name, index
        return item

    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.inputs = [tensor_map("window", graph.inputs[0])]
    signature.outputs = [tensor_map("forecast", graph.outputs[0])]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def shrink(model_bytes: bytes) -> bytes:
    """Rewrite a flatbuffer smaller: shared identical constants, no names or unused tensors.

    Also drops the optional per-tensor quantization min/max arrays and empty quantization
    tables (the interpreter reads only scale and zero point), subgraph names, the model
    description and the converter's metadata.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    data = [bytes(b.data.tobytes()) if b.data is not None else b"" for b in model.buffers]
    for index, graph in enumerate(model.subgraphs):
        _share_constants(graph, data)
        keep = _used_tensors(graph)
        new = {old: n for n, old in enumerate(keep)}
        io = set(graph.inputs) | set(graph.outputs) if index == 0 else set()
        graph.name = None
        for old in keep:
            tensor = graph.tensors[old]
            if tensor.quantization is not None:
                tensor.quantization.min = None
                tensor.quantization.max = None
                if tensor.quantization.scale is None and tensor.quantization.zeroPoint is None:
                    tensor.quantization = None  # an empty table still costs bytes
            if old not in io:
                tensor.name = None
                tensor.shapeSignature = None
        graph.tensors = [graph.tensors[i] for i in keep]
        for op in graph.operators:
            op.inputs = [new[i] if i >= 0 else i for i in op.inputs]
            op.outputs = [new[i] if i >= 0 else i for i in op.outputs]
            if op.intermediates is not None:
                op.intermediates = [new[int(i)] for i in op.intermediates]
        graph.inputs = [new[i] for i in graph.inputs]
        graph.outputs = [new[i] for i in graph.outputs]
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == index:
                for item in [*(signature.inputs or []), *(signature.outputs or [])]:
                    item.tensorIndex = new[item.tensorIndex]
    model.description = None
    model.metadata = [m for m in (model.metadata or []) if m.name != b"CONVERSION_METADATA"]
    _share_buffers(model, data)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _share_constants(graph: Any, data: list[bytes]) -> None:
    """Point operators at one tensor per distinct constant (same bytes, type, shape, quant)."""

    def quant_key(q: Any) -> Any:
        if q is None:
            return None
        return tuple(None if a is None else np.asarray(a).tobytes() for a in (q.scale, q.zeroPoint))

    first: dict[Any, int] = {}
    remap = list(range(len(graph.tensors)))
    for i, tensor in enumerate(graph.tensors):
        content = data[tensor.buffer]
        if content and not tensor.isVariable:
            shape = None if tensor.shape is None else tuple(tensor.shape)
            key = (
                hashlib.sha1(content).digest(),
                tensor.type,
                shape,
                quant_key(tensor.quantization),
            )
            remap[i] = first.setdefault(key, i)
    for op in graph.operators:
        op.inputs = [remap[i] if i >= 0 else i for i in op.inputs]


def _used_tensors(graph: Any) -> list[int]:
    used = set(graph.inputs) | set(graph.outputs)
    for op in graph.operators:
        used |= {i for i in op.inputs if i >= 0} | {i for i in op.outputs if i >= 0}
        if op.intermediates is not None:
            used |= {int(i) for i in op.intermediates}
    return sorted(used)


def _share_buffers(model: Any, data: list[bytes]) -> None:
    """Keep one buffer per distinct content; buffer 0 stays the empty sentinel."""
    referenced = {t.buffer for g in model.subgraphs for t in g.tensors}
    referenced |= {m.buffer for m in model.metadata}
    order = [0, *sorted(referenced - {0})]
    seen: dict[Any, int] = {}
    buffers: list[Any] = []
    mapping: dict[int, int] = {}
    for i in order:
        key: Any = hashlib.sha1(data[i]).digest() if i and data[i] else ("unique", i)
        if key not in seen:
            seen[key] = len(buffers)
            buffers.append(model.buffers[i])
        mapping[i] = seen[key]
    model.buffers = buffers
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer = mapping[tensor.buffer]
    for meta in model.metadata:
        meta.buffer = mapping[meta.buffer]


def builtin_code(code: Any) -> int:
    """An operator code's builtin operator: codes past 127 live only in the newer field, older
    files fill only the deprecated one."""
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def requantize_pairs(model_bytes: bytes) -> bytes:
    """Replace each DEQUANTIZE -> QUANTIZE pair by one QUANTIZE from integer to integer.

    Quantizing in two passes (the LSTM to int8 first, the rest to int16 after) leaves a float
    tensor at every hand-over between them; LiteRT and TFLite Micro requantize int16 <-> int8
    directly, so the file keeps no float tensor.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    codes = [builtin_code(c) for c in model.operatorCodes]
    for graph in model.subgraphs:
        readers: dict[int, int] = {}
        for op in graph.operators:
            for i in op.inputs:
                readers[i] = readers.get(i, 0) + 1
        made_by = {op.outputs[0]: op for op in graph.operators if len(op.outputs) == 1}
        dropped = set()
        for op in graph.operators:
            if codes[op.opcodeIndex] != schema.BuiltinOperator.QUANTIZE:
                continue
            source = made_by.get(op.inputs[0])
            if (
                source is None
                or codes[source.opcodeIndex] != schema.BuiltinOperator.DEQUANTIZE
                or readers[op.inputs[0]] != 1
                or op.inputs[0] in graph.outputs
            ):
                continue
            op.inputs = [source.inputs[0]]
            dropped.add(id(source))
        graph.operators = [op for op in graph.operators if id(op) not in dropped]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs: its output (h) and cell (c) states, variable tensors.
_LSTM_STATES = (18, 19)
_LSTM_CELL = 19


def widen_lstm_cells(calibrated: bytes, at_least: float = 1.0) -> bytes:
    """Widen every LSTM cell state's calibrated range to at least +-`at_least`.

    The converter gives the int16 cell state a power-of-two scale covering its range; below
    2^-15 (a range under +-1: small or untrained LSTMs) LiteRT's integer LSTM kernel goes wrong
    (0.30 off in scaled units on an LSTM(8) over 2 channels, where TFLite Micro's kernel is
    0.006 off), and at 2^-15 both agree (0.0025). One bit of a 16-bit state is the price.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(calibrated))
    lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    for graph in model.subgraphs:
        for op in graph.operators:
            if builtin_code(model.operatorCodes[op.opcodeIndex]) != lstm:
                continue
            quant = graph.tensors[op.inputs[_LSTM_CELL]].quantization
            if quant is None or quant.min is None or quant.max is None:
                continue
            quant.min = np.minimum(np.asarray(quant.min, np.float32), -at_least)
            quant.max = np.maximum(np.asarray(quant.max, np.float32), at_least)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def zero_lstm_states(model_bytes: bytes) -> bytes:
    """Write zero into every LSTM's state tensors before it runs, at every call.

    The fused op keeps its last h and c in variable tensors and starts the next call from them:
    a window's forecast would depend on the window before (0.002 in scaled units on an
    untrained float LSTM(16), 0.06 on an int8 LSTM(64) given random windows in TFLite Micro).
    An ADD of a zero constant to itself, written into each state, makes every call start from
    zero as Keras does, in LiteRT and TFLite Micro alike, with no reset call.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    codes = model.operatorCodes
    add = next(
        (n for n, c in enumerate(codes) if builtin_code(c) == schema.BuiltinOperator.ADD), None
    )
    if add is None:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
        code.version = 1
        codes.append(code)
        add = len(codes) - 1
    dtypes = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.INT8: np.int8,
        schema.TensorType.INT16: np.int16,
    }
    for graph in model.subgraphs:
        operators = []
        for op in graph.operators:
            if (
                builtin_code(codes[op.opcodeIndex])
                == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
            ):
                for slot in _LSTM_STATES:
                    state = graph.tensors[op.inputs[slot]]
                    quant = state.quantization
                    zero_point = (
                        int(quant.zeroPoint[0]) if quant and quant.zeroPoint is not None else 0
                    )
                    buffer = schema.BufferT()
                    buffer.data = np.full(state.shape, zero_point, dtypes[state.type]).tobytes()
                    model.buffers.append(buffer)
                    zero = schema.TensorT()
                    zero.shape, zero.type = list(state.shape), state.type
                    zero.buffer = len(model.buffers) - 1
                    zero.quantization = quant
                    graph.tensors.append(zero)
                    reset = schema.OperatorT()
                    reset.opcodeIndex = add
                    reset.inputs = [len(graph.tensors) - 1] * 2
                    reset.outputs = [op.inputs[slot]]
                    reset.builtinOptionsType = schema.BuiltinOptions.AddOptions
                    reset.builtinOptions = schema.AddOptionsT()
                    operators.append(reset)
            operators.append(op)
        graph.operators = operators
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
