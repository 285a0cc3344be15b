"""The kernels' code tables, each stated once: optimizer and output-error codes, the float (HP_*)
and integer (IP_*) parameter slots, and ``KernelSettings``, the resolved config mapped onto them.

numba sees these module constants as compile-time literals, so a kernel's ``opt == ADADELTA``
costs nothing. Names come from ``dask_dl.names``; this module maps each name to its code.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import names

# optimizer codes (names.OPTIMIZER_STEPS)
ADADELTA, SGD, MOMENTUM, NESTEROV, ADAM = 0, 1, 2, 3, 4
OPTIMIZER_CODES = {"ADADELTA": ADADELTA, "SGD": SGD, "MOMENTUM": MOMENTUM, "NESTEROV": NESTEROV, "ADAM": ADAM}

# output error codes (names.OUTPUT_ERRORS): classification, then regression (the honoured loss)
CROSS_ENTROPY, QUADRATIC_SOFTMAX = 0, 1
GAUSSIAN, LAPLACE, QUANTILE, HUBER, POISSON, GAMMA, TWEEDIE = 10, 11, 12, 13, 14, 15, 16
OUTPUT_ERROR_CODES = {"CrossEntropy": CROSS_ENTROPY, "QuadraticSoftmax": QUADRATIC_SOFTMAX, "Gaussian": GAUSSIAN,
                      "Laplace": LAPLACE, "Quantile": QUANTILE, "Huber": HUBER, "Poisson": POISSON, "Gamma": GAMMA,
                      "Tweedie": TWEEDIE}

assert tuple(OPTIMIZER_CODES) == names.OPTIMIZER_STEPS and tuple(OUTPUT_ERROR_CODES) == names.OUTPUT_ERRORS

# float hyper-parameter slots (the kernels' ``hp`` vector)
HP_RHO, HP_EPS, HP_RATE, HP_ANNEAL, HP_DECAY = 0, 1, 2, 3, 4
HP_MOM_START, HP_MOM_RAMP, HP_MOM_STABLE, HP_L1, HP_L2 = 5, 6, 7, 8, 9
HP_MAXW2, HP_QALPHA, HP_TPOWER, HP_HUBER, HP_N0, HP_NSTEP, HP_OMR, HP_EA = 10, 11, 12, 13, 14, 15, 16, 17
# Adam: beta1 and rows per update (> 0 only for Adam); beta2 / 1 - beta2 ride in HP_RHO / HP_OMR,
# the step size in HP_RATE, epsilon in HP_EPS
HP_B1, HP_ADAM_BS = 18, 19
# sparse autoencoders: sparsity_beta and average_activation (the target mean activation)
HP_SPARSITY, HP_AVG_ACT = 20, 21
N_HP = 22

# integer slots (the kernels' ``ip`` vector); IP_CAPS_W2: max_w2 is on (TrainingConfig.caps_weights)
IP_OPT, IP_FAST, IP_LOSS, IP_SEED, IP_BATCH, IP_INPUT_MAJOR, IP_CAPS_W2 = 0, 1, 2, 3, 4, 5, 6
IP_AUTOENCODER = 7  # the output reconstructs the row's inputs (activations.autoencoder_error)
N_IP = 8

DROPPED = 2  # unit-state value of a hidden unit dropped for this row


@dataclass(frozen=True)
class KernelSettings:
    """Everything the kernels need besides data and state, built once per fit."""
    hp: np.ndarray       # float HP_* slots
    opt: int             # optimizer code
    fast: bool           # fast_mode
    loss: int            # output error code
    batch: int = 1       # rows per update (> 1: the BLAS-3 mini-batch kernel)
    thread_copies: bool = False  # per sample: each thread trains its own copy, averaged
    caps_weights: bool = False   # max_w2 rescales a unit's incoming weights
    autoencoder: bool = False    # the output reconstructs the input row

    def with_huber_delta(self, delta: float) -> "KernelSettings":
        """A copy whose Huber loss uses ``delta`` (re-estimated from the residuals at scoring)."""
        hp = self.hp.copy()
        hp[HP_HUBER] = delta
        return dataclasses.replace(self, hp=hp)

    def int_params(self, seed: int, input_major: bool = False) -> np.ndarray:
        """The kernels' integer vector for one thread's call."""
        return int_params(self.opt, self.fast, self.loss, seed, batch=self.batch, input_major=input_major,
                          caps_weights=self.caps_weights, autoencoder=self.autoencoder)


def int_params(opt: int, fast: bool, loss: int, seed: int, batch: int = 1, input_major: bool = False,
               caps_weights: bool = False, autoencoder: bool = False) -> np.ndarray:
    """The kernels' integer parameter vector (slots IP_*)."""
    ip = np.zeros(N_IP, dtype=np.int64)
    ip[IP_OPT], ip[IP_FAST], ip[IP_LOSS], ip[IP_SEED] = opt, int(fast), loss, seed
    ip[IP_BATCH], ip[IP_INPUT_MAJOR], ip[IP_CAPS_W2] = batch, int(input_major), int(caps_weights)
    ip[IP_AUTOENCODER] = int(autoencoder)
    return ip


def settings_from_config(cfg) -> KernelSettings:
    """Map a resolved TrainingConfig onto kernel codes and slots (its decisions are fields of
    ``cfg``; only plain numeric values are read from ``cfg.params``)."""
    opt = OPTIMIZER_CODES[cfg.optimizer_step]
    return KernelSettings(hp=_float_slots(cfg.params, opt, cfg.mini_batch), opt=opt,
                          fast=bool(cfg.params["fast_mode"]), loss=OUTPUT_ERROR_CODES[cfg.output_error],
                          batch=int(cfg.mini_batch), thread_copies=bool(cfg.thread_copies),
                          caps_weights=bool(cfg.caps_weights), autoencoder=cfg.kind == "autoencoder")


# the HP_* slots that carry a parameter's value as it is
_SLOT_PARAMS = {HP_RHO: "rho", HP_EPS: "epsilon", HP_RATE: "rate", HP_ANNEAL: "rate_annealing",
                HP_DECAY: "rate_decay", HP_MOM_START: "momentum_start", HP_MOM_RAMP: "momentum_ramp",
                HP_MOM_STABLE: "momentum_stable", HP_L1: "l1", HP_L2: "l2", HP_MAXW2: "max_w2",
                HP_QALPHA: "quantile_alpha", HP_TPOWER: "tweedie_power", HP_SPARSITY: "sparsity_beta",
                HP_AVG_ACT: "average_activation"}
# Adam's: beta2 takes rho's slots; the kernels fold the bias corrections in (optimizers._schedule)
_ADAM_SLOT_PARAMS = {HP_RHO: "adam_beta2", HP_RATE: "adam_rate", HP_B1: "adam_beta1"}


def _float_slots(p: dict, opt: int, mini_batch: int) -> np.ndarray:
    """The HP_* vector from the numeric parameters (float64; train_shard casts it to the state's dtype)."""
    hp = np.zeros(N_HP, dtype=np.float64)
    for slot, name in {**_SLOT_PARAMS, **(_ADAM_SLOT_PARAMS if opt == ADAM else {})}.items():
        hp[slot] = p[name]
    hp[HP_OMR] = 1.0 - hp[HP_RHO]
    hp[HP_HUBER] = 1.0
    if opt == ADAM:
        hp[HP_ADAM_BS] = float(mini_batch)
    return hp
