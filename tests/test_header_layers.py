"""The C core's headers form layers (docs/design.md, the C section): a header may include
headers of its own layer or of layers below it, never one above. Pure Python: reads csrc/*.h."""
import pathlib
import re

import pytest

CSRC = pathlib.Path(__file__).resolve().parents[1] / "csrc"

# bottom first; a header of layer k may include headers of layers 0..k
LAYERS = [
    ("base", {"arch.h", "alloc.h", "mathfun.h", "rng.h", "blas.h", "adam.h", "parallel.h", "kernels.h", "kern_tiles.h",
              "panel.h"}),
    ("cell", {"cell.h", "mixed_cell.h"}),
    # the per-instruction-set loop bodies read the cell headers' constants and tables
    ("loops", {"elementwise.h", "mixed_elementwise.h", "xent_elementwise.h", "kern_body.h"}),
    ("model", {"lm.h", "decoder.h", "fused_xent.h", "embedding.h", "lstm.h", "optim.h"}),
    ("algorithms", {"darts.h", "enas.h", "nao.h"}),
    ("bindings", {"py_args.h", "py_model.h", "py_darts.h", "py_enas.h", "py_lstm_adam.h", "py_nao.h", "py_xent.h"}),
]
LAYER = {h: k for k, (_, headers) in enumerate(LAYERS) for h in headers}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(path):
    return INCLUDE.findall(path.read_text())


def upward_includes(layer_of, texts):
    """(header, included, its layer, the included header's layer) for every include of a
    header from a layer above the including header's."""
    return [(h, inc, layer_of[h], layer_of[inc]) for h, incs in texts.items() for inc in incs
            if inc in layer_of and layer_of[inc] > layer_of[h]]


def test_every_header_has_a_layer():
    headers = {p.name for p in CSRC.glob("*.h")}
    assert headers - set(LAYER) == set(), "place the new header in a layer of LAYERS"
    assert set(LAYER) - headers == set(), "LAYERS names a header that is gone"


def test_no_header_includes_a_layer_above_it():
    texts = {p.name: includes(p) for p in CSRC.glob("*.h")}
    bad = upward_includes(LAYER, texts)
    assert bad == [], "\n".join(f"{h} ({LAYERS[a][0]}) includes {i} ({LAYERS[b][0]})" for h, i, a, b in bad)


def test_the_check_sees_an_upward_include():
    # the old fault: cell.h included lm.h for CellArch
    assert upward_includes(LAYER, {"cell.h": ["lm.h"], "lm.h": ["arch.h"]}) == [
        ("cell.h", "lm.h", LAYER["cell.h"], LAYER["lm.h"])]


@pytest.mark.parametrize("header", ["cell.h", "elementwise.h"])
def test_the_cell_and_its_loops_read_the_architecture_from_arch_h(header):
    assert "arch.h" in includes(CSRC / header) and "lm.h" not in includes(CSRC / header)
