"""Recurrent-cell search space and architecture encodings (docs/design.md §2).

A cell has ``n`` intermediate nodes. Node 0 is the cell input ``s0``; node ``i`` (1..n) picks
one predecessor ``p_i`` in ``0..i-1`` and one activation from :data:`OPS`.

>>> space = SearchSpace(2)
>>> len(space)
32
>>> space[4]
Arch('0:tanh 1:tanh')
>>> space.index(Arch.parse("0:identity 1:identity"))
31
"""
import itertools
import math
import operator
import re
import warnings

import numpy as np

from ._moved import renamed

OPS = ("tanh", "relu", "sigmoid", "identity")

# The super-net's granularities of weight sharing (docs/design.md §5), defined once for the
# engine and the policies: "none" (every architecture its own cell matrices) is the
# amount-of-sharing experiment's control, not a way to search, so a policy offers the others.
SHARINGS = ("node", "edge", "edge_op", "none")
SEARCH_SHARINGS = SHARINGS[:-1]

# Enumerating (or materialising all ids of) a larger space is almost certainly a mistake.
_MAX_ENUMERATE = 10**7

_TOKEN = re.compile(r"(0|[1-9][0-9]*):([A-Za-z_]+)")


def _check_ops(ops):
    """Return ``ops`` as a tuple after checking it is a non-empty, duplicate-free subset of OPS."""
    if isinstance(ops, str):
        # A bare string would otherwise be read as a sequence of one-letter op names.
        raise ValueError(f"ops must be a sequence of op names, not the string {ops!r}")
    try:
        ops = tuple(ops)
    except TypeError:
        raise ValueError(f"ops must be a sequence of op names, got {ops!r}") from None
    if not ops:
        raise ValueError("ops must name at least one op")
    for op in ops:
        if op not in OPS:
            raise ValueError(f"unknown op {op!r} in ops (the C core supports {', '.join(OPS)})")
    if len(set(ops)) != len(ops):
        raise ValueError(f"ops contains duplicates: {ops!r}")
    return ops


def _as_int(value, what):
    """Exact integer conversion accepting numpy integers, rejecting bools, floats and strings."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {value!r}") from None


def _check_pred(node, pred):
    pred = _as_int(pred, f"node {node}: predecessor")
    if not 0 <= pred < node:
        raise ValueError(
            f"node {node}: predecessor {pred} is not an earlier node (must be in 0..{node - 1})")
    return pred


def _check_op(node, op, op_names):
    if not isinstance(op, str) or op not in op_names:
        raise ValueError(f"node {node}: unknown op {op!r} (expected one of {', '.join(op_names)})")
    return op


class Arch:
    """One cell: node ``i``'s predecessor ``preds[i-1]`` and activation ``ops[i-1]``.

    Immutable and hashable. Equality compares the cell (``preds`` and ``ops``) only, so the
    same cell written with different op vocabularies is one architecture; ``op_names`` only
    fixes the column order of :meth:`to_alpha` and :attr:`op_indices`.

    >>> a = Arch([0, 1], ["tanh", "relu"])
    >>> str(a), a.genotype
    ('0:tanh 1:relu', (('tanh', 0), ('relu', 1)))
    """

    __slots__ = ("_preds", "_ops", "_op_names")

    def __init__(self, preds, ops, op_names=OPS):
        op_names = _check_ops(op_names)
        if isinstance(preds, str) or isinstance(ops, str):
            raise ValueError("preds and ops must be sequences (use Arch.parse for strings)")
        preds, ops = tuple(preds), tuple(ops)
        if not preds:
            raise ValueError("an architecture needs at least one node")
        if len(preds) != len(ops):
            raise ValueError(f"preds has {len(preds)} entries but ops has {len(ops)}")
        preds = tuple(_check_pred(i, p) for i, p in enumerate(preds, 1))
        ops = tuple(_check_op(i, op, op_names) for i, op in enumerate(ops, 1))
        object.__setattr__(self, "_preds", preds)
        object.__setattr__(self, "_ops", ops)
        object.__setattr__(self, "_op_names", op_names)

    def __setattr__(self, name, value):
        raise AttributeError("Arch is immutable")

    # read-only views of the slots
    preds = property(operator.attrgetter("_preds"), doc="Predecessor of nodes 1..n (node 0 is the cell input ``s0``).")
    ops = property(operator.attrgetter("_ops"), doc="Activation name of nodes 1..n.")
    op_names = property(operator.attrgetter("_op_names"), doc="Op vocabulary giving the index of each op.")

    @property
    def n_nodes(self):
        return len(self._preds)

    @property
    def op_indices(self):
        """Index of each node's op in :attr:`op_names`."""
        return tuple(self._op_names.index(op) for op in self._ops)

    @property
    def genotype(self):
        """DARTS-style ``((op, pred), ...)``, one pair per node."""
        return tuple(zip(self._ops, self._preds))

    @classmethod
    def from_genotype(cls, genotype, ops=OPS):
        """Inverse of :attr:`genotype`: ``Arch.from_genotype([("tanh", 0), ("relu", 1)])``."""
        pairs = []
        for i, item in enumerate(genotype, 1):
            if isinstance(item, str) or not hasattr(item, "__len__") or len(item) != 2:
                raise ValueError(f"node {i}: genotype entry must be an (op, pred) pair, got {item!r}")
            pairs.append(tuple(item))
        return cls([p for _, p in pairs], [op for op, _ in pairs], ops)

    def __str__(self):
        return " ".join(f"{p}:{op}" for p, op in zip(self._preds, self._ops))

    def __repr__(self):
        return f"Arch({str(self)!r})"

    @classmethod
    def parse(cls, s, ops=OPS):
        """Parse the canonical form ``"pred:op pred:op ..."`` (single spaces, nothing else)."""
        if not isinstance(s, str):
            raise ValueError(f"expected a string like '0:tanh 1:relu', got {s!r}")
        if not s:
            raise ValueError("cannot parse an empty string: an architecture needs at least one node")
        preds, names = [], []
        # split(" ") rather than split(): doubled, leading or trailing spaces give empty tokens
        # and are rejected, so every accepted string is exactly str() of its Arch.
        for i, token in enumerate(s.split(" "), 1):
            m = _TOKEN.fullmatch(token)
            if m is None:
                raise ValueError(f"node {i}: bad token {token!r} in {s!r} (expected 'pred:op')")
            preds.append(int(m.group(1)))
            names.append(m.group(2))
        return cls(preds, names, ops)

    def __eq__(self, other):
        if not isinstance(other, Arch):
            return NotImplemented
        return self._preds == other._preds and self._ops == other._ops

    def __hash__(self):
        return hash((self._preds, self._ops))

    def __reduce__(self):
        # __setattr__ is blocked, so pickle must go through the constructor.
        return (Arch, (self._preds, self._ops, self._op_names))

    def to_alpha(self):
        """One-hot α of the paper's Figure 2(c), shape ``(n(n+1)/2, len(op_names))``.

        Rows enumerate edges ``j -> i`` for i = 1..n, j = 0..i-1 (row ``i(i-1)/2 + j``).
        """
        n = self.n_nodes
        alpha = np.zeros((n * (n + 1) // 2, len(self._op_names)), dtype=np.float32)
        for i, (p, k) in enumerate(zip(self._preds, self.op_indices), 1):
            alpha[i * (i - 1) // 2 + p, k] = 1.0
        return alpha

    @classmethod
    def from_alpha(cls, alpha, ops=OPS):
        """Inverse of :meth:`to_alpha`; every node block must hold exactly one 1, all else 0."""
        ops = _check_ops(ops)
        alpha = np.asarray(alpha)
        if alpha.ndim != 2 or alpha.shape[1] != len(ops):
            raise ValueError(f"alpha must have shape (n(n+1)/2, {len(ops)}), got {alpha.shape}")
        rows = alpha.shape[0]
        n = (math.isqrt(8 * rows + 1) - 1) // 2
        if rows == 0 or n * (n + 1) // 2 != rows:
            raise ValueError(f"alpha has {rows} rows, which is not n(n+1)/2 for any n >= 1")
        if not np.isin(alpha, (0, 1)).all():
            raise ValueError("alpha must be one-hot (entries 0 or 1); take an argmax first")
        preds, names = [], []
        for i in range(1, n + 1):
            block = alpha[i * (i - 1) // 2: i * (i + 1) // 2]
            hot = np.argwhere(block == 1)
            if len(hot) != 1:
                raise ValueError(f"node {i}: alpha block has {len(hot)} ones, expected exactly 1")
            preds.append(int(hot[0, 0]))
            names.append(ops[hot[0, 1]])
        return cls(preds, names, ops)

    def loose_ends(self):
        """Nodes that no other node uses as predecessor (ENAS's output option)."""
        used = set(self._preds)
        return tuple(i for i in range(1, self.n_nodes + 1) if i not in used)

    def to_dict(self):
        """JSON-friendly ``{"preds": [...], "ops": [...]}``."""
        return {"preds": list(self._preds), "ops": list(self._ops)}

    @classmethod
    def from_dict(cls, d, ops=OPS):
        if not isinstance(d, dict) or set(d) != {"preds", "ops"}:
            raise ValueError(f"expected a dict with exactly the keys 'preds' and 'ops', got {d!r}")
        return cls(d["preds"], d["ops"], ops)


class SearchSpace:
    """All cells with ``n_nodes`` nodes and activations from ``ops``, optionally with some nodes fixed.

    Architectures have integer ids compatible with the authors' framework: a mixed-radix number,
    node 1 most significant, whose digit for node ``i`` is ``len(ops)*p_i + op_i`` (radix
    ``len(ops)*i``). A space made by :meth:`fix` keeps only the architectures with the given
    nodes fixed; its ids are positions ``0..len-1`` in increasing parent-id order and
    ``sub.parent.index(arch)`` gives the id in the full space.

    >>> space = SearchSpace(3)
    >>> space.size
    384
    >>> sub = space.fix({1: ("tanh", 0), 2: ("relu", 1)})
    >>> len(sub), sub[0]
    (12, Arch('0:tanh 1:relu 0:tanh'))
    """

    def __init__(self, n_nodes=None, ops=OPS, fixed=None, *, nodes=None):
        if nodes is not None:  # the 0.1 keyword
            warnings.warn("SearchSpace(nodes=) is deprecated; use n_nodes=", DeprecationWarning, stacklevel=2)
            n_nodes = nodes if n_nodes is None else n_nodes
        if n_nodes is None:
            raise ValueError("SearchSpace needs n_nodes, the number of intermediate nodes")
        nodes = _as_int(n_nodes, "n_nodes")
        if nodes < 1:
            raise ValueError(f"n_nodes must be >= 1, got {nodes}")
        self._nodes = nodes
        self._ops = _check_ops(ops)
        self._fixed = {}
        for node, value in dict(fixed or {}).items():
            node = _as_int(node, "fixed node")
            if not 1 <= node <= nodes:
                raise ValueError(f"fixed node {node} is not a node of this space (must be in 1..{nodes})")
            if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
                raise ValueError(f"node {node}: fixed value must be an (op, pred) pair, got {value!r}")
            op, pred = value
            self._fixed[node] = (_check_op(node, op, self._ops), _check_pred(node, pred))
        self._fixed = dict(sorted(self._fixed.items()))
        k = len(self._ops)
        # Allowed digits per node, ascending, so positions in the product follow parent-id order.
        self._choices = tuple(
            (k * self._fixed[i][1] + self._ops.index(self._fixed[i][0]),) if i in self._fixed
            else range(k * i)
            for i in range(1, nodes + 1))
        self._size = math.prod(len(c) for c in self._choices)

    n_nodes = property(operator.attrgetter("_nodes"))
    nodes = renamed("SearchSpace", "nodes", "n_nodes")
    ops = property(operator.attrgetter("_ops"))

    @property
    def fixed(self):
        """``{node: (op, pred)}`` of the fixed nodes (a copy)."""
        return dict(self._fixed)

    @property
    def parent(self):
        """The full space, without fixed nodes (``self`` when nothing is fixed)."""
        return SearchSpace(self._nodes, self._ops) if self._fixed else self

    @property
    def size(self):
        """Number of architectures, as an exact Python int (``len()`` needs it to fit ssize_t)."""
        return self._size

    def __len__(self):
        return self._size

    def __repr__(self):
        args = [f"n_nodes={self._nodes}"]
        if self._ops != OPS:
            args.append(f"ops={self._ops!r}")
        if self._fixed:
            args.append(f"fixed={self._fixed!r}")
        return f"SearchSpace({', '.join(args)})"

    def _key(self):
        return (self._nodes, self._ops, tuple(self._fixed.items()))

    def __eq__(self, other):
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def to_dict(self):
        """JSON-friendly form; fixed-node keys become strings as JSON requires."""
        return {"n_nodes": self._nodes, "ops": list(self._ops),
                "fixed": {str(i): [op, p] for i, (op, p) in self._fixed.items()}}

    @classmethod
    def from_dict(cls, d):
        if isinstance(d, dict) and "nodes" in d and "n_nodes" not in d:  # written by 0.1
            d = {("n_nodes" if k == "nodes" else k): v for k, v in d.items()}
        if not isinstance(d, dict) or not {"n_nodes", "ops"} <= set(d) <= {"n_nodes", "ops", "fixed"}:
            raise ValueError(f"expected a dict with keys 'n_nodes', 'ops' and optionally 'fixed', got {d!r}")
        fixed = {}
        for node, value in d.get("fixed", {}).items():
            try:
                fixed[int(node)] = value
            except ValueError:
                raise ValueError(f"fixed node {node!r} is not an integer") from None
        return cls(d["n_nodes"], d["ops"], fixed)

    def _arch_from_digits(self, digits):
        k = len(self._ops)
        return Arch([d // k for d in digits], [self._ops[d % k] for d in digits], self._ops)

    def _range_error(self, i):
        return f"architecture id {i} out of range for {self!r} (0..{self._size - 1})"

    def arch(self, i):
        """The architecture with id ``i`` (``ValueError`` when out of range)."""
        i = _as_int(i, "architecture id")
        if not 0 <= i < self._size:
            raise ValueError(self._range_error(i))
        digits = []
        for choices in reversed(self._choices):
            i, r = divmod(i, len(choices))
            digits.append(choices[r])
        return self._arch_from_digits(digits[::-1])

    def __getitem__(self, i):
        # IndexError, not ValueError, so that sequence protocols (e.g. old-style iteration) stop.
        i = _as_int(i, "architecture id")
        if not 0 <= i < self._size:
            raise IndexError(self._range_error(i))
        return self.arch(i)

    def _coerce(self, arch):
        if isinstance(arch, str):
            return Arch.parse(arch, self._ops)
        if not isinstance(arch, Arch):
            raise ValueError(f"expected an Arch or its string form, got {arch!r}")
        return arch

    def index(self, arch):
        """Id of ``arch`` (an :class:`Arch` or its string form) in this space."""
        arch = self._coerce(arch)
        if arch.n_nodes != self._nodes:
            raise ValueError(f"{arch!r} has {arch.n_nodes} nodes, this space has {self._nodes}")
        k = len(self._ops)
        i = 0
        for node, (pred, op, choices) in enumerate(zip(arch.preds, arch.ops, self._choices), 1):
            if op not in self._ops:
                raise ValueError(f"node {node}: op {op!r} is not in this space's ops {self._ops}")
            digit = k * pred + self._ops.index(op)
            if digit not in choices:
                raise ValueError(f"node {node}: {arch!r} differs from the fixed "
                                 f"(op, pred) = {self._fixed[node]!r}")
            i = i * len(choices) + choices.index(digit)
        return i

    def __contains__(self, arch):
        try:
            self.index(arch)
        except ValueError:
            return False
        return True

    def _check_enumerable(self):
        if self._size > _MAX_ENUMERATE:
            raise ValueError(f"{self!r} has {self._size:,} architectures, too many to enumerate; "
                             "use sample() or fix() some nodes")

    def __iter__(self):
        """All architectures in id order (only for spaces of at most 10**7 architectures)."""
        self._check_enumerable()
        # itertools.product varies the last node fastest: exactly mixed-radix id order.
        return (self._arch_from_digits(d) for d in itertools.product(*self._choices))

    def ids(self):
        """``np.int64`` array of every id (only for enumerable spaces)."""
        self._check_enumerable()
        return np.arange(self._size, dtype=np.int64)

    def sample_ids(self, seed, size=None):
        """Uniform random ids: one int, or a list of ``size`` ints.

        ``seed`` is an int, a ``np.random.Generator`` or a :class:`nas_eval.rng.Draws` (the
        package's own draws). Drawing each free node's digit uniformly is drawing its
        predecessor and op independently uniformly, and uniform over ids.
        """
        rng = seed if hasattr(seed, "integers") else np.random.default_rng(seed)
        n = 1 if size is None else _as_int(size, "size")
        if n < 0:
            raise ValueError(f"size must be >= 0, got {n}")
        radices = [len(c) for c in self._choices]
        # One column per node; Python ints keep ids exact beyond int64 for very large spaces.
        positions = [rng.integers(0, r, size=n).tolist() for r in radices]
        ids = []
        for row in zip(*positions):
            i = 0
            for r, pos in zip(radices, row):
                i = i * r + pos
            ids.append(i)
        return ids[0] if size is None else ids

    def sample(self, seed, size=None):
        """Uniform random architectures: one :class:`Arch`, or a list of ``size``.

        Consumes the generator exactly like :meth:`sample_ids`, so both agree for one seed.
        """
        ids = self.sample_ids(seed, size)
        return self.arch(ids) if size is None else [self.arch(i) for i in ids]

    def fix(self, fixed):
        """Subspace with the nodes in ``{node: (op, pred)}`` fixed (on top of any already fixed)."""
        fixed = SearchSpace(self._nodes, self._ops, fixed)._fixed  # validated, normalised
        for node, value in fixed.items():
            if self._fixed.get(node, value) != value:
                raise ValueError(f"node {node} is already fixed to {self._fixed[node]!r}, "
                                 f"cannot fix it to {value!r}")
        return SearchSpace(self._nodes, self._ops, {**self._fixed, **fixed})

    def block(self, b):
        """Architectures ``b*r .. b*r+r-1`` where ``r`` is node n's number of choices.

        A block fixes nodes 1..n-1 and enumerates node n; in the full 3-node space each block
        has 12 architectures (the "amount of sharing" experiment).
        """
        r = len(self._choices[-1])
        b = _as_int(b, "block")
        if not 0 <= b < self._size // r:
            raise ValueError(f"block {b} out of range for {self!r} (0..{self._size // r - 1})")
        return [self.arch(b * r + t) for t in range(r)]


# ------------------------------------------------------------- the amount-of-sharing subspace
# (the paper's §4.3.1; its tables are nas_eval.sharing's): here, with the space, so that the
# engine, the study's plan and the analysis all build it from one definition
DEFAULT_FIXED = {1: ("tanh", 0), 2: ("relu", 1)}


def shared_matrices(arch, node=None, fixed_nodes=(1, 2)):
    """How many of the fixed nodes' matrices the input of ``node`` (default: the last node)
    depends on: the fixed nodes on its chain of predecessors."""
    node = arch.n_nodes if node is None else node
    chain, p = set(), arch.preds[node - 1]
    while p > 0:
        chain.add(p)
        p = arch.preds[p - 1]
    return len(chain & set(fixed_nodes))


def sharing_space(fixed=None, n_nodes=3):
    """The subspace of the experiment: ``n_nodes`` nodes, all but the last fixed."""
    fixed = dict(DEFAULT_FIXED if fixed is None else fixed)
    if sorted(fixed) != list(range(1, n_nodes)):
        raise ValueError(f"fix exactly nodes 1..{n_nodes - 1}, got nodes {sorted(fixed)}")
    return SearchSpace(n_nodes).fix(fixed)
