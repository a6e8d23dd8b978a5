"""Rewriting a LiteRT flatbuffer: its signature, and smaller (shared constants, no names)."""

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
