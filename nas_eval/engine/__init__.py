"""The engine: everything that runs on the C core — the models (:class:`CellLM`,
:class:`SuperNet`, DARTS's :class:`MixedLM`), the one training loop (:class:`Trainer`), standalone training and the
experiments' units. The analysis layer (metrics, summaries, report, plots) never imports it.
"""
from .._moved import moved
from .build_info import build_info
from .experiments import ground_truth, ground_truth_run, ws_ranking, ws_run
from .loop import BpttLengths, Trainer
from .mixed import MixedLM
from .model import CellLM, StepResult, batchify, perplexity
from .nao import NAOController, normalise_scores
from .native import openblas_info
from .supernet import SHARINGS, SuperNet
from .threads import get_num_threads, set_num_threads
from .training import StandaloneTraining, TrainResult, train

__all__ = ["CellLM", "SuperNet", "MixedLM", "SHARINGS", "Trainer", "BpttLengths", "StepResult", "batchify",
           "perplexity", "train", "TrainResult", "StandaloneTraining", "ground_truth",
           "ground_truth_run", "ws_ranking", "ws_run", "set_num_threads",
           "get_num_threads", "openblas_info", "build_info", "NAOController", "normalise_scores"]


# amount_of_sharing analyses its runs, so it moved up a layer (nas_eval.serial); the engine
# imports no analysis module, and resolves the old name only when it is asked for
__getattr__ = moved(__name__, {"amount_of_sharing": "nas_eval.serial:amount_of_sharing"})
