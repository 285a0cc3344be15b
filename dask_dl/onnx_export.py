"""ONNX export: the model and its preprocessing as one ONNX graph (``model.to_onnx(path)``).

One graph input per original column, named after it, shape [N, 1]: float for numeric columns
(NaN: the training mean), string for categorical ones (one-hot with the missing slot for NA, ""
and unseen levels); an offset column is an input too. The output ``output`` is what
``predict_proba`` (classifiers), ``predict`` (regressors) or the reconstruction (autoencoders)
returns. Needs the ``onnx`` package (an optional extra); one-hot categorical encodings only
(``to_python`` covers the others).
"""
from __future__ import annotations

import numpy as np

from .names import LOG_LINK_DISTRIBUTIONS
from .nn.network import MAXOUT, RECTIFIER, SOFTMAX, TANH

OPSET = 19  # Equal on strings


def to_onnx(model, path: str) -> str:
    """Write ``model`` as an ONNX file at ``path`` (local); returns the path."""
    import onnx
    graph = _Graph(model)
    proto = graph.build()
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return path


class _Graph:
    """The nodes, initialisers and inputs of one model's graph."""

    def __init__(self, model):
        from onnx import helper
        self.model, self.helper, self.nodes, self.inits, self.inputs, self.n = model, helper, [], [], [], 0
        unsupported = [c.name for c in model.info.columns if c.kind == "categorical" and not c.one_hot]
        if unsupported or model.info.hash_slots:
            raise ValueError(f"to_onnx exports one-hot categorical columns; {unsupported or 'the hashed inputs'} use "
                             "another categorical encoding: export with to_python instead")

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs, **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def column(self, name: str, elem) -> str:
        from onnx import TensorProto
        self.inputs.append(self.helper.make_tensor_value_info(name, elem or TensorProto.FLOAT, ["N", 1]))
        return name

    def build(self):
        from onnx import TensorProto
        X = self.op("Concat", *self.encoded_columns(), axis=1)
        out = self.output(self.layers(X))
        final = self.helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", self.model.layout.units[-1]])
        self.nodes.append(self.helper.make_node("Identity", [out], ["output"]))
        graph = self.helper.make_graph(self.nodes, "dask_dl_model", self.inputs, [final], self.inits)
        return self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                      producer_name="dask_dl")

    def encoded_columns(self) -> list:
        """Each column's inputs in the network's layout (DataInfo's order)."""
        from onnx import TensorProto
        info, parts = self.model.info, []
        for col in info.columns:
            if col.kind == "numeric":
                x = self.column(col.name, TensorProto.FLOAT)
                sub, mul = info.sub_mul(col)
                filled = self.op("Where", self.op("IsNaN", x), self.const([[col.mean]]), x)
                parts.append(self.op("Mul", self.op("Sub", filled, self.const([[sub]])), self.const([[mul]])))
                continue
            x = self.column(col.name, TensorProto.STRING)
            hits = [self.op("Cast", self.op("Equal", x, self.const([[lv]], dtype=object)), to=TensorProto.FLOAT)
                    for lv in col.levels]
            seen = self.op("Sum", *hits) if len(hits) > 1 else hits[0]
            missing = self.op("Sub", self.const([[1.0]]), seen)  # NA, "" and unseen levels
            parts.extend((hits if info.use_all_factor_levels else hits[1:]) + [missing])
        return parts

    def layers(self, X: str) -> str:
        lay, state, A = self.model.layout, self.model.state, X
        for l in range(1, lay.n_layers + 1):
            Z = self.op("Add", self.op("MatMul", A, self.const(lay.weight_matrix(state, l).T)),
                        self.const(lay.bias_vector(state, l)))
            code = lay.hidden_code if l < lay.n_layers else lay.output_code
            if code == TANH:
                A = self.op("Tanh", Z)
            elif code == RECTIFIER:
                A = self.op("Relu", Z)
            elif code == MAXOUT:  # channels interleaved: (N, 2u) -> (N, u, 2) -> max over the pair
                pairs = self.op("Reshape", Z, self.const([0, lay.units[l], 2], dtype=np.int64))
                A = self.op("ReduceMax", pairs, self.const([2], dtype=np.int64), keepdims=0)
            elif code == SOFTMAX:
                A = self.op("Softmax", Z, axis=1)
            else:
                A = Z
            if l < lay.n_layers and lay.dropout[l]:
                A = self.op("Mul", A, self.const(1.0 - lay.dropout[l]))
        return A

    def output(self, out: str) -> str:
        from onnx import TensorProto
        m, info = self.model, self.model.info
        if m.kind in ("binomial", "multinomial"):
            ratio = info.prior_ratio()
            if ratio is None:
                return out
            scaled = self.op("Mul", out, self.const(ratio))
            return self.op("Div", scaled, self.op("ReduceSum", scaled, self.const([1], dtype=np.int64), keepdims=1))
        if m.kind == "autoencoder":  # numeric reconstructions back on the data's scale
            mul, sub = np.ones(info.n_inputs), np.zeros(info.n_inputs)
            for col, at in zip(info.columns, info.offsets()):
                if col.kind == "numeric":
                    sub[at], mul[at] = info.sub_mul(col)
            return self.op("Add", self.op("Div", out, self.const(mul)), self.const(sub))
        if info.offset_column is not None:
            o = self.column(info.offset_column, TensorProto.FLOAT)
            if info.standardize_response:
                o = self.op("Div", self.op("Sub", o, self.const([[info.response_mean]])),
                            self.const([[info.response_sigma]]))
            out = self.op("Add", out, o)
        if m.distribution in LOG_LINK_DISTRIBUTIONS:
            return self.op("Min", self.op("Exp", out), self.const([[1e19]]))
        if info.standardize_response:
            return self.op("Add", self.op("Mul", out, self.const([[info.response_sigma]])),
                           self.const([[info.response_mean]]))
        return out
