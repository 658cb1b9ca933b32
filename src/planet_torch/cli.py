"""The `planet` command: one place that parses the command line.

    planet train [--preset paper|debug|toy] [--task T] [--seed N] [--<section>.<field> V ...]
    planet train --resume RUN_DIR
    planet tasks
    planet test RUN_DIR [--episodes N] [--video] [--render]
    planet predict RUN_DIR [--sequences S] [--context C] [--horizon H]
    planet plot RUN_DIR [RUN_DIR ...] [--output PATH]
    planet bench [--quick] [--json PATH]
    planet sweep --tasks T1,T2 [--seeds 0-4] [--grid FIELD=V1,V2 ...] [planet train flags]
    planet sweep --resume SWEEP_DIR
    planet report SWEEP_DIR [RUN_DIR ...] [--output DIR]

Every config field is a flag (`--train.batch_size 16`, `--planner.horizon 8`), shown by
`planet train --help` with its default and meaning. A preset is applied first, then flags.
Errors in user input end with one line on stderr and a non-zero exit, never a traceback
(set PLANET_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import inspect
import itertools
import json
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from planet_torch import __version__
from planet_torch import config as config_lib

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (usage is in `--help`)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _field_doc(cls: type, name: str) -> str:
    """The first paragraph of the docstring written under a dataclass field, on one line,
    read from the class source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, after in itertools.pairwise(body):
        target = getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == name and isinstance(after, ast.Expr):
            doc = str(after.value.value)  # type: ignore[attr-defined]
            return " ".join(doc.split("\n\n")[0].split())
    return ""


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_optional_int(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or none, got {text!r}") from None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int, "float": float, "str": str, "bool": _parse_bool,
    "int | None": _parse_optional_int,
}


def _add_config_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per config field (but those in `skip`); defaults are left unset so a preset
    can fill them."""
    top = parser.add_argument_group("run")
    for f in dataclasses.fields(config_lib.Config):
        if f.name in config_lib.SECTIONS or f.name in skip:
            continue
        top.add_argument(f"--{f.name}", dest=f.name, type=_PARSERS[str(f.type)],
                         default=argparse.SUPPRESS, metavar=str(f.type).upper(),
                         help=f"{_field_doc(config_lib.Config, f.name)} "
                              f"(default: {f.default})")
    for section in config_lib.SECTIONS:
        _add_section_flags(parser, section)


def _add_section_flags(parser: argparse.ArgumentParser, section: str,
                       default_text: str | None = None) -> None:
    """One flag per field of a config section, `--planner.candidates`; unset ones are left
    out of the namespace. `default_text` replaces "(default: VALUE)" in their help."""
    cls = config_lib.SECTIONS[section]
    group = parser.add_argument_group(section)
    for f in dataclasses.fields(cls):
        group.add_argument(f"--{section}.{f.name}", dest=f"{section}.{f.name}",
                           type=_PARSERS[str(f.type)], default=argparse.SUPPRESS,
                           metavar=str(f.type).split(" ")[0].upper(),
                           help=f"{_field_doc(cls, f.name)} "
                                f"({default_text or f'default: {f.default}'})")


def _field_type(key: str) -> str:
    """The annotation of the config field `key` (`train.batch_size`, `device`)."""
    section, _, name = key.rpartition(".")
    cls = config_lib.SECTIONS.get(section, config_lib.Config if not section else None)
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)} if cls else {}
    if name not in fields or (not section and name in config_lib.SECTIONS):
        raise ValueError(f"unknown config field {key!r}; the fields are the flags of "
                         "planet train --help")
    return fields[name]


def _field_value(key: str, text: str) -> Any:
    """`text` as a value of the config field `key`; ValueError naming both if it is not."""
    try:
        return _PARSERS[_field_type(key)](text)
    except (argparse.ArgumentTypeError, TypeError) as error:
        raise ValueError(f"bad value {text!r} for {key}: {error}") from None
    except ValueError as error:
        if "unknown config field" in str(error):
            raise
        raise ValueError(f"bad value {text!r} for {key}: expected {_field_type(key)}") from None


def _assignments(args: argparse.Namespace) -> dict[str, Any]:
    """The config flags given on the command line, as `{"train.batch_size": 8, ...}`."""
    return {k: v for k, v in vars(args).items()
            if k in {f.name for f in dataclasses.fields(config_lib.Config)} or "." in k}


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the paper's tasks with their action repeat and episode length."""
    from planet_torch.envs import FAMILIES

    print(f"{'task':<20}{'action repeat':>15}{'env steps':>11}{'agent steps':>13}")
    for family in FAMILIES:
        for task in family.named_tasks:
            repeat = family.default_action_repeat(task)
            steps = family.default_episode_steps(task)
            print(f"{task:<20}{repeat:>15}{steps:>11}{-(-steps // repeat):>13}")
    print(f"\nAlso: {', '.join(family.summary for family in FAMILIES if family.summary)}.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new run, or continue one with --resume."""
    from planet_torch.assembly import check_config
    from planet_torch.evaluate import Interrupted
    from planet_torch.runs import new_run_dir, resume_config
    from planet_torch.train import Trainer

    if args.resume is not None:
        run_dir = Path(args.resume)
        if args.preset is not None:
            raise ValueError("--preset cannot be used with --resume: the run continues with its "
                             "saved config; give single flags to change what may change")
        # Checked before anything is written; the Trainer saves the config once resumed.
        cfg = resume_config(run_dir, _assignments(args))
    else:
        cfg = config_lib.override(config_lib.PRESETS[args.preset or "paper"](),
                                  _assignments(args))
        check_config(cfg)  # an unknown task or a misfit fails here, before any folder exists
        made = [p for p in (Path(cfg.logdir), *Path(cfg.logdir).parents) if not p.exists()]
        run_dir = new_run_dir(Path(cfg.logdir), cfg.task, cfg.seed)
    print(f"planet-torch {__version__}: {'resuming' if args.resume else 'new run'} {run_dir}")
    print(yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False), end="")
    try:
        trainer = Trainer(cfg, run_dir, resume=args.resume is not None)
    except Exception:
        if args.resume is None:  # a run that never started leaves no folder behind
            shutil.rmtree(run_dir, ignore_errors=True)
            for folder in made:  # the logdir and its parents that this call created
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    if args.resume is None and args.preset in (None, "paper") and trainer.device.type == "cpu":
        print(_cpu_cost_line(trainer), flush=True)
    threading.excepthook = _quiet_disk_errors
    try:
        counters = trainer.run()
    except Interrupted:
        return EXIT_INTERRUPTED
    except OSError as error:  # a full disk or a folder gone unwritable: nothing done is lost
        raise OSError(error.errno, f"{error}; the last checkpoint and every finished episode "
                      f"are kept: once fixed, continue with planet train --resume {run_dir}"
                      ) from error
    print(f"done: {counters.episodes} episodes, {counters.env_steps} env steps, "
          f"{counters.updates} updates; run folder {run_dir}")
    return 0


def _quiet_disk_errors(args: threading.ExceptHookArgs) -> None:
    """Keep quiet about an OSError that a background thread hands on to the main thread.

    TensorBoard's event writer thread keeps the error that ended it in its `exception`
    attribute, and the main thread raises it at its next write and reports it in one line
    (a full disk, for one); printing its traceback too would bury that line. Any other
    error of any thread is printed as Python always does.
    """
    handed_on = getattr(args.thread, "exception", None) is args.exc_value
    if not (handed_on and isinstance(args.exc_value, OSError)):
        threading.__excepthook__(args)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _cpu_cost_line(trainer: Any) -> str:
    """One line: what the paper's run takes on this CPU, measured now, and the way out."""
    from planet_torch.assembly import agent_steps_per_episode
    from planet_torch.bench import estimate_run

    cfg = trainer.cfg
    steps = agent_steps_per_episode(cfg)
    env = trainer.envs[trainer.tasks[0]]
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(5):
        env.step(env.action_space.sample())
    env_step_s = (time.perf_counter() - start) / 5
    estimate = estimate_run(cfg, trainer.model.action_size, steps, env_step_s)
    return (f"planet train: the paper's settings on this CPU take about "
            f"{_duration(estimate.seconds)} ({estimate.updates:,} updates at "
            f"{estimate.update_s:.1f} s, {estimate.plans:,} planning calls at "
            f"{estimate.plan_s:.2f} s, measured just now); --preset cpu is sized for a CPU")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _output_folder(args: argparse.Namespace, run_dir: Path, *subfolders: str) -> Path:
    """--output or the run folder, checked writable (and its subfolders) before any work."""
    from planet_torch.outputs import ensure_writable

    output = ensure_writable(Path(args.output) if args.output else run_dir)
    for name in subfolders:
        ensure_writable(output / name)
    return output


def _stem(kind: str, run: Any, task: str) -> str:
    """`<kind>-<checkpoint tag>` for a file of a trained run's results, with `-<task>` for a
    run of several tasks."""
    return f"{kind}-{run.tag}" + (f"-{task}" if len(run.tasks) > 1 else "")


def _report_written(paths: Sequence[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


def cmd_test(args: argparse.Namespace) -> int:
    """Noise-free test episodes of a trained run: returns, a JSON file, videos, a window."""
    from planet_torch import scoring, video
    from planet_torch.evaluate import Interrupted
    from planet_torch.trained import load_run
    from planet_torch.viewer import Viewer, check_display

    if args.render:
        check_display()  # before minutes of loading and playing
    planner = {key: value for key, value in vars(args).items() if key.startswith("planner.")}
    run = load_run(args.run_dir, args.checkpoint, args.device, args.precision, planner)
    output = _output_folder(args, run.run_dir, *([video.VIDEOS_DIR] if args.video else []))
    tasks = [run.check_task(args.task)] if args.task else list(run.tasks)
    viewer = Viewer(f"planet test {run.run_dir.name}") if args.render else None
    written = []
    try:
        for task in tasks:
            result, played = scoring.score(
                run, args.episodes, args.seed,
                on_step=None if viewer is None else viewer.on_step,
                should_stop=None if viewer is None else (lambda: viewer.closed), task=task)
            print(result.summary())
            stem = _stem("test", run, task)
            written.append(scoring.write_result(result, output / f"{stem}.json"))
            if args.video:
                frames = video.tile(video.stack_episodes([e.obs for e in played.episodes]))
                written += video.write_videos(frames, output / video.VIDEOS_DIR / stem,
                                              played.fps)
    except Interrupted:
        print("planet test: the window was closed; stopped without results", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if viewer is not None:
            viewer.close()
    _report_written(written)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Open-loop video prediction of a trained run, with its error per step ahead."""
    from planet_torch import plot, predict, scoring, video
    from planet_torch.trained import episode_rows, load_run, play

    run = load_run(args.run_dir, args.checkpoint, args.device, args.precision)
    task = run.check_task(args.task or run.tasks[0])
    predict.fit_horizon(episode_rows(run.cfg, task), args.context, args.horizon)  # fail early
    output = _output_folder(args, run.run_dir, video.VIDEOS_DIR)
    seed = scoring.default_seed(run) if args.seed is None else args.seed
    played = play(run, list(range(seed, seed + args.sequences)), desc="predict", task=task)
    rows = min(e.length for e in played.episodes)
    horizon = predict.fit_horizon(rows, args.context, args.horizon)
    if horizon < args.horizon:
        print(f"note: the episodes have {rows} frames, so {horizon} frames are predicted "
              f"after the {args.context} context frames instead of {args.horizon}",
              file=sys.stderr)
    prediction = predict.predict_episodes(run.model, played.episodes, args.context, horizon,
                                          seed)
    mse = prediction.ahead_mse()
    stem = _stem("open_loop", run, task)
    written = video.write_videos(prediction.grid(), output / video.VIDEOS_DIR / stem,
                                 played.fps)
    written.append(predict.write_error_csv(prediction, output / f"{stem}_error.csv"))
    written += plot.prediction_error(
        mse, output / f"{stem}_error.png",
        f"{task}: open-loop prediction after {args.context} context frames")
    print(f"{task}: open-loop MSE per pixel {mse[0]:.5f} at 1 step ahead, "
          f"{mse[-1]:.5f} at {len(mse)} steps ahead ({args.sequences} sequences; columns: "
          "truth | prediction | difference)")
    _report_written(written)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Learning curves of one or more runs as PNG and SVG."""
    from planet_torch import plot
    from planet_torch.outputs import ensure_writable

    run_dirs = [Path(p) for p in args.run_dirs]
    if args.output is not None:
        output = Path(args.output)
    else:
        output = (run_dirs[0] if len(run_dirs) == 1 else Path.cwd()) / "learning_curves.png"
    plot.figure_paths(output)  # a wrong suffix fails before the folder is touched
    for run_dir in run_dirs:  # so does a folder that is not a run
        plot.read_run(run_dir)
    ensure_writable(output.parent)
    _report_written(plot.learning_curves(run_dirs, output))
    return 0


def _import_sweep_runner() -> Any:
    """`sweep_runner`, or a one-line error naming the extra that brings Ray Tune."""
    try:
        from planet_torch import sweep_runner
    except ImportError as error:
        if (error.name or "").split(".")[0] != "ray":
            raise
        raise ValueError("planet sweep needs Ray Tune: pip install 'planet-torch[sweep]' "
                         "(or 'ray[tune]')") from None
    return sweep_runner


def _new_sweep_spec(args: argparse.Namespace) -> Any:
    """The sweep asked for on the command line, checked before Ray starts."""
    from planet_torch import sweep
    from planet_torch.assembly import agent_steps_per_episode

    if args.tasks is None:
        raise ValueError("--tasks is required (e.g. --tasks cartpole-swingup,cheetah-run), or "
                         "--resume SWEEP_DIR")
    assignments = {k: v for k, v in _assignments(args).items() if k != "logdir"}
    spec = sweep.SweepSpec(
        name=args.name or "", tasks=sweep.parse_tasks(args.tasks),
        seeds=sweep.parse_seeds(args.seeds), preset=args.preset or "paper",
        assignments=assignments, grid=sweep.parse_grid(args.grid or [], _field_value),
        max_failures=args.max_failures, address=args.address, command=args.command_line)
    for trial in spec.trials():  # a bad value or an unknown task fails here, in one line
        agent_steps_per_episode(spec.run_config(trial, Path(".")))
    return spec


def _print_report(paths: Sequence[Path], output: Path) -> bool:
    """Print the report of sweep and run folders, write its files and curves into `output`;
    True if no run failed."""
    from planet_torch import plot, report

    summaries = report.summarise(paths)
    rows = report.group_rows(summaries)
    print(report.text_table(report.table(rows)))
    failed = report.errors(summaries)
    for line in failed:
        print(f"failed: {line}")
    written = report.write_report(rows, summaries, output)
    curves = [Path(s.run_dir) for s in summaries if s.episodes > 0]
    if curves:
        labels = {Path(s.run_dir): ", ".join(f"{k}={v}" for k, v in s.point.items())
                  for s in summaries}
        written += plot.learning_curves(curves, output / "learning_curves.png", labels)
    _report_written(written)
    return not failed


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run tasks x seeds x a grid of flags as Ray Tune trials, or continue a sweep."""
    from planet_torch import sweep

    sweep_runner = _import_sweep_runner()
    if args.resume is not None:
        given = [flag for flag, value in (("--tasks", args.tasks), ("--grid", args.grid),
                                          ("--name", args.name), ("--preset", args.preset))
                 if value] + [f"--{k}" for k in _assignments(args)]
        if given:
            raise ValueError(f"--resume continues a sweep with its own settings; leave out "
                             f"{', '.join(given)}")
        sweep_dir = Path(args.resume).resolve()
        spec = sweep.load_spec(sweep_dir)
    else:
        spec = _new_sweep_spec(args)
        spec = dataclasses.replace(spec, name=spec.name or sweep_runner.default_name(spec))
    sweep_runner.start_ray(spec.address)
    try:
        if args.resume is None:
            spec = sweep_runner.resolve_resources(spec, args.cpus_per_run, args.gpus_per_run,
                                                  sweep_runner.cluster_resources())
            logdir = Path(_assignments(args).get("logdir", config_lib.Config.logdir))
            sweep_dir = sweep.new_sweep_dir(logdir, spec.name)
            sweep.save_spec(spec, sweep_dir)
        trials = len(spec.trials())
        print(f"planet-torch {__version__}: {'resuming' if args.resume else 'new'} sweep "
              f"{sweep_dir}: {trials} trials, {spec.cpus_per_run:g} CPUs and "
              f"{spec.gpus_per_run:g} GPUs per run; watch with tensorboard --logdir "
              f"{sweep_dir}", flush=True)
        sweep_runner.run(spec, sweep_dir, resume=args.resume is not None)
    finally:
        sweep_runner.stop_ray()
    print()
    clean = _print_report([sweep_dir], sweep_dir)
    unfinished = sweep_runner.unfinished(spec, sweep_dir)
    if unfinished:
        print(f"planet sweep: {len(unfinished)} trials unfinished; continue with planet sweep "
              f"--resume {sweep_dir}", file=sys.stderr)
    return 0 if clean and not unfinished else EXIT_FAILURE


def cmd_report(args: argparse.Namespace) -> int:
    """Summarise sweeps and runs per task and grid point, against the paper's Table 1."""
    from planet_torch import sweep
    from planet_torch.outputs import ensure_writable
    from planet_torch.runs import check_run_dir

    paths = [Path(p) for p in args.paths]
    for path in paths:  # each is a sweep or a run folder, checked before any output
        if not sweep.is_sweep_dir(path):
            check_run_dir(path)
    if args.output is not None:
        output = Path(args.output)
    else:
        output = paths[0] if len(paths) == 1 and sweep.is_sweep_dir(paths[0]) else Path.cwd()
    ensure_writable(output)
    _print_report(paths, output)
    return 0


def _bench_sizes(batch: list[int] | None, length: list[int] | None
                 ) -> tuple[tuple[int, int], ...] | None:
    """Pairs (B, L) from --batch and --length; a single value pairs with every other."""
    if batch is None and length is None:
        return None
    batch = batch or [50]
    length = length or [50]
    if len(batch) != len(length) and 1 not in (len(batch), len(length)):
        raise ValueError(f"--batch and --length need as many values as each other (or one), "
                         f"got {len(batch)} and {len(length)}")
    count = max(len(batch), len(length))
    return tuple(zip(batch * count if len(batch) == 1 else batch,
                     length * count if len(length) == 1 else length, strict=True))


def cmd_bench(args: argparse.Namespace) -> int:
    """Time an update, planning calls, environment steps and replay sampling here."""
    from planet_torch import bench
    from planet_torch.acceleration import resolve_device
    from planet_torch.outputs import ensure_writable

    device = resolve_device(args.device)
    settings = bench.BenchSettings.for_device(device, args.quick, args.repeats)
    changes: dict[str, Any] = {
        "sizes": _bench_sizes(args.batch, args.length), "agents": args.agents,
        "warmup": args.warmup, "task": args.task, "env_steps": args.env_steps,
        "precision": args.precision, "compile": args.compile or None,
        "episode": args.episode or None,
    }
    settings = dataclasses.replace(settings, **{k: (tuple(v) if isinstance(v, list) else v)
                                                for k, v in changes.items() if v is not None})
    json_path = None if args.json is None else Path(args.json)
    if json_path is not None:
        ensure_writable(json_path.parent)
    info = bench.machine(device)
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} on {device}"
          f"{' (' + info['gpu'] + ')' if 'gpu' in info else ''}; {settings.repeats} repeats "
          f"after {settings.warmup} warm-up")
    print(bench.TABLE_HEADER)
    measurements = []
    for measurement in bench.run(settings):
        print(bench.table_row(measurement), flush=True)
        measurements.append(measurement)
    if json_path is not None:
        document = bench.report(settings, measurements, args.command_line, info)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        _report_written([json_path])
    return 0


def _add_trained_run_arguments(parser: argparse.ArgumentParser) -> None:
    """RUN_DIR and the flags shared by the tools that act with a trained agent."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by planet train")
    parser.add_argument("--checkpoint", metavar="PATH", default=None,
                        help="checkpoint file to use instead of the run's latest; must be "
                             "of the run's task")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda if available; the default), cpu, cuda or cuda:N; "
                             "any checkpoint loads on any device")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the first episode (the others count up from it); "
                             "default: the run's test seeds, far from its training seeds")
    parser.add_argument("--precision", choices=config_lib.PRECISIONS, default=None,
                        help="precision of planning (default: the run's); bf16 is faster "
                             "and planned as well as fp32 in benchmarks/precision_learning.md")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="folder for the results (default: RUN_DIR)")
    parser.add_argument("--task", default=None,
                        help="for a run of several tasks, the one to play (default: test "
                             "plays each in turn, predict the first)")


def _add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int], summary: str,
                 description: str) -> argparse.ArgumentParser:
    """A subcommand parser that runs `func`; `summary` is its line in `planet --help`."""
    parser = sub.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of `planet` and its subcommands."""
    parser = _Parser(
        prog="planet", description="PlaNet: learn latent dynamics from pixels, plan with CEM.")
    parser.add_argument("--version", action="version", version=f"planet-torch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train an agent (new run, or --resume)",
        description="Train PlaNet. A preset sets every field; flags override it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--preset", choices=sorted(config_lib.PRESETS), default=None,
                       help="starting configuration: paper (the paper's settings, the "
                            "default; days on a CPU), cpu (cartpole-swingup sized for two CPU "
                            "cores, about an hour), debug (tiny, seconds on a CPU), toy "
                            "(learns toy-reach in minutes)")
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR from its latest checkpoint; flags "
                            "may change the device, precision, compile, planner, optim, "
                            "objective and train sections, and are refused for the task, "
                            "seed, logdir, env and model")
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)

    tasks = sub.add_parser("tasks", help="list the supported tasks")
    tasks.set_defaults(func=cmd_tasks)

    test = _add_command(
        sub, "test", cmd_test, "score a trained agent on noise-free test episodes",
        "Play noise-free test episodes with a run's latest checkpoint, all environments "
        "stepped and planned together; print the mean, std, min and max return and write "
        "them, with the planner's settings, to OUTPUT/test-epNNNNNN.json (NNNNNN: the "
        "checkpoint's episodes). The --planner.* flags plan with other settings than the "
        "run's, for example the paper's CEM: --planner.candidates 1000 "
        "--planner.iterations 10 --planner.elites 100 --planner.horizon 12.")
    _add_trained_run_arguments(test)
    test.add_argument("--episodes", type=_positive_int, default=10,
                      help="test episodes, played together (default: 10)")
    test.add_argument("--video", action="store_true",
                      help="also write the episodes as a grid video, "
                           "OUTPUT/videos/test-epNNNNNN.mp4 and .gif")
    test.add_argument("--render", action="store_true",
                      help="show the episodes live in a window, real frames beside the "
                           "model's reconstructions (needs a display; try xvfb-run)")
    _add_section_flags(test, "planner", "default: the run's")

    predict = _add_command(
        sub, "predict", cmd_predict, "open-loop video prediction of a trained model",
        "Play noise-free episodes, take one window per episode, filter the first CONTEXT "
        "frames and predict the next HORIZON frames from the actions alone. Writes "
        "OUTPUT/videos/open_loop-epNNNNNN.mp4 and .gif (truth | prediction | difference, one "
        "row per sequence) and the error per step ahead as open_loop-epNNNNNN_error.csv and "
        ".png.")
    _add_trained_run_arguments(predict)
    predict.add_argument("--sequences", type=_positive_int, default=4,
                         help="sequences shown, each from its own episode (default: 4)")
    predict.add_argument("--context", type=_positive_int, default=5,
                         help="frames filtered with the posterior before predicting (default: 5)")
    predict.add_argument("--horizon", type=_positive_int, default=45,
                         help="frames predicted open-loop, shortened to fit the episodes "
                              "(default: 45)")

    plot = _add_command(
        sub, "plot", cmd_plot, "learning curves of runs",
        "Train and test return against environment steps, one panel per task; runs of the "
        "same task as mean and spread; the paper's score as a dashed line.")
    plot.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="run folders")
    plot.add_argument("--output", metavar="PATH", default=None,
                      help="PNG file (an SVG is written beside it); default: "
                           "learning_curves.png in RUN_DIR if one run is given, else in the "
                           "current folder")

    sweep = _add_command(
        sub, "sweep", cmd_sweep, "run tasks x seeds x flag grids on Ray, or --resume one",
        "Run every combination of --tasks, --seeds and --grid as one ordinary run folder "
        "each, in <logdir>/<time>-sweep-<name>/, as Ray Tune trials: on a local Ray "
        "instance, or on a cluster with --address (start it with `ray start --head` on one "
        "node and `ray start --address HEAD:6379` on the others; --logdir must then be on "
        "storage every node reaches). A trial whose worker dies is retried from its own run "
        "folder; a stopped sweep continues with --resume. Any planet train flag applies to "
        "every run. Needs the sweep extra: pip install 'planet-torch[sweep]'.")
    sweep.add_argument("--tasks", default=None,
                       help="comma-separated tasks, one trial each, e.g. "
                            "cartpole-swingup,cheetah-run; a+b is one agent for tasks a and b")
    sweep.add_argument("--seeds", default="0-4",
                       help="seeds as a range or list: 0-4, 0,2,5 (default: 0-4)")
    sweep.add_argument("--preset", choices=sorted(config_lib.PRESETS), default=None,
                       help="starting configuration of every run, as for planet train "
                            "(default: paper)")
    sweep.add_argument("--name", default=None,
                       help="the sweep folder's name (default: the task, or N-tasks)")
    sweep.add_argument("--grid", action="append", metavar="FIELD=V1,V2",
                       help="a config field and its values, e.g. planner.horizon=8,12; "
                            "repeat for more fields (every combination runs)")
    sweep.add_argument("--address", default=None,
                       help="join a running Ray cluster: auto or HOST:PORT (default: start "
                            "a local Ray instance sized to this machine)")
    sweep.add_argument("--cpus-per-run", type=float, default=None,
                       help="CPUs per run, and torch threads (default: the cluster's CPUs "
                            "shared among the runs that fit at once)")
    sweep.add_argument("--gpus-per-run", type=float, default=None,
                       help="GPUs per run; fractions pack runs, 0.25 puts four on a GPU "
                            "(default: 1 where GPUs exist, else 0)")
    sweep.add_argument("--max-failures", type=int, default=3,
                       help="retries of a trial whose worker died (default: 3)")
    sweep.add_argument("--resume", metavar="SWEEP_DIR", default=None,
                       help="continue a stopped sweep: finished runs are left untouched, "
                            "unfinished ones continue from their run folders")
    _add_config_flags(sweep, skip=("task", "seed"))

    report = _add_command(
        sub, "report", cmd_report, "summarise sweeps and runs against the paper",
        "Per task (and grid point): seeds, episodes reached, mean and std over seeds of the "
        "final and the best test return, the paper's Table 1 score and the ratio to it. "
        "Printed, and written as report.md, report.csv and report.json with the learning "
        "curves (learning_curves.png and .svg).")
    report.add_argument("paths", metavar="PATH", nargs="+",
                        help="sweep folders (made by planet sweep) and run folders")
    report.add_argument("--output", metavar="DIR", default=None,
                        help="folder for the files (default: the sweep folder when one is "
                             "given, else the current folder)")

    bench = _add_command(
        sub, "bench", cmd_bench, "time updates, planning, environment steps and replay here",
        "Measure one training update per (B, L), one CEM call per number of agents, "
        "environment steps with rendering, replay sampling, with --episode whole training "
        "episodes, and peak memory on this machine; median of the timed repeats after "
        "warm-up.")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto)")
    bench.add_argument("--batch", type=_positive_int, nargs="+", default=None,
                       help="chunks B per update, one timing each (50 16)")
    bench.add_argument("--length", type=_positive_int, nargs="+", default=None,
                       help="chunk lengths L, paired with --batch (50 16)")
    bench.add_argument("--agents", type=_positive_int, nargs="+", default=None,
                       help="agents N per planning call, one timing each (1 10; "
                            "`--agents 1` skips the 10-agent call, ~35 s on two CPU cores)")
    bench.add_argument("--repeats", type=_positive_int, default=None,
                       help="timed calls per update and planning call (3 on CPU, 10 on "
                            "CUDA, 2 with --quick)")
    bench.add_argument("--warmup", type=int, default=None, help="untimed calls first (1)")
    bench.add_argument("--task", default=None,
                       help="task whose environment steps, and with --episode training "
                            "episodes, are timed (cartpole-swingup)")
    bench.add_argument("--env-steps", type=_positive_int, default=None,
                       help="timed agent steps of the task (100)")
    bench.add_argument("--precision", choices=config_lib.PRECISIONS, default=None,
                       help="precision of the update and the planner (fp32)")
    bench.add_argument("--compile", action="store_true",
                       help="torch.compile the update and the planner's rollout, as "
                            "`planet train --compile true` does; warm-up calls compile")
    bench.add_argument("--episode", action="store_true",
                       help="also time whole training episodes of --task: C = 100 updates at "
                            "the first --batch/--length, then one planned episode with "
                            "rendering (a short training run; minutes per episode on a CPU)")
    bench.add_argument("--quick", action="store_true",
                       help="tiny model, planner and batches: a smoke test in seconds")
    bench.add_argument("--json", metavar="PATH", default=None,
                       help="also write the results, machine and command as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `planet` console command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["planet", *argv])
    try:
        return int(args.func(args))
    except (ValueError, OSError, RuntimeError) as error:
        if os.environ.get("PLANET_DEBUG"):
            raise
        print(f"planet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
