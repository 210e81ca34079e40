import json

import pytest

from mlpentest.cli import build_parser, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("attacks", "datasets", "demo", "reproduce", "scan", "tamper", "keygen", "sign", "verify"):
        assert command in out


@pytest.mark.parametrize(
    "command",
    ["attacks", "datasets", "demo", "reproduce", "scan", "tamper", "convert", "keygen", "sign", "verify"],
)
def test_every_subcommand_is_documented(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert len(build_parser()._subparsers._group_actions[0].choices[command].description) > 20
    assert "usage: mlpentest " + command in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_unknown_option_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_attacks_lists_the_registry(capsys):
    from mlpentest.attacks import REGISTRY

    assert main(["attacks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "family", "threat"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(REGISTRY)
    for name, info in REGISTRY.items():
        assert info.family in rows[name] and info.cls.__name__ in rows[name] and info.paper in rows[name]
    assert main(["attacks", "--family", "poisoning"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names == [n for n, info in REGISTRY.items() if info.family == "poisoning"]


def test_datasets_lists_digits(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "fashion-mnist" in out and "cifar10" in out


def _cheap_tour(monkeypatch, *extra):
    """The demo with its first part only (seconds), plus ``extra`` parts after it."""
    from mlpentest.experiments import demo

    target = next(p for p in demo.PARTS if p.key == "target")
    monkeypatch.setattr(demo, "PARTS", (target, *extra))
    return demo


def _raising(exc):
    def part(ctx):
        raise exc

    return part


def test_demo_writes_report(tmp_path, capsys, monkeypatch):
    _cheap_tour(monkeypatch)
    out_dir = tmp_path / "report"
    assert main(["demo", "--quick", "--seed", "1", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("[1/1] the model under attack ... done in ") and "elapsed" in printed[0]
    assert printed[1].strip().startswith("RBF SVM, 899 training / 898 test digits: accuracy 0.9")
    assert printed[-1].startswith("report written to ")
    html = (out_dir / "report.html").read_text()
    assert "data:image/png;base64," in html
    data = json.loads((out_dir / "results.json").read_text())
    assert data["title"] == "mlpentest demo: a tour of the attacks"
    assert data["results"][0]["type"] == "TourSummary"
    report = next(r for r in data["results"] if r["section"] == "Target: RBF SVM on held-out digits")
    # an RBF SVM separates digits well; a broken pipeline would not reach this
    assert report["accuracy"] > 0.95
    assert data["metadata"]["random_state"] == 1 and data["metadata"]["quick"] is True


def test_demo_quiet_prints_only_the_path(tmp_path, capsys, monkeypatch):
    _cheap_tour(monkeypatch)
    assert main(["demo", "--quiet", "--out", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "r.html" in printed[0]
    assert (tmp_path / "r.html").exists() and (tmp_path / "results.json").exists()


def test_demo_ctrl_c_writes_the_report_of_the_finished_parts(tmp_path, capsys, monkeypatch):
    demo = _cheap_tour(monkeypatch)
    stop = demo.Part("stop", "a part that is interrupted", "-", _raising(KeyboardInterrupt()))
    monkeypatch.setattr(demo, "PARTS", (*demo.PARTS, stop))
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 130
    captured = capsys.readouterr()
    assert "[2/2] a part that is interrupted ... interrupted in" in captured.out
    assert "mlpentest demo: interrupted; the report of the finished parts is" in captured.err
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["metadata"]["interrupted"] == "during part 2/2: a part that is interrupted"
    assert "Target: RBF SVM on held-out digits" in [r["section"] for r in data["results"]]


def test_demo_a_failed_part_still_writes_the_report_and_fails(tmp_path, capsys, monkeypatch):
    demo = _cheap_tour(monkeypatch)
    boom = demo.Part("boom", "a part that fails", "-", _raising(RuntimeError("boom")))
    monkeypatch.setattr(demo, "PARTS", (boom, *demo.PARTS))
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "mlpentest demo: error: part 'a part that fails' failed: RuntimeError: boom" in err
    assert "Traceback" not in err
    data = json.loads((tmp_path / "results.json").read_text())
    assert [row["status"] for row in data["results"][0]["rows"]] == ["failed", "done"]
    assert data["metadata"]["failed parts"] == {"a part that fails": "RuntimeError: boom"}


def test_library_errors_become_one_line(tmp_path, capsys):
    assert main(["reproduce", "shokri2017", "--dataset", "no-such-set", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlpentest reproduce: error:") and "Traceback" not in err
    assert "digits" in err  # the message lists the valid names


@pytest.mark.parametrize("argv, message", [
    (["demo", "--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    (["demo", "--seed", "abc"], "argument --seed: expected an integer, got 'abc'"),
    (["demo", "--n-jobs", "0"], "argument --n-jobs: expected an integer >= 1 or -1, got 0"),
    (["reproduce", "shokri2017", "--shadows", "0"], "argument --shadows: expected an integer >= 2, got 0"),
    (["reproduce", "shokri2017", "--sizes", "100", "-5"], "argument --sizes: expected an integer >= 20"),
])
def test_bad_numbers_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started although the output location is unusable")


@pytest.mark.parametrize("command", [["demo"], ["reproduce", "biggio2012"]])
def test_an_unusable_out_fails_before_any_work(command, tmp_path, monkeypatch, capsys):
    from mlpentest.experiments import biggio2012, demo

    monkeypatch.setattr(demo, "run", _must_not_run)
    monkeypatch.setattr(biggio2012, "run", _must_not_run)
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    assert main([*command, "--out", str(existing)]) == 1
    assert "--out: " in capsys.readouterr().err and existing.read_text() == "keep me"
    assert main([*command, "--out", str(existing / "sub")]) == 1  # a folder under a file
    assert "--out: cannot create or write the directory" in capsys.readouterr().err


def test_an_unusable_cache_dir_fails_before_any_work(tmp_path, monkeypatch, capsys):
    from mlpentest.experiments import shokri2017

    monkeypatch.setattr(shokri2017, "run", _must_not_run)
    (tmp_path / "file").write_text("x")
    argv = ["reproduce", "shokri2017", "--quick", "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "file" / "cache")]
    assert main(argv) == 1
    assert "cache_dir: " in capsys.readouterr().err


def test_shadows_is_passed_as_given(tmp_path, monkeypatch):
    from mlpentest.experiments import shokri2017

    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(shokri2017, "run", fake_run)
    with pytest.raises(SystemExit):
        main(["reproduce", "shokri2017", "--quick", "--shadows", "2", "--out", str(tmp_path)])
    assert seen["n_shadow"] == 2


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "biggio2012", "--scheduler", "tcp://127.0.0.1:8786"],
     "--scheduler: only shokri2017 and shokri2017-seed train models on a cluster, not biggio2012"),
    (["reproduce", "shokri2017", "--quick", "--scheduler", "8786"], "scheduler: expected an address"),
    (["reproduce", "shokri2017-seed", "--quick", "--scheduler", "tcp://127.0.0.1:1"],
     "scheduler: cannot connect to 'tcp://127.0.0.1:1'"),
])
def test_a_bad_or_unreachable_scheduler_fails_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import dask

    from mlpentest.experiments import biggio2012, shokri2017

    for module, name in ((biggio2012, "run"), (shokri2017, "run"), (shokri2017, "run_seed")):
        monkeypatch.setattr(module, name, _must_not_run)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # (30 s by default)
        assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert message in capsys.readouterr().err
