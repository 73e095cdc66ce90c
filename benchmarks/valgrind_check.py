"""A short standalone training and a few super-net steps, small enough for valgrind memcheck
(issue 13). Run:

    PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 --track-origins=no \
        --suppressions=benchmarks/valgrind-python.supp \
        .venv/bin/python benchmarks/valgrind_check.py

and look at the ERROR SUMMARY for errors whose stack passes through the C core (csrc/*.c frames).
"""
import numpy as np

import nas_eval
from nas_eval.engine import SuperNet, set_num_threads


def main():
    set_num_threads(2)  # the helper threads too
    corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=1500, valid_tokens=300, test_tokens=300, seed=0)
    config = nas_eval.TrainConfig.preset("tiny", hidden_size=8, batch_size=8, bptt=10, epochs=2, asgd=True, nonmono=1,
                                         train_tokens=None, valid_tokens=None, test_tokens=None)
    r = nas_eval.train("0:tanh 1:relu", corpus, config, seed=0)
    print("standalone valid ppl", r.valid_ppl)
    net = SuperNet(nas_eval.SearchSpace(2), corpus.vocab_size, 8, seed=0)
    loss = net.fit_steps(corpus.train, 5, batch_size=8, bptt=10)
    ppl = net.perplexity(list(nas_eval.SearchSpace(2))[:3], corpus.valid, 5, 10)
    print("super-net loss", loss, "ppl", np.round(ppl, 2))


if __name__ == "__main__":
    main()
