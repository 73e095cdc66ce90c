"""The DARTS mixed-cell language model (DESIGN §3, search-time variant) over the C core.

Every node reads every earlier node through its one matrix W_i, and mixes the candidates of
the four activations (plus ``none``) with the softmax of its edges' architecture weights
``alpha`` (shape ``(n(n+1)/2, 5)``, rows in the order of :meth:`Arch.to_alpha`, columns
:data:`MIXED_OPS`); s0 and every node are batch-normalised without affine parameters, as in
the reference search model. Embedding, W0, decoder, dropouts and SGD are the discrete
model's (the same C core), so with ``alpha`` one-hot at a large scale and ``batch_norm=False``
the mixed model computes exactly :class:`CellLM` of that architecture.

>>> import nas_eval
>>> from nas_eval.engine import MixedLM
>>> model = MixedLM(nas_eval.SearchSpace(2), vocab_size=50, hidden_size=16, seed=0)
>>> model.alpha.shape
(3, 5)
>>> sorted(model.parameters())
['W0', 'W1', 'W2', 'decoder_bias', 'embedding']
"""
import math
import warnings

import numpy as np

from ..space import OPS, Arch, SearchSpace
from .model import _LMBase, _check_int, _check_rate, _segment

MIXED_OPS = ("none",) + OPS  # the reference's PRIMITIVES, in its order


def edges(nodes):
    """The edges ``(i, j)`` (j -> i) in the order of the rows of alpha."""
    return [(i, j) for i in range(1, nodes + 1) for j in range(i)]


def derive(prob):
    """The DARTS genotype of edge probabilities ``prob`` (E, 5) (DESIGN §6, the reference's
    ``genotype()``): for node i, the predecessor whose best non-``none`` probability is
    highest, then that edge's most probable non-``none`` op (first on ties)."""
    prob = np.asarray(prob, dtype=np.float64)
    n = int((math.isqrt(8 * len(prob) + 1) - 1) // 2)
    if prob.ndim != 2 or prob.shape[1] != len(MIXED_OPS) or n * (n + 1) // 2 != len(prob):
        raise ValueError(f"prob must have shape (n(n+1)/2, {len(MIXED_OPS)}), got {prob.shape}")
    preds, ops = [], []
    for i in range(1, n + 1):
        block = prob[i * (i - 1) // 2: i * (i + 1) // 2, 1:]
        j = int(np.argmax(block.max(axis=1)))
        preds.append(j)
        ops.append(OPS[int(np.argmax(block[j]))])
    return Arch(preds, ops)


def arch_alpha(arch, scale=1.0):
    """alpha of ``arch`` over the five ops: ``scale`` on each node's op of its chosen edge,
    ``scale`` on ``none`` of every other edge; softmax(alpha) tends to the architecture as
    scale grows."""
    n = arch.n_nodes
    alpha = np.zeros((n * (n + 1) // 2, len(MIXED_OPS)))
    for e, (i, j) in enumerate(edges(n)):
        if arch.preds[i - 1] == j:
            alpha[e, MIXED_OPS.index(arch.ops[i - 1])] = scale
        else:
            alpha[e, 0] = scale
    return alpha


class MixedLM(_LMBase):
    """The continuous relaxation of ``space``'s cell as a language model: the core model of
    :class:`CellLM` (the core's ``MixedModel``, the same C ``LM`` with the mixed cell) and its
    Python base, so training, evaluation, masks, averaging and parameters are :class:`CellLM`'s.

    Parameters are named as :class:`CellLM`'s (``embedding``, ``W0``, ``W1``..``Wn``,
    ``decoder_bias``); ``alpha`` starts at 1e-3·N(0, 1) from ``seed``. Dropouts use the
    AWD/DARTS names. ``batch_norm`` (default, the reference) normalises s0 and every node
    with batch statistics when training or differentiating and with running statistics
    (momentum 0.1) in :meth:`loss`.
    """

    _core_type = "MixedModel"
    _grad_options = {"alpha_grad": True}

    def __init__(self, space, vocab_size, hidden_size, seed=0, batch_norm=True, **dropouts):
        if isinstance(space, (int, np.integer)) and not isinstance(space, bool):
            space = SearchSpace(int(space))
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
        if space.fixed or space.ops != OPS:
            raise ValueError("the mixed cell relaxes the full space: no fixed nodes and ops "
                             f"{OPS}, got {space!r}")
        _check_int("seed", seed, 0)
        if not isinstance(batch_norm, (bool, np.bool_)):
            raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
        self.space, self.n_nodes, self.batch_norm = space, space.n_nodes, bool(batch_norm)
        n = self.n_nodes
        super().__init__(vocab_size, hidden_size, n, n, seed, "mean", dropouts, batch_norm=self.batch_norm)
        for i in range(1, n + 1):
            self._slots[f"W{i}"] = self._mat_slot(i - 1)
        order = ["embedding", "W0"] + [f"W{i}" for i in range(1, n + 1)] + ["decoder_bias"]
        self._slots = {name: self._slots[name] for name in order}
        self.edges = edges(n)
        self._counts = {"supernet_steps": 0, "train_tokens": 0, "valid_tokens": 0, "alpha_steps": 0}

    def __repr__(self):
        return (f"MixedLM(n_nodes={self.n_nodes}, vocab_size={self.vocab_size}, "
                f"hidden_size={self.hidden_size}, seed={self.seed}, batch_norm={self.batch_norm})")

    def _cell(self, arch):
        if arch is not None:
            raise ValueError("a MixedLM trains every edge at once: arch must be None")
        return None, 0  # the core's own cell of every edge

    # --- architecture weights -----------------------------------------------------------------
    @property
    def alpha(self):
        """A copy of the architecture weights, (n(n+1)/2, 5) float64."""
        return self._lm.state("alpha").reshape(-1, len(MIXED_OPS)).copy()

    @alpha.setter
    def alpha(self, value):
        value = np.asarray(value, dtype=np.float64)
        shape = (len(self.edges), len(MIXED_OPS))
        if value.shape != shape:
            raise ValueError(f"alpha must have shape {shape}, got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError("alpha holds non-finite values")
        self._lm.state("alpha")[:] = value.ravel()
        self._lm.refresh()

    def probabilities(self):
        """softmax(alpha) per edge, (n(n+1)/2, 5)."""
        return self._lm.state("prob").reshape(-1, len(MIXED_OPS)).copy()

    def derive(self):
        """The architecture DARTS derives from the current alpha (see :func:`derive`)."""
        return derive(self.probabilities())

    def beliefs(self, archs):
        """Product of each architecture's edge op probabilities (its chosen edge and op
        per node), the policy's preference over ``archs``."""
        prob = self.probabilities()
        out = np.empty(len(archs))
        for k, a in enumerate(archs):
            rows = [i * (i - 1) // 2 + p for i, p in enumerate(a.preds, 1)]
            cols = [MIXED_OPS.index(op) for op in a.ops]
            out[k] = float(np.prod(prob[rows, cols]))
        return out

    # --- training and evaluation ----------------------------------------------------------------
    def train_step(self, inputs, targets, hidden=None, *, lr, clip=0.25, weight_decay=0.0, tar=0.0,
                   ar=0.0, arch=None, asgd=False):
        """One SGD step of the weights (:meth:`CellLM.train_step`) with batch statistics (the
        caller scales ``lr`` by the segment length); ``arch`` must be None (the mixed cell
        holds every architecture at once)."""
        result = super().train_step(inputs, targets, hidden, lr=lr, clip=clip, weight_decay=weight_decay,
                                    tar=tar, ar=ar, arch=arch, asgd=asgd)
        self._counts["supernet_steps"] += 1
        self._counts["train_tokens"] += result.tokens
        return result

    def gradients(self):
        """The weight gradients of the last backward pass keyed like the parameters, and
        ``alpha``: d objective / d alpha, (n(n+1)/2, 5) float64."""
        return {**super().gradients(), "alpha": self._lm.state("alpha_grad").reshape(-1, len(MIXED_OPS)).copy()}

    def loss_and_grads(self, inputs, targets, hidden=None, tar=0.0, ar=0.0, train=False):
        """Deprecated: :meth:`loss_and_grad` (whose gradients hold ``alpha``); returns
        ``(loss, weight_grads, dalpha, hidden)``."""
        warnings.warn("MixedLM.loss_and_grads is deprecated; use loss_and_grad() (the alpha gradient is "
                      "grads['alpha'])", DeprecationWarning, stacklevel=2)
        loss, grads, h = self.loss_and_grad(inputs, targets, hidden, tar=tar, ar=ar, train=train)
        return loss, grads, grads.pop("alpha"), h

    def loss(self, tokens, batch_size=10, bptt=35):
        """Mean cross-entropy (nats) over a token stream: the DARTS evaluation protocol, no
        dropout, batch normalisation with the running statistics."""
        loss = self._loss(self._cell(None), tokens, batch_size, bptt)
        self._counts["valid_tokens"] += (len(tokens) // batch_size - 1) * batch_size
        return loss

    # --- the architecture step ------------------------------------------------------------------
    def architect_cache(self):
        """A fresh cache for ``alpha_step(cache=...)``, the paper code's cached unrolled model
        (csrc/darts.h): float64 [alpha0 = the current alpha | alpha-gradient sum | v sum]."""
        cache = np.zeros(2 * self.alpha.size + self._lm.layout()["total"])
        cache[: self.alpha.size] = self.alpha.ravel()
        return cache

    def _alpha_call(self, train, valid, order, eta, clip, weight_decay, apply, per_pass=False, cache=None,
                    accumulate=False, bn_every_pass=False, **adam):
        if order not in (1, 2) or isinstance(order, bool):
            raise ValueError(f"order must be 1 or 2, got {order!r}")
        adam.update(per_pass=bool(per_pass), cache=cache, accumulate=bool(accumulate),
                    bn_every_pass=bool(bn_every_pass))
        (ti, tt, th), (vi, vt, vh) = train, valid
        ti, tt = _segment(ti, tt, "train_")
        vi, vt = _segment(vi, vt, "valid_")
        out = self._lm.alpha_step(ti, tt, th, vi, vt, vh, order=int(order), eta=_check_rate("eta", eta),
                                  clip=_check_rate("clip", clip), wd=_check_rate("weight_decay", weight_decay),
                                  apply=apply, **adam)
        if apply:
            self._counts["alpha_steps"] += 1
        self._counts["valid_tokens"] += out["tokens"]
        if order == 2:  # the virtual step and the two Hessian-vector passes see the batch too
            self._counts["train_tokens"] += 3 * ti.size
        return out

    def alpha_step(self, train, valid, *, order, eta, clip, weight_decay, lr=3e-3, betas=(0.9, 0.999),
                   eps=1e-8, alpha_weight_decay=1e-3, r=0.01, per_pass=False, cache=None, accumulate=False,
                   bn_every_pass=False):
        """One DARTS architecture step (the reference's ``Architect.step``): the gradient of
        the validation loss on ``valid = (inputs, targets, hidden)`` with respect to alpha —
        first order at the current weights, or (``order=2``) at the weights of one virtual
        SGD step on ``train = (inputs, targets, hidden)`` with learning rate ``eta`` (the weight
        step's, scaled by length), ``clip`` and ``weight_decay``, minus the finite-difference
        Hessian-vector term (radius ``r / ||v||``) — then one Adam step on alpha (``lr``,
        ``betas``, ``eps``, L2 ``alpha_weight_decay``). The step counter is unchanged.
        Returns (valid_loss_sum, tokens, new_valid_hidden); alpha is left unchanged when a
        loss or gradient was not finite (``self.last_alpha_ok`` is then False).
        ``per_pass``: each pass draws its own dropout masks (the reference), else the training-
        batch passes reuse this step's. ``cache`` (:meth:`architect_cache`, order 2): the paper
        code's cached unrolled model; ``accumulate``: its alpha gradient sums over steps.
        ``bn_every_pass`` (order 2): the two Hessian-vector passes, at w +- R v, update the
        batch-norm running statistics too, as every train-mode pass of the reference's model
        did; else only the virtual step's pass (at the model's own weights) does."""
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        out = self._alpha_call(train, valid, order, eta, clip, weight_decay, True, lr=float(lr),
                               beta1=float(betas[0]), beta2=float(betas[1]), eps=float(eps),
                               alpha_wd=float(alpha_weight_decay), r=float(r), per_pass=per_pass, cache=cache,
                               accumulate=accumulate, bn_every_pass=bn_every_pass)
        self.last_alpha_ok = out["ok"]
        return out["valid_loss_sum"], out["tokens"], out["valid_hidden"]

    def alpha_gradient(self, train, valid, *, order, eta, clip, weight_decay, r=0.01, per_pass=False, cache=None,
                       accumulate=False, bn_every_pass=False):
        """The gradient :meth:`alpha_step` would apply, without applying it (the passes update
        the running statistics as :meth:`alpha_step`'s do)."""
        out = self._alpha_call(train, valid, order, eta, clip, weight_decay, False, r=float(r), per_pass=per_pass,
                               cache=cache, accumulate=accumulate, bn_every_pass=bn_every_pass)
        if not out["ok"]:
            raise FloatingPointError("non-finite loss or gradient in the architecture step")
        return self._lm.state("alpha_grad").reshape(-1, len(MIXED_OPS)).copy()

    def budget(self):
        """Counters: weight steps, training and validation tokens processed, alpha steps."""
        return dict(self._counts)

    # --- checkpoints ----------------------------------------------------------------------
    def state(self):
        """Everything needed to continue bitwise identically: weights, alpha, Adam state,
        running statistics, step counter and budget counters."""
        c = self._lm
        return {"params": c.arena("params").copy(), "alpha": c.state("alpha").copy(),
                "adam_m": c.state("adam_m").copy(), "adam_v": c.state("adam_v").copy(),
                "running_mean": c.state("running_mean").copy(), "running_var": c.state("running_var").copy(),
                "adam_t": int(c.adam_t), "step_count": int(c.step_count), "counts": dict(self._counts)}

    def restore(self, state):
        c = self._lm
        for name, arr in (("params", c.arena("params")), ("alpha", c.state("alpha")),
                          ("adam_m", c.state("adam_m")), ("adam_v", c.state("adam_v")),
                          ("running_mean", c.state("running_mean")), ("running_var", c.state("running_var"))):
            value = np.asarray(state[name])
            if value.shape != arr.shape:
                raise ValueError(f"state[{name!r}] has shape {value.shape}, expected {arr.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state[{name!r}] holds non-finite values")
        for name, arr in (("params", c.arena("params")), ("alpha", c.state("alpha")),
                          ("adam_m", c.state("adam_m")), ("adam_v", c.state("adam_v")),
                          ("running_mean", c.state("running_mean")), ("running_var", c.state("running_var"))):
            arr[:] = state[name]
        c.refresh()
        c.adam_t = int(state["adam_t"])
        c.step_count = int(state["step_count"])
        self._counts = dict(state["counts"])
