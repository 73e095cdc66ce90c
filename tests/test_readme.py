"""The README's examples as written: every `nas-eval` command parses and plans a study whose
jobs fit PTB (plan-time validation), its study file is a valid spec, and its first Python
example runs — verbatim but for the data path and a smaller `tiny` recipe, so it takes seconds."""
import re
import shlex
from pathlib import Path

import pytest

from conftest import data_root
from nas_eval import TrainConfig, cli
from nas_eval.plan import check_feasible
from nas_eval.spec import StudySpec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PTB = {"train": 929_589, "valid": 73_760, "test": 82_430}


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands():
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.split("  #")[0])
                if words and words[0].endswith("nas-eval"):
                    out.append(words[1:])
    return out


def test_the_readme_names_the_main_job_and_the_8node_experiment():
    cmds = [" ".join(c) for c in commands()]
    assert "reproduce --preset standard --out runs/standard --data ../shared/data" in cmds
    assert any(c.startswith("reproduce --preset 8node") for c in cmds)
    assert len(cmds) >= 8


@pytest.mark.parametrize("argv", commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_parses_and_its_study_fits_ptb(argv, tmp_path, monkeypatch):
    (tmp_path / "study.toml").write_text(blocks("toml")[0])
    monkeypatch.chdir(tmp_path)  # `--config study.toml` is the README's study file
    args = cli.build_parser().parse_args(argv)
    if args.command in ("run", "reproduce"):
        from nas_eval.spec import study_preset

        spec = study_preset(args.preset) if args.command == "reproduce" else cli._spec_from_args(args)
        check_feasible(spec, PTB)


def test_the_readme_study_file_is_a_valid_spec(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(blocks("toml")[0])
    spec = StudySpec.from_toml(path)
    assert spec.name == "quick" and spec.train.epochs == 8 and spec.options_for("ws-random") == {"candidates": 50}
    check_feasible(spec, PTB)


def test_the_first_python_example_runs(monkeypatch, capsys):
    root = data_root()
    if not (root / "ptb" / "train.txt").exists():
        pytest.skip(f"PTB not found under {root}")
    code = blocks("python")[0]
    assert 'root="../shared/data"' in code  # run from the repository root, beside shared/
    code = code.replace('root="../shared/data"', f"root={str(root)!r}")
    real = TrainConfig.preset.__func__

    def small(cls, name, /, **kw):  # the example's recipe: one epoch of 200 tokens, d = 8
        if name == "tiny":
            kw = {"hidden_size": 8, "epochs": 1, "train_tokens": 200, "valid_tokens": 100, "test_tokens": 100, **kw}
        return real(cls, name, **kw)

    monkeypatch.setattr(TrainConfig, "preset", classmethod(small))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    from nas_eval import SearchSpace

    assert out[0].split()[:2] == [str(len(SearchSpace(8))), "31"]
    assert "tau" in out[-1]
