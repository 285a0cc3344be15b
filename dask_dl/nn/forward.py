"""Scoring-mode forward pass (predict, metrics, deep features) with BLAS matrix products.

Scoring uses H2O's non-inverted dropout rule: no masks, each dropout hidden layer's output is
multiplied by (1 - ratio); the input layer is never rescaled.
"""
from __future__ import annotations

import numpy as np

from .network import MAXOUT, RECTIFIER, SOFTMAX, TANH, NetworkLayout

CHUNK_ROWS = 1024  # rows per pass through the layers: each layer's activations stay in L2


def _hidden_inplace(layout: NetworkLayout, Z: np.ndarray, l: int) -> np.ndarray:
    """Layer l's activations from its pre-activations Z, in Z's memory where the shape allows."""
    code = layout.hidden_code
    if code == TANH:
        A = np.tanh(Z, out=Z)
    elif code == RECTIFIER:
        A = np.maximum(Z, 0.0, out=Z)
    elif code == MAXOUT:
        A = np.maximum(Z[:, 0::2], Z[:, 1::2])
    else:
        raise ValueError(f"unknown hidden activation code {code}")
    ratio = layout.dropout[l]
    if ratio:
        A *= A.dtype.type(1.0 - ratio)
    return A


def forward(layout: NetworkLayout, state: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The output layer for every row of X, in scoring mode: softmax probabilities (classifier) or
    the linear pre-activation (regression, link space). Chunks of CHUNK_ROWS rows run through the
    layers in preallocated buffers, every elementwise step in place (no temporaries)."""
    n_layers = layout.n_layers
    X = np.asarray(X, dtype=state.dtype)
    out = np.empty((X.shape[0], layout.units[n_layers]), dtype=state.dtype)
    mats = [(layout.weight_matrix(state, l), layout.bias_vector(state, l)) for l in range(1, n_layers + 1)]
    rows = min(CHUNK_ROWS, X.shape[0])
    bufs = [np.empty((rows, W.shape[0]), dtype=state.dtype) for W, _ in mats]
    for s in range(0, X.shape[0], CHUNK_ROWS):
        A = X[s:s + CHUNK_ROWS]
        for l, ((W, b), buf) in enumerate(zip(mats, bufs), start=1):
            Z = np.matmul(A, W.T, out=buf[:A.shape[0]])
            Z += b
            A = _layer_inplace(layout, Z, l)
        out[s:s + A.shape[0]] = A
    return out


def _layer_inplace(layout: NetworkLayout, Z: np.ndarray, l: int) -> np.ndarray:
    """Layer l's activations from its pre-activations Z: a hidden layer's (``_hidden_inplace``), or
    the output's: softmax, an autoencoder's hidden activation, or Z itself (linear)."""
    if l < layout.n_layers:
        return _hidden_inplace(layout, Z, l)
    code = layout.output_code
    if code == SOFTMAX:
        Z -= Z.max(axis=1, keepdims=True)
        np.exp(Z, out=Z)
        Z /= Z.sum(axis=1, keepdims=True)
        return Z
    if code == TANH:  # an autoencoder's output takes the hidden activation
        return np.tanh(Z, out=Z)
    if code == RECTIFIER:
        return np.maximum(Z, 0.0, out=Z)
    return Z


def check_hidden_layer(layout: NetworkLayout, layer) -> None:
    """``layer`` must be the 0-based index of one of the network's hidden layers."""
    n_hidden = layout.n_layers - 1
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < n_hidden:
        raise ValueError(f"layer={layer!r}: this network has {n_hidden} hidden layer(s), numbered 0 to "
                         f"{n_hidden - 1}")


def hidden_activations(layout: NetworkLayout, state: np.ndarray, X: np.ndarray, layer: int) -> np.ndarray:
    """H2O's deep features: hidden layer ``layer``'s (0-based) activations for every row of X, in
    scoring mode (dropout layers scaled by 1 - ratio)."""
    check_hidden_layer(layout, layer)
    X = np.asarray(X, dtype=state.dtype)
    out = np.empty((X.shape[0], layout.units[layer + 1]), dtype=state.dtype)
    mats = [(layout.weight_matrix(state, l), layout.bias_vector(state, l)) for l in range(1, layer + 2)]
    for s in range(0, X.shape[0], CHUNK_ROWS):
        A = X[s:s + CHUNK_ROWS]
        for l, (W, b) in enumerate(mats, start=1):
            Z = A @ W.T
            Z += b
            A = _hidden_inplace(layout, Z, l)
        out[s:s + A.shape[0]] = A
    return out


def decode(layout: NetworkLayout, state: np.ndarray, H: np.ndarray, layer: int) -> np.ndarray:
    """The rest of the forward pass from hidden layer ``layer``'s (0-based) activations ``H`` (as
    ``hidden_activations`` gives them) to the output layer, in scoring mode."""
    check_hidden_layer(layout, layer)
    A = np.asarray(H, dtype=state.dtype)
    if A.ndim != 2 or A.shape[1] != layout.units[layer + 1]:
        raise ValueError(f"expected deep features of shape (rows, {layout.units[layer + 1]}) for layer {layer}, "
                         f"got {A.shape}")
    for l in range(layer + 2, layout.n_layers + 1):
        Z = A @ layout.weight_matrix(state, l).T
        Z += layout.bias_vector(state, l)
        A = _layer_inplace(layout, Z, l)
    return A
