"""NAO's encoder-predictor-decoder (the C core's ``NAO``) over the architectures of a space.

An architecture of ``n`` nodes is the token sequence ``pred_i + 1, op_i + n + 1`` for
i = 1..n (0 is the start symbol). The encoder maps it to ``n`` unit-norm contexts (one per
node, shape ``(n, hidden_size)``); the architecture embedding is the normalised mean of
the contexts; the predictor maps the embedding to a score in (0, 1); the decoder rebuilds
the tokens from the contexts. NAO's search moves the contexts of good architectures along
the predictor's gradient and decodes the result (:meth:`NAOController.propose`).

Scores follow the reference (NAO-WS, PTB): min-max normalised validation losses, so
**lower is better** and the embeddings move *down* the predictor's gradient.

>>> import numpy as np, nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> nao = NAOController(space, emb_size=8, hidden_size=16, mlp_layers=1, mlp_hidden_size=8,
...                     lr=3e-3, batch_size=16, seed=0)
>>> archs = list(space)
>>> stats = nao.fit(archs, np.linspace(0, 1, len(archs)), epochs=150)
>>> nao.decode(nao.encode(archs)) == archs
True
"""
import numpy as np

from ..space import Arch, SearchSpace


def normalise_scores(losses):
    """Min-max normalise validation losses to [0, 1], 0 = best (the reference's targets).

    Non-finite losses (diverged architectures) become 1, the worst; when all finite losses
    are equal every finite one becomes 0.
    """
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {losses.shape}")
    finite = np.isfinite(losses)
    out = np.ones_like(losses)
    if finite.any():
        lo, hi = losses[finite].min(), losses[finite].max()
        out[finite] = (losses[finite] - lo) / (hi - lo) if hi > lo else 0.0
    return out


class NAOController:
    """NAO's controller for the architectures of ``space``, in float64 in the C core.

    Sizes and optimiser default to the reference PTB search (NAO-WS ``train_search.sh``):
    token embedding 48 (two tokens per LSTM step: input 96), LSTM 96, predictor 4 ReLU
    layers of 200, encoder dropout 0.1, Adam lr 1e-3 with L2 weight decay 1e-4, gradient
    norm clipped at 5, loss ``trade_off * MSE + (1 - trade_off) * NLL`` with 0.8, mini-batch
    100, reshuffled every epoch. Deterministic for a ``seed``. ``drop_partial``: every epoch
    of :meth:`fit` (after its shuffle) and :meth:`propose` use full mini-batches of
    ``batch_size`` only, as the reference's batchify did; the last, partial one is dropped.
    """

    def __init__(self, space, *, emb_size=48, hidden_size=96, mlp_layers=4, mlp_hidden_size=200,
                 dropout=0.1, lr=1e-3, weight_decay=1e-4, max_grad_norm=5.0, trade_off=0.8,
                 batch_size=100, shuffle=True, seed=0, drop_partial=False):
        from .native import core

        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.space = space
        self.n = space.n_nodes
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_partial = bool(drop_partial)
        self.seed = int(seed) % 2**64
        self._drops = 0   # epochs shuffled in Python (drop_partial), keys stream STREAM_NAO_DROP
        self.optim = dict(lr=float(lr), weight_decay=float(weight_decay),
                          max_grad_norm=float(max_grad_norm), trade_off=float(trade_off))
        # check the optimiser settings now rather than at the first fit
        for key, value in self.optim.items():
            if not np.isfinite(value) or value < 0 or (key == "trade_off" and value > 1):
                allowed = "[0, 1]" if key == "trade_off" else ">= 0"
                raise ValueError(f"{key} must be finite and {allowed}, got {value!r}")
        self._model = core.NAO(self.n, ops=len(space.ops), emb_size=emb_size, hidden_size=hidden_size,
                              mlp_layers=mlp_layers, mlp_hidden_size=mlp_hidden_size, dropout=dropout,
                              seed=int(seed) % 2**64, max_batch=max(self.batch_size, 256))
        self.steps = 0

    def __repr__(self):
        s = self._model.shape
        return (f"NAOController({self.space!r}, emb_size={s['emb_size']}, hidden_size={s['hidden_size']}, "
                f"mlp_layers={s['mlp_layers']}, mlp_hidden_size={s['mlp_hidden_size']})")

    @property
    def hidden_size(self):
        return self._model.shape["hidden_size"]

    # -- tokens ------------------------------------------------------------------------------

    def tokens(self, archs):
        """``(N, 2n)`` int64 tokens of ``archs`` (Arch objects or their strings)."""
        archs = [Arch.parse(a, self.space.ops) if isinstance(a, str) else a for a in archs]
        if not archs:
            raise ValueError("archs must not be empty")
        out = np.empty((len(archs), 2 * self.n), dtype=np.int64)
        ops = self.space.ops
        for r, a in enumerate(archs):
            if not isinstance(a, Arch) or a.n_nodes != self.n:
                raise ValueError(f"archs[{r}] = {a!r} is not an architecture of {self.space!r}")
            out[r, 0::2] = np.asarray(a.preds) + 1
            try:
                out[r, 1::2] = [ops.index(op) + self.n + 1 for op in a.ops]
            except ValueError:
                raise ValueError(f"archs[{r}] = {a!r} uses an op outside {ops}") from None
        return out

    def archs(self, tokens):
        """The architectures of ``(N, 2n)`` tokens (inverse of :meth:`tokens`)."""
        ops = self.space.ops
        return [Arch([p - 1 for p in row[0::2]], [ops[k - self.n - 1] for k in row[1::2]], ops)
                for row in np.asarray(tokens).tolist()]

    # -- training and inference ----------------------------------------------------------------

    def fit(self, archs, scores, epochs):
        """Train on ``archs`` with normalised ``scores`` in [0, 1] (see :func:`normalise_scores`)
        for ``epochs`` passes in mini-batches; returns the last epoch's mean ``mse`` and ``nll``."""
        tok = self.tokens(archs)
        scores = np.ascontiguousarray(scores, dtype=np.float64)
        if scores.shape != (len(tok),):
            raise ValueError(f"scores must have shape ({len(tok)},), got {scores.shape}")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
        n, B = len(tok), self.batch_size
        if self.drop_partial and n % B:
            return self._fit_full_batches(tok, scores, int(epochs))
        mse, nll = self._model.fit(tok, scores, int(epochs), min(B, n), shuffle=self.shuffle, **self.optim)
        self.steps += int(epochs) * -(-n // B)
        return {"mse": mse, "nll": nll}

    def _fit_full_batches(self, tok, scores, epochs):
        """The reference's epoch: shuffle, then train on the full mini-batches only."""
        from ..rng import STREAM_NAO_DROP, Draws

        n, B = len(tok), self.batch_size
        keep = (n // B) * B
        mse = nll = float("nan")
        if keep == 0:
            return {"mse": mse, "nll": nll}   # a pool smaller than one batch trains nothing
        for _ in range(epochs):
            order = list(range(n))
            if self.shuffle:
                draws = Draws(self.seed, STREAM_NAO_DROP, self._drops)
                for j in range(n - 1, 0, -1):
                    r = draws.integers(j + 1)
                    order[j], order[r] = order[r], order[j]
            self._drops += 1
            sel = np.array(order[:keep])
            mse, nll = self._model.fit(np.ascontiguousarray(tok[sel]), np.ascontiguousarray(scores[sel]), 1, B,
                                       shuffle=False, **self.optim)
            self.steps += keep // B
        return {"mse": mse, "nll": nll}

    def predict(self, archs):
        """Predicted normalised scores (lower = better) of ``archs``."""
        return self._model.encode(self.tokens(archs))[2]

    def encode(self, archs):
        """Contexts ``(N, n, hidden_size)`` of ``archs``: the embedding NAO moves and decodes."""
        return self._model.encode(self.tokens(archs))[0]

    def embed(self, archs):
        """Architecture embeddings ``(N, hidden_size)`` (normalised mean of the contexts)."""
        return self._model.encode(self.tokens(archs))[1]

    def decode(self, contexts):
        """Greedy decoding of contexts ``(N, n, hidden_size)``: always architectures of the full
        space (each context row is normalised first)."""
        return self.archs(self.decode_tokens(contexts))

    def decode_tokens(self, contexts):
        """The ``(N, 2n)`` int64 tokens :meth:`decode` turns into architectures."""
        return self._model.decode(np.ascontiguousarray(contexts, dtype=np.float64))

    def gradient(self, contexts):
        """``(pred, d pred / d contexts)`` of the predictor through the embedding."""
        return self._model.predict_ctx(np.ascontiguousarray(contexts, dtype=np.float64))

    def propose(self, top_archs, n_new, exclude=(), max_step=30):
        """NAO's new architectures: move the contexts of ``top_archs`` down the predictor's
        gradient with step lambda = 1, 2, ... (reference: ``new = normalise(ctx - lambda * grad)``)
        and decode, until ``n_new`` architectures of the space, new to ``exclude`` and to each
        other, have appeared or lambda reaches ``max_step``.

        Returns ``(new_archs, lambda_reached)`` (``lambda_reached`` = 0 when nothing was asked).
        """
        if not isinstance(n_new, (int, np.integer)) or n_new < 0:
            raise ValueError(f"n_new must be an integer >= 0, got {n_new!r}")
        if not isinstance(max_step, (int, np.integer)) or max_step < 1:
            raise ValueError(f"max_step must be an integer >= 1, got {max_step!r}")
        seen = set(exclude)
        new = []
        lam = 0
        if self.drop_partial:   # the reference batchified the top architectures too
            top_archs = list(top_archs)[:len(top_archs) // self.batch_size * self.batch_size]
        if n_new == 0 or not top_archs:
            return new, lam
        ctx = self.encode(top_archs)
        _, grad = self.gradient(ctx)
        while len(new) < n_new and lam < max_step:
            lam += 1
            for a in self.decode(ctx - lam * grad):
                # a subspace (fixed nodes) does not hold every decoded architecture
                if a not in seen and a in self.space:
                    seen.add(a)
                    new.append(a)
                    if len(new) >= n_new:
                        break
        return new, lam

    # -- checkpoints ---------------------------------------------------------------------------

    def state(self):
        """Everything needed to continue bitwise identically: arrays and JSON scalars."""
        s = self._model.get_state()
        return {"params": s["params"], "adam_m": s["adam_m"], "adam_v": s["adam_v"],
                "adam_step": int(s["step"]), "shuffles": int(s["shuffles"]), "steps": self.steps,
                "drops": self._drops}

    def restore(self, state):
        self._model.set_state(np.ascontiguousarray(state["params"], dtype=np.float64),
                             np.ascontiguousarray(state["adam_m"], dtype=np.float64),
                             np.ascontiguousarray(state["adam_v"], dtype=np.float64),
                             int(state["adam_step"]), int(state["shuffles"]))
        self.steps = int(state["steps"])
        self._drops = int(state.get("drops", 0))
