"""Layer shapes, the flat float32 model state, and H2O's initialisation schemes.

The whole trainable state of a network is ONE flat float32 vector (``state``) so that the Dask loop
can broadcast, average and return it without knowing about neurons. Sections, in order:

    W   all weight matrices, row-major, one row per receiving unit (Maxout: two rows per unit,
        channel c of unit j is row 2j+c), so each neuron's incoming weights are contiguous;
        with ``input_major`` (sparse=True, per-sample) the FIRST matrix has one row per input
        instead, so a sparse row's update reads and writes only its non-zero inputs' rows
    B   all biases (Maxout: two per unit)
    S1W, S2W, S1B, S2B   optimizer state laid out like W and B (ADADELTA: E[g^2], E[dx^2];
        momentum: the velocity in S1*, S2* unused)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# activation codes shared with the kernels
TANH, RECTIFIER, MAXOUT = 0, 1, 2
HIDDEN_CODES = {"Tanh": TANH, "Rectifier": RECTIFIER, "Maxout": MAXOUT}
HIDDEN_NAMES = {code: name for name, code in HIDDEN_CODES.items()}
# output codes
SOFTMAX, LINEAR = 10, 11


@dataclass(frozen=True)
class NetworkLayout:
    """Shapes and offsets of every layer inside the flat state vector."""
    units: tuple            # (u_0, u_1, ..., u_L, u_out)
    hidden_code: int        # TANH / RECTIFIER / MAXOUT
    output_code: int        # SOFTMAX / LINEAR, or an autoencoder's hidden activation (TANH / RECTIFIER)
    dropout: tuple          # (input ratio, hidden ratio per layer..., 0 for output)
    input_major: bool = False  # first weight matrix stored (u_0, u_1): one row per INPUT (sparse=True)

    @property
    def n_layers(self) -> int:
        """Number of weight matrices (hidden layers + output)."""
        return len(self.units) - 1

    def rows(self, l: int) -> int:
        """Stored rows of weight matrix l (1-based receiving layer)."""
        maxout = self.hidden_code == MAXOUT and l < self.n_layers
        return self.units[l] * (2 if maxout else 1)

    @property
    def w_offsets(self) -> np.ndarray:
        off = [0]
        for l in range(1, self.n_layers + 1):
            off.append(off[-1] + self.rows(l) * self.units[l - 1])
        return np.asarray(off, dtype=np.int64)

    @property
    def b_offsets(self) -> np.ndarray:
        off = [0]
        for l in range(1, self.n_layers + 1):
            off.append(off[-1] + self.rows(l))
        return np.asarray(off, dtype=np.int64)

    @property
    def n_weights(self) -> int:
        return int(self.w_offsets[-1])

    @property
    def n_biases(self) -> int:
        return int(self.b_offsets[-1])

    @property
    def state_size(self) -> int:
        return 3 * self.n_weights + 3 * self.n_biases

    def act_codes(self) -> np.ndarray:
        """Per-layer code array for the kernels: index 0 unused, 1..L hidden, L+1 output."""
        return np.asarray([0] + [self.hidden_code] * (self.n_layers - 1) + [self.output_code], dtype=np.int64)

    def dropout_array(self) -> np.ndarray:
        return np.asarray(self.dropout, dtype=np.float32)

    def units_array(self) -> np.ndarray:
        return np.asarray(self.units, dtype=np.int64)

    def kernel_arrays(self) -> tuple:
        """The kernels' ``net`` tuple: (units, weight offsets, bias offsets, activation codes, dropout)."""
        return self.units_array(), self.w_offsets, self.b_offsets, self.act_codes(), self.dropout_array()

    def split(self, state: np.ndarray):
        """Views (W, B, S1W, S2W, S1B, S2B) into a flat state vector (no copies)."""
        nw, nb = self.n_weights, self.n_biases
        cuts = np.cumsum([nw, nb, nw, nw, nb])
        return tuple(np.split(state, cuts))

    def weight_matrix(self, state: np.ndarray, l: int) -> np.ndarray:
        """Weight matrix of receiving layer l (1-based) as a (rows, u_{l-1}) view."""
        W = self.split(state)[0]
        o = self.w_offsets
        if l == 1 and self.input_major:
            return W[o[0]:o[1]].reshape(self.units[0], self.rows(1)).T
        return W[o[l - 1]:o[l]].reshape(self.rows(l), self.units[l - 1])

    def bias_vector(self, state: np.ndarray, l: int) -> np.ndarray:
        B = self.split(state)[1]
        o = self.b_offsets
        return B[o[l - 1]:o[l]]

    def to_dict(self) -> dict:
        return {"units": list(self.units), "hidden_code": self.hidden_code, "output_code": self.output_code,
                "dropout": list(self.dropout), "input_major": self.input_major}

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkLayout":
        return cls(units=tuple(d["units"]), hidden_code=int(d["hidden_code"]), output_code=int(d["output_code"]),
                   dropout=tuple(float(x) for x in d["dropout"]), input_major=bool(d.get("input_major", False)))


def build_layout(n_inputs: int, hidden, hidden_activation: str, n_outputs: int, classifier: bool,
                 input_dropout: float, hidden_dropout, input_major: bool = False,
                 autoencoder: bool = False) -> NetworkLayout:
    """``input_major`` (sparse per-sample training): store the first matrix one row per input, so a
    sample touches only its non-zero inputs' rows. Tanh/Rectifier hidden layers only.
    ``autoencoder``: the output layer (as wide as the input) uses the hidden activation, as H2O."""
    units = (int(n_inputs), *[int(h) for h in hidden], int(n_outputs))
    drop = (float(input_dropout), *[float(r) for r in hidden_dropout], 0.0)
    code = HIDDEN_CODES[hidden_activation]
    if input_major and (not hidden or code == MAXOUT):
        raise ValueError("an input-major first layer needs a Tanh or Rectifier hidden layer")
    if autoencoder and code == MAXOUT:
        raise ValueError("an autoencoder's output layer takes the hidden activation: Tanh or Rectifier, not Maxout")
    output = code if autoencoder else SOFTMAX if classifier else LINEAR
    return NetworkLayout(units=units, hidden_code=code, output_code=output, dropout=drop, input_major=bool(input_major))


def initial_state(layout: NetworkLayout, seed: int, distribution: str = "UniformAdaptive",
                  scale: float = 1.0) -> np.ndarray:
    """A fresh flat state: weights drawn as H2O does (one RNG per matrix), biases per activation, zero
    optimizer state."""
    state = np.zeros(layout.state_size, dtype=np.float32)
    n_layers = layout.n_layers
    for l in range(1, n_layers + 1):
        rng = np.random.default_rng([seed & 0xFFFFFFFF, 0xBAD5EED, l])
        fan_in, fan_out = layout.units[l - 1], layout.units[l]
        shape = (layout.rows(l), fan_in)
        if distribution == "UniformAdaptive":
            r = np.sqrt(6.0 / (fan_in + fan_out))
            if l == n_layers and layout.output_code == SOFTMAX:
                r *= 4.0  # H2O: classifier output layer drawn from U(-4r, 4r)
            w = rng.uniform(-r, r, size=shape)
        elif distribution == "Uniform":
            w = rng.uniform(-scale, scale, size=shape)
        elif distribution == "Normal":
            w = rng.normal(0.0, scale, size=shape)
        else:
            raise ValueError(f"initial_weight_distribution={distribution!r}: expected one of "
                             "['UniformAdaptive', 'Uniform', 'Normal']")
        layout.weight_matrix(state, l)[:] = w
        b = layout.bias_vector(state, l)
        if l < n_layers and layout.hidden_code in (RECTIFIER, MAXOUT):
            b[:] = 0.5 if l == 1 else 1.0  # H2O: keep rectifiers alive at the start
    return state


def set_initial_values(layout: NetworkLayout, state: np.ndarray, weights, biases) -> None:
    """initial_weights / initial_biases (H2O §4.3): each layer given both a weight matrix (shaped as
    ``weight_matrix`` returns it) and a bias vector starts from them instead of its random draw.
    A length, a shape or a pair that does not fit this network is a ValueError naming it (H2O
    silently keeps the random draw of a layer given only one of the two)."""
    n = layout.n_layers
    given = {"initial_weights": weights, "initial_biases": biases}
    for name, values in given.items():
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries; this network has {n} layers of weights "
                             f"(units {list(layout.units)}): one entry (or None) per layer, input side first")
    for l in range(1, n + 1):
        w = None if weights is None else weights[l - 1]
        b = None if biases is None else biases[l - 1]
        if (w is None) != (b is None):
            given_in, missing = (("initial_weights", "initial_biases") if b is None
                                 else ("initial_biases", "initial_weights"))
            raise ValueError(f"layer {l} is given in {given_in} but not in {missing}: give a layer's weights "
                             "and biases together, or neither")
        if w is None:
            continue
        W, B = layout.weight_matrix(state, l), layout.bias_vector(state, l)
        for name, arr, target in (("initial_weights", w, W), ("initial_biases", b, B)):
            arr = np.asarray(arr, dtype=np.float64)
            if arr.shape != target.shape:
                raise ValueError(f"{name}[{l - 1}] has shape {arr.shape}; layer {l} of this network (units "
                                 f"{list(layout.units)}) needs {target.shape}, as model.{name[8:]}({l}) returns it")
            target[:] = arr
