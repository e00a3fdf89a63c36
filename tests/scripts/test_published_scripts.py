"""The experiment scripts' dry runs resolve to the published settings.

Each script is run with DRY_RUN=1; every printed command line ("+ ...") is parsed with shlex and
resolved by its entry point's own option parser (flags, then the preset table); the resolved values
are checked against the values written below, copied by hand from docs/published-behaviour.md §4
(not imported from options/presets.py, so that a wrong preset cannot hide a wrong script). The
scripts themselves pass only the choices (dataset, protocol, stage, checkpoint, folders).
"""

import os
import shlex
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# docs/published-behaviour.md §4, written out by hand: flag -> the value it must resolve to.
PRETRAIN_COMMON = {
    "--lr": ["0.01"],
    "--momentum": ["0.9"],
    "--wd": ["1e-4"],
    "--batch-size": ["64"],
    "--contrast-dim": ["128"],
    "--contrast-k": ["16384"],
    "--contrast-t": ["0.07"],
    "--contrast-m": ["0.999"],
    "--teacher-t": ["0.05"],
    "--student-t": ["0.1"],
    "--topk": ["8192"],
    "--cmd-weight": ["1.0"],
    "--skeleton-representation": ["graph-based"],
    "--mlp": [],
}
PRETRAIN_NTU = {"--epochs": ["451"], "--schedule": ["351"]}
PRETRAIN_PKU = {"--epochs": ["1001"], "--schedule": ["801"]}
LINEAR = {
    "--lr": ["0.1"],
    "--momentum": ["0.9"],
    "--wd": ["0.0"],
    "--eval-freq": ["5"],
    "--batch-size": ["64"],
    "--epochs": ["80"],
    "--schedule": ["50", "70"],
    "--finetune-skeleton-representation": ["graph-based"],
}
SEMI = {
    "--lr": ["0.01"],
    "--momentum": ["0.9"],
    "--wd": ["0.0"],
    "--eval-freq": ["5"],
    "--batch-size": ["64"],
    "--epochs": ["80"],
    "--schedule": ["50", "70"],
    "--finetune": [],
    "--finetune-skeleton-representation": ["graph-based"],
}
KNN = {"--knn-neighbours": ["1"], "--finetune-skeleton-representation": ["graph-based"]}

RUNS = {  # run name -> (dataset, protocol, last checkpoint)
    "ntu60_xsub": ("ntu60", "cross_subject", "checkpoint_0450.pth.tar"),
    "ntu60_xview": ("ntu60", "cross_view", "checkpoint_0450.pth.tar"),
    "ntu120_xsub": ("ntu120", "cross_subject", "checkpoint_0450.pth.tar"),
    "ntu120_xsetup": ("ntu120", "cross_setup", "checkpoint_0450.pth.tar"),
    "pku_v2_xsub": ("pku_v2", "cross_subject", "checkpoint_1000.pth.tar"),
}


def run_script(script, *args, root=ROOT, **env):
    """`bash scripts/<script> args` run in `root`, with DRY_RUN=1 unless `env` sets it."""
    return subprocess.run(
        ["bash", os.path.join("scripts", script), *args],
        cwd=root,
        env={**os.environ, "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def with_scripts(tree):
    """`tree`, holding a copy of scripts/ (made once): a root whose output folders are a test's own."""
    if not (tree / "scripts").exists():
        shutil.copytree(os.path.join(ROOT, "scripts"), tree / "scripts")
    return tree


def dry_run(script, *args, root=ROOT, **env):
    """The commands printed by `DRY_RUN=1 bash <root>/scripts/<script> args` as lists of words."""
    proc = run_script(script, *args, root=root, **env, DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    commands = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert commands, f"{script} printed no commands:\n{proc.stdout}"
    assert "Dry run" in proc.stdout
    return commands


def flags(words):
    """{flag: [values]} of one command line; a flag followed by another flag has no values."""
    parsed, current = {}, None
    for word in words:
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            current = word
            assert current not in parsed, f"flag {current} given twice in {words}"
            parsed[current] = []
        elif current is not None:
            parsed[current].append(word)
    return parsed


ATTRIBUTES = {"--wd": "weight_decay", "--finetune-skeleton-representation": "finetune_skeleton_representation"}


def resolved(words):
    """The options an entry point resolves from the command line `words`: its flags, then the preset of the
    dataset it names (as for a folder the published tools wrote; tests/options/test_presets.py checks
    that the entry points choose that preset from the folder)."""
    from options.options_classification import parse_classification, parse_knn
    from options.options_pretraining import parse_args
    from options.parsing import fill
    from options.presets import preset

    argv = words[words.index(entry_point(words)) + 1 :]
    script = entry_point(words)
    if script == "pretrain_cmd.py":
        args, stage, dataset = parse_args(argv)[1], "pretrain", None
        dataset = args.pre_dataset
    else:
        assert script in ("knn_eval.py", "action_classification.py"), words
        args = (parse_knn if script == "knn_eval.py" else parse_classification)(argv)[1]
        stage, dataset = args.stage, args.finetune_dataset
    fill(args, preset(stage, args.preset or dataset or "ntu60"))
    return args


def assert_has(parsed, expected, words):
    """Every setting of `expected` (flag -> words) resolves, for the command `words`, to that value."""
    args = resolved(words)
    for flag, values in expected.items():
        name = ATTRIBUTES.get(flag, flag.lstrip("-").replace("-", "_"))
        value = getattr(args, name)
        if values == []:
            assert value is True, f"{flag} resolves to {value!r}, not on, for {shlex.join(words)}"
        elif isinstance(value, list):
            assert value == [type(v)(w) for v, w in zip(value, values)] and len(value) == len(values), (
                f"{flag} resolves to {value} != {values} for {shlex.join(words)}"
            )
        else:
            assert value == type(value)(values[0]), f"{flag} resolves to {value!r} != {values} for {shlex.join(words)}"


def entry_point(words):
    """The python file a command runs (under `python -m torch.distributed.run` too), else its module."""
    for word in words:
        if word.endswith(".py"):
            return word
    return words[words.index("-m") + 1] if "-m" in words else None


def test_pretrain_runs_all_five_with_spec_settings():
    commands = dry_run("pretrain.sh")
    assert [entry_point(c) for c in commands] == ["pretrain_cmd.py"] * 5
    seen = set()
    for words in commands:
        parsed = flags(words)
        name = os.path.basename(parsed["--checkpoint-path"][0])
        dataset, protocol, _ = RUNS[name]
        seen.add(name)
        assert parsed["--checkpoint-path"] == [f"./checkpoints/{name}"]
        assert parsed["--pre-dataset"] == [dataset] and parsed["--protocol"] == [protocol]
        assert_has(parsed, PRETRAIN_COMMON, words)
        assert_has(parsed, PRETRAIN_PKU if dataset == "pku_v2" else PRETRAIN_NTU, words)
    assert seen == set(RUNS)


def test_pretrain_multi_gpu_and_device_and_resume(tmp_path):
    # a copy of scripts/ in an empty tree: RESUME=1 resumes the run that has a checkpoint, starts the other
    with_scripts(tmp_path)
    (tmp_path / "checkpoints" / "ntu120_xsetup").mkdir(parents=True)
    (tmp_path / "checkpoints" / "ntu120_xsetup" / "checkpoint_last.pth.tar").write_bytes(b"")
    env = dict(NPROC="4", DEVICE="cuda", RESUME="1", PYTHON="python3.11")
    resumed, started = dry_run("pretrain.sh", "ntu120_xsetup", "ntu60_xsub", root=tmp_path, **env)
    for words in (resumed, started):
        assert words[:5] == ["python3.11", "-m", "torch.distributed.run", "--nproc_per_node", "4"]  # torchrun
        assert entry_point(words) == "pretrain_cmd.py" and flags(words)["--device"] == ["cuda"]
    parsed = flags(resumed)
    assert parsed["--checkpoint-path"] == ["./checkpoints/ntu120_xsetup"]
    assert parsed["--resume"] == ["./checkpoints/ntu120_xsetup/checkpoint_last.pth.tar"]
    assert parsed["--protocol"] == ["cross_setup"] and parsed["--pre-dataset"] == ["ntu120"]
    assert "--resume" not in started and flags(started)["--checkpoint-path"] == ["./checkpoints/ntu60_xsub"]


def test_pretrain_resume_restarts_a_run_stopped_before_its_first_checkpoint(tmp_path):
    with_scripts(tmp_path)
    (tmp_path / "checkpoints" / "ntu60_xsub").mkdir(parents=True)
    (tmp_path / "checkpoints" / "ntu60_xsub" / "settings.json").write_text("{}")
    (words,) = dry_run("pretrain.sh", "ntu60_xsub", root=tmp_path, RESUME="1")
    assert "--fresh" in flags(words) and "--resume" not in flags(words)  # its files kept aside, not refused


def test_an_evaluation_sweep_goes_on_with_resume(tmp_path):
    # RESUME=1: a finished evaluation (result.jsonl) is skipped, an interrupted SGD probe continues from its
    # checkpoint, an interrupted run without one starts afresh, a run not started starts.
    with_scripts(tmp_path)
    runs = tmp_path / "runs" / "semi"
    for seed, files in (
        (1, ["settings.json", "result.jsonl"]),
        (2, ["settings.json", "checkpoint.pth.tar"]),
        (3, ["settings.json"]),
    ):
        (runs / f"ntu60_xsub_ratio0.1_seed{seed}").mkdir(parents=True)
        for name in files:
            (runs / f"ntu60_xsub_ratio0.1_seed{seed}" / name).write_text("{}")
    env = dict(RATIOS="0.1", SEEDS="1 2 3 4")
    status, err, _ = refused("semi_supervised.sh", "ntu60_xsub", root=tmp_path, DRY_RUN="0", PYTHON="true", **env)
    assert status == 2 and "RESUME=1 continues the sweep" in err
    commands = [
        w
        for w in dry_run("semi_supervised.sh", "ntu60_xsub", root=tmp_path, RESUME="1", **env)
        if entry_point(w) == "action_classification.py"
    ]
    by_seed = {flags(w)["--seed"][0]: flags(w) for w in commands}
    assert sorted(by_seed) == ["2", "3", "4"]
    assert by_seed["2"]["--resume"] == ["./runs/semi/ntu60_xsub_ratio0.1_seed2/checkpoint.pth.tar"]
    assert "--fresh" in by_seed["3"] and "--resume" not in by_seed["3"]
    assert "--fresh" not in by_seed["4"] and "--resume" not in by_seed["4"]


def refused(script, *args, root=ROOT, **env):
    """(exit status, stderr, commands printed) of a dry run that should stop."""
    proc = run_script(script, *args, root=root, **env)
    return proc.returncode, proc.stderr, [line for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_unknown_run_is_refused_with_the_list():
    status, err, _ = refused("pretrain.sh", "ntu60_cross_setup")
    assert status == 2
    assert "ntu60_cross_setup" in err and "ntu120_xsetup" in err


def test_every_name_and_knob_is_checked_before_the_first_command():
    for script, args, env, message in [
        ("pretrain.sh", ["ntu60_xsub", "typo"], {}, "unknown run 'typo'"),
        ("linear_eval.sh", ["ntu60_xsub", "typo"], {}, "unknown run 'typo'"),
        ("knn_eval.sh", ["ntu60_xsub", "typo"], {}, "unknown run 'typo'"),
        ("semi_supervised.sh", ["ntu60_xsub", "typo"], {}, "unknown run 'typo'"),
        ("transfer.sh", ["ntu60_xsub", "typo"], {}, "unknown run 'typo'"),
        ("preprocess.sh", ["ntu60", "typo"], {}, "unknown dataset 'typo'"),
        ("linear_eval.sh", ["ntu60_xsub"], {"VIEWS": "joint foo"}, "unknown view 'foo'"),
        ("linear_eval.sh", ["ntu60_xsub"], {"VIEWS": " "}, "VIEWS is empty"),  # it evaluated nothing, exit 0
        ("linear_eval.sh", ["ntu60_xsub"], {"VIEWS": ""}, "VIEWS is empty"),
        ("pretrain.sh", ["ntu60_xsub"], {"NPROC": "abc"}, "NPROC=abc: expected a positive integer"),
        ("synthetic_benchmark.sh", [], {"MAX_JOBS": "abc"}, "MAX_JOBS=abc: expected a positive integer"),
        ("demo.sh", [], {"MAX_JOBS": "0"}, "MAX_JOBS=0: expected a positive integer"),
        ("linear_eval.sh", ["ntu60_xsub"], {"FRESH": "1", "RESUME": "1"}, "set one of the two"),
        ("transfer.sh", ["pku_v2_xsub"], {}, "was pretrained on PKU-MMD II itself"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"SEEDS": "1 zero"}, "seed 'zero' (SEEDS): expected"),
        ("real_data_benchmark.sh", ["a=/tmp"], {"SEEDS": "zero"}, "seed 'zero' (SEEDS): expected"),
        ("synthetic_benchmark.sh", [], {"SEEDS": " "}, "SEEDS is empty"),
        ("synthetic_benchmark.sh", [], {"SEEDS": ""}, "SEEDS is empty"),
        ("real_data_benchmark.sh", ["a=/tmp"], {"SEEDS": "01"}, "without leading zeros"),
        ("real_data_benchmark.sh", ["a=/tmp"], {"SEEDS": "0 1 0"}, "seed 0 (SEEDS) given twice"),
        ("real_data_benchmark.sh", ["a=/tmp"], {"SEEDS": "1 9223372036854775808"}, "at most 9223372036854775807"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"SEEDS": "12345678901234567890"}, "at most 9223372036854775807"),
        # a name given twice would run twice into one folder
        ("pretrain.sh", ["ntu60_xsub", "ntu60_xview", "ntu60_xsub"], {}, "run ntu60_xsub given twice"),
        ("knn_eval.sh", ["ntu60_xsub", "ntu60_xsub"], {}, "run ntu60_xsub given twice"),
        ("linear_eval.sh", ["ntu60_xsub"], {"VIEWS": "all joint all"}, "view all (VIEWS) given twice"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": "0.1 0.2 0.1"}, "ratio 0.1 (RATIOS) given twice"),
        ("preprocess.sh", ["ntu60", "ntu60"], {}, "dataset ntu60 given twice"),
        # RATIOS as --data-ratio takes them: a decimal fraction above 0 and at most 1
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": " "}, "RATIOS is empty"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": ""}, "RATIOS is empty"),  # as SEEDS="" is refused
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": "0.1 abc"}, "ratio 'abc' (RATIOS): expected"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": "0"}, "ratio '0' (RATIOS): expected"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": "1.01"}, "ratio '1.01' (RATIOS): expected"),
        ("semi_supervised.sh", ["ntu60_xsub"], {"RATIOS": "-0.1"}, "ratio '-0.1' (RATIOS): expected"),
        # the switches take 1 or 0 (DRY_RUN: tests/scripts/test_demo.py, where a real run would be harmless)
        ("knn_eval.sh", ["ntu60_xsub"], {"FRESH": "yes"}, "FRESH=yes: expected 1 (on) or 0 (off)"),
        ("pretrain.sh", ["ntu60_xsub"], {"RESUME": "true"}, "RESUME=true: expected 1 (on) or 0 (off)"),
    ]:
        status, err, commands = refused(script, *args, **env)
        assert (status, commands) == (2, []) and message in err, (script, args, env, err)


def _check_eval(words, settings, view=None):
    parsed = flags(words)
    assert_has(parsed, settings, words)
    ckpt = parsed["--pretrained"][0]
    name = ckpt.split("/")[-2]
    dataset, protocol, last = RUNS[name]
    assert ckpt == f"./checkpoints/{name}/{last}"
    if view is not None:
        assert parsed["--view"] == [view]
    return parsed, dataset, protocol


def test_linear_eval_joint_and_three_streams():
    commands = dry_run("linear_eval.sh")
    evals = [c for c in commands if entry_point(c) == "action_classification.py"]
    assert len(evals) == 10
    pairs = set()
    for words in evals:
        parsed, dataset, protocol = _check_eval(words, LINEAR)
        assert parsed["--finetune-dataset"] == [dataset] and parsed["--protocol"] == [protocol]
        assert "--finetune" not in parsed and "--data-ratio" not in parsed
        pairs.add((parsed["--pretrained"][0].split("/")[-2], parsed["--view"][0]))
    assert pairs == {(name, view) for name in RUNS for view in ("joint", "all")}
    assert entry_point(commands[-1]) == "tools.report"


def test_knn_eval():
    commands = dry_run("knn_eval.sh")
    evals = [c for c in commands if entry_point(c) == "knn_eval.py"]
    assert len(evals) == 5
    for words in evals:
        parsed, dataset, protocol = _check_eval(words, KNN)
        assert parsed["--finetune-dataset"] == [dataset] and parsed["--protocol"] == [protocol]


def test_semi_supervised_four_ratios_five_repeats():
    commands = dry_run("semi_supervised.sh")
    evals = [c for c in commands if entry_point(c) == "action_classification.py"]
    assert len(evals) == 2 * 4 * 5
    settings = set()
    for words in evals:
        parsed, dataset, protocol = _check_eval(words, SEMI, view="joint")
        assert dataset == "ntu60"
        assert parsed["--protocol"] == [protocol + "_semi"]
        settings.add((protocol, float(parsed["--data-ratio"][0]), parsed["--seed"][0]))
    assert settings == {
        (p, r, s) for p in ("cross_subject", "cross_view") for r in (0.01, 0.05, 0.1, 0.2) for s in "12345"
    }
    report = commands[-1]
    assert entry_point(report) == "tools.report" and "results/semi.jsonl" in report


def test_transfer_to_pku_mmd_ii():
    commands = dry_run("transfer.sh")
    evals = [c for c in commands if entry_point(c) == "action_classification.py"]
    assert {c[c.index("--pretrained") + 1] for c in evals} == {
        "./checkpoints/ntu60_xsub/checkpoint_0450.pth.tar",
        "./checkpoints/ntu120_xsub/checkpoint_0450.pth.tar",
    }
    for words in evals:
        parsed = flags(words)
        assert_has(parsed, SEMI, words)
        assert parsed["--finetune-dataset"] == ["pku_v2"] and parsed["--protocol"] == ["cross_subject"]
        assert "--transfer" in parsed and "--data-ratio" not in parsed
        source = parsed["--pretrained"][0].split("/")[-2]
        assert parsed["--pretrain-dataset"] == [RUNS[source][0]]
        assert parsed["--checkpoint-path"] == [f"./runs/transfer/{source}_to_pku_v2_xsub"]


def test_no_private_or_misnamed_paths():
    for script in sorted(os.listdir(os.path.join(ROOT, "scripts"))):
        if not script.endswith(".sh"):
            continue
        with open(os.path.join(ROOT, "scripts", script)) as f:
            text = f.read()
        assert "/home/" not in text and "~/" not in text, script
        assert "ntu60_cross_setup" not in text, script


def test_real_run_reports_time_and_results_location():
    # PYTHON=true turns every python command into a no-op, so the script runs its real (non-dry) path.
    proc = run_script("knn_eval.sh", "ntu60_xsub", PYTHON="true", DRY_RUN="0")
    assert proc.returncode == 0, proc.stderr
    assert "Dry run" not in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("Done in 0h 00m ") and last.endswith("Results: results/knn.jsonl"), last


def test_preprocess_all_datasets_into_the_default_folders():
    commands = dry_run("preprocess.sh")
    by_out = {flags(c)["--out-folder"][0]: (entry_point(c), flags(c)) for c in commands}
    assert set(by_out) == {"./data/NTU-RGB-D-60-AGCN", "./data/NTU-RGB-D-120-AGCN", "./data/PKU-MMD-v2-AGCN"}
    script, parsed = by_out["./data/NTU-RGB-D-60-AGCN"]
    assert script == "data_gen.ntu_gendata" and parsed["--dataset"] == ["ntu60"]
    assert parsed["--benchmark"] == ["xsub", "xview"] and "--ignored-sample-path" in parsed
    script, parsed = by_out["./data/NTU-RGB-D-120-AGCN"]
    assert script == "data_gen.ntu_gendata" and parsed["--dataset"] == ["ntu120"]
    assert parsed["--benchmark"] == ["xsub", "xsetup"] and "--ignored-sample-path" in parsed
    assert by_out["./data/PKU-MMD-v2-AGCN"][0] == "data_gen.pku_gendata"


def test_every_evaluation_writes_its_own_run_folder():
    folders = []
    for script in ("linear_eval.sh", "knn_eval.sh", "semi_supervised.sh", "transfer.sh"):
        for words in dry_run(script):
            if entry_point(words) in ("action_classification.py", "knn_eval.py"):
                folder = flags(words)["--checkpoint-path"][0]
                assert folder.startswith("./runs/")
                folders.append(folder)
    assert len(folders) == len(set(folders)) == 10 + 5 + 40 + 2


def test_entry_points_accept_the_scripts_command_lines():
    # The printed command lines parse with the entry points' own parsers and resolve to the stage
    # the script means; the resolved values are those of docs/published-behaviour.md §4.
    for words in dry_run("pretrain.sh"):
        args = resolved(words)
        assert (args.lr, args.batch_size, args.contrast_k, args.topk, args.mlp) == (0.01, 64, 16384, 8192, True)
        assert {451: [351], 1001: [801]}[args.epochs] == args.schedule
    stages = {"linear_eval.sh": "linear", "semi_supervised.sh": "semi", "transfer.sh": "transfer"}
    for script, stage in stages.items():
        for words in dry_run(script):
            if entry_point(words) != "action_classification.py":
                continue
            args = resolved(words)
            assert args.stage == stage
            assert args.finetune == (stage != "linear")
            assert (args.epochs, args.schedule, args.weight_decay) == (80, [50, 70], 0.0)
            assert args.lr == (0.1 if stage == "linear" else 0.01)
    for words in dry_run("knn_eval.sh"):
        if entry_point(words) == "knn_eval.py":
            args = resolved(words)
            assert args.knn_neighbours == 1 and args.view == "joint"


def test_published_scripts_pass_only_choices_and_no_preset_value():
    # Settings come from the preset table; a script retyping one could drift from it unseen.
    choices = {
        "--pre-dataset",
        "--protocol",
        "--finetune-dataset",
        "--pretrained",
        "--view",
        "--data-ratio",
        "--transfer",
        "--pretrain-dataset",
        "--seed",
        "-j",
        "--device",
        "--resume",
        "--checkpoint-path",
        "--results",
        "--fresh",
    }
    for script in ("pretrain.sh", "linear_eval.sh", "knn_eval.sh", "semi_supervised.sh", "transfer.sh"):
        for knob in ("RESUME", "FRESH"):
            for words in dry_run(script, DEVICE="cpu", **{knob: "1"}):
                if entry_point(words) in ("pretrain_cmd.py", "action_classification.py", "knn_eval.py"):
                    extra = set(flags(words)) - choices
                    assert not extra, f"{script} passes preset settings {sorted(extra)}: {shlex.join(words)}"
    for script in sorted(os.listdir(os.path.join(ROOT, "scripts"))):
        if script.endswith(".sh"):
            with open(os.path.join(ROOT, "scripts", script)) as f:
                code = "\n".join(line for line in f.read().splitlines() if not line.lstrip().startswith("#"))
            for value in ("16384", "8192", "451", "1001"):
                assert value not in code, f"scripts/{script} retypes the preset value {value}"


def test_ratios_at_the_ends_of_the_range_are_taken():
    commands = dry_run("semi_supervised.sh", "ntu60_xsub", RATIOS="1 .5 1.0 0.001", SEEDS="1")
    ratios = [flags(c)["--data-ratio"][0] for c in commands if entry_point(c) == "action_classification.py"]
    assert ratios == ["1", ".5", "1.0", "0.001"]


def in_a_copy(tree, script, *args, **env):
    """(exit status, stdout, stderr) of `scripts/<script> args` run for real (PYTHON=true: every python
    command does nothing) in a copy of scripts/ under `tree`, so that its folders are the test's own."""
    proc = run_script(script, *args, root=with_scripts(tree), **{"DRY_RUN": "0", "PYTHON": "true", **env})
    return proc.returncode, proc.stdout, proc.stderr


# each script's runs given, and the output folder of its second run
SECOND_RUN = {
    "pretrain.sh": (["ntu60_xsub", "ntu60_xview"], {}, "checkpoints/ntu60_xview"),
    "linear_eval.sh": (["ntu60_xsub", "ntu60_xview"], {"VIEWS": "joint"}, "runs/linear/ntu60_xview_joint"),
    "knn_eval.sh": (["ntu60_xsub", "ntu60_xview"], {}, "runs/knn/ntu60_xview"),
    "semi_supervised.sh": (["ntu60_xsub"], {"RATIOS": "0.1", "SEEDS": "1 2"}, "runs/semi/ntu60_xsub_ratio0.1_seed2"),
    "transfer.sh": (["ntu60_xsub", "ntu120_xsub"], {}, "runs/transfer/ntu120_xsub_to_pku_v2_xsub"),
}


def test_every_published_script_refuses_a_later_runs_occupied_folder_before_its_first_run(tmp_path):
    # an interrupted run leaves settings.json alone (no result, no checkpoint): that too is an earlier run
    for script, (runs, env, second) in SECOND_RUN.items():
        tree = tmp_path / script
        (tree / second).mkdir(parents=True)
        (tree / second / "settings.json").write_text("{}")
        status, out, err = in_a_copy(tree, script, *runs, **env)
        assert status == 2 and f"./{second} holds an earlier run" in err, (script, err)
        assert not [line for line in out.splitlines() if line.startswith("+ ")], (script, out)
        assert os.listdir(tree / second) == ["settings.json"]


def test_fresh_and_resume_go_on_in_a_real_run(tmp_path):
    # the dry runs above skip the occupied-folder check; here the scripts run (PYTHON=true) and get past it
    (tmp_path / "runs" / "knn" / "ntu60_xsub").mkdir(parents=True)
    (tmp_path / "runs" / "knn" / "ntu60_xsub" / "settings.json").write_text("{}")
    status, _, err = in_a_copy(tmp_path, "knn_eval.sh", "ntu60_xsub")
    assert status == 2 and "holds an earlier run" in err
    for switch in ("FRESH", "RESUME"):  # RESUME: a run stopped without a checkpoint starts afresh
        status, out, err = in_a_copy(tmp_path, "knn_eval.sh", "ntu60_xsub", **{switch: "1"})
        assert status == 0, (switch, err)
        (knn,) = [shlex.split(line[2:]) for line in out.splitlines() if "knn_eval.py" in line]
        assert "--fresh" in knn and "--resume" not in knn, switch
        assert out.strip().splitlines()[-1].startswith("Done in ")


def test_every_evaluation_sweep_skips_a_finished_run_under_resume_and_goes_on(tmp_path):
    for script, (runs, env, second) in SECOND_RUN.items():
        if script == "pretrain.sh":
            continue  # tests above: a pretraining resumes from its checkpoint
        tree = tmp_path / script
        with_scripts(tree)
        first = [flags(c)["--checkpoint-path"][0] for c in dry_run(script, *runs, **env) if "--checkpoint-path" in c][0]
        (tree / first).mkdir(parents=True)
        for name in ("settings.json", "result.jsonl"):
            (tree / first / name).write_text("{}")
        commands = dry_run(script, *runs, root=tree, RESUME="1", **env)
        folders = [flags(c)["--checkpoint-path"][0] for c in commands if "--checkpoint-path" in c]
        assert folders == [f"./{second}"], (script, folders)
        assert entry_point(commands[-1]) == "tools.report"


def test_each_run_gets_its_seed_and_each_stage_its_results_file():
    for script, stage, seeds in [
        ("pretrain.sh", None, {"42"}),
        ("linear_eval.sh", "linear", {"42"}),
        ("knn_eval.sh", "knn", None),  # no --seed: knn_eval.py fixes its own, 42, as published
        ("transfer.sh", "transfer", {"42"}),
        ("semi_supervised.sh", "semi", {"1", "2", "3", "4", "5"}),
    ]:
        commands = dry_run(script)
        runs = [c for c in commands if entry_point(c) in ("pretrain_cmd.py", "action_classification.py", "knn_eval.py")]
        if seeds is not None:
            assert {flags(c)["--seed"][0] for c in runs} == seeds, script
        if stage is not None:
            assert {flags(c)["--results"][0] for c in runs} == {f"results/{stage}.jsonl"}, script
            assert commands[-1][commands[-1].index("tools.report") + 1 :] == [f"results/{stage}.jsonl"], script


def test_preprocess_gives_each_dataset_its_own_raw_files():
    env = dict(NTU60_RAW="r60", NTU60_MISSING="m60", NTU120_RAW="r120", NTU120_MISSING="m120", PKU_RAW="rpku")
    for given, expected in (({}, None), (env, env)):
        by_dataset = {}
        for c in dry_run("preprocess.sh", **given):
            parsed = flags(c)
            name = parsed["--dataset"][0] if "--dataset" in parsed else "pku_v2"
            by_dataset[name] = (parsed["--data-path"], parsed.get("--ignored-sample-path"))
        expected = expected or dict(
            NTU60_RAW="./raw/nturgb+d_skeletons",
            NTU60_MISSING="./raw/NTU_RGBD_samples_with_missing_skeletons.txt",
            NTU120_RAW="./raw/nturgb+d120_skeletons",
            NTU120_MISSING="./raw/NTU_RGBD120_samples_with_missing_skeletons.txt",
            PKU_RAW="./raw/PKU-MMD-v2",
        )
        assert by_dataset == {
            "ntu60": ([expected["NTU60_RAW"]], [expected["NTU60_MISSING"]]),
            "ntu120": ([expected["NTU120_RAW"]], [expected["NTU120_MISSING"]]),
            "pku_v2": ([expected["PKU_RAW"]], None),
        }
