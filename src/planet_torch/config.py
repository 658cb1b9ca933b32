"""Every hyperparameter of a run, in typed frozen dataclasses.

Defaults are the paper's values (Hafner et al., 2019, appendix A); the `debug` preset
shrinks everything for smoke tests. A run saves its resolved config as YAML and a resumed
run rebuilds from that file, so what a run did is always on disk beside its results.

Each part of the agent receives only its own section (`make_env(cfg.task, **asdict(cfg.env))`,
`WorldModel(cfg.model, action_size)`, `CEMPlanner(cfg.planner, ...)`), never the whole.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

CONFIG_VERSION = 3
"""Bumped whenever a field moves or changes meaning; older versions are migrated when read
(`MIGRATIONS`), newer ones refused."""

PRECISIONS = ("fp32", "bf16")
"""Values of `Config.precision`: full precision, or bfloat16 autocast (see `acceleration`)."""

OVERSHOOTING_WEIGHTINGS = ("paper", "reference")
"""Values of `ObjectiveConfig.overshooting_weighting` (see `objective.negative_elbo`)."""

INITS = ("torch", "glorot")
"""Values of `ModelConfig.init` (see `initialisation`)."""

COLLECTIONS = ("planner", "random")
"""Values of `TrainConfig.collection`: how training episodes after the seed episodes act."""


Rule = tuple[Callable[[Any], bool], str]
POSITIVE: Rule = (lambda v: v >= 1, "an integer >= 1")
NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
POSITIVE_REAL: Rule = (lambda v: v > 0, "> 0")
OPTIONAL_POSITIVE: Rule = (lambda v: v is None or v >= 1, "an integer >= 1, or none")


def _require(section: str, values: object, **rules: Rule) -> None:
    """Raise ValueError naming the field, its value and the allowed range for a broken rule."""
    for name, (ok, allowed) in rules.items():
        value = getattr(values, name)
        try:
            fine = ok(value) and not isinstance(value, str)
        except TypeError:  # a string or None where a number belongs
            fine = False
        if not fine:
            raise ValueError(f"{section}.{name} must be {allowed}, got {value!r}")


def _require_choice(section: str, values: object, name: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError naming the field, its value and the allowed values unless the field
    holds one of `choices`."""
    value = getattr(values, name)
    if value not in choices:
        raise ValueError(f"{section}.{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class EnvConfig:
    """The task and how it is presented to the agent."""

    action_repeat: int | None = None
    """Environment steps per agent step, R; None takes the task's paper value."""
    episode_steps: int | None = None
    """Environment steps per episode; None takes the task's default (1000 for dm_control)."""

    def __post_init__(self) -> None:
        _require("env", self, action_repeat=OPTIONAL_POSITIVE, episode_steps=OPTIONAL_POSITIVE)


@dataclass(frozen=True)
class ModelConfig:
    """Design and sizes of the world model (paper sections 2 and 3 and appendix A)."""

    kind: str = "rssm"
    """Latent dynamics (paper figure 2): `rssm` deterministic belief and stochastic state
    (the paper's agent), `ssm` stochastic state only, `drnn` deterministic belief only (no
    KL term). `world_model.DYNAMICS` lists every kind; docs/elbo.md gives each one's bound."""
    belief_size: int = 200
    """Deterministic belief h_t: GRU units (unused by `ssm`)."""
    state_size: int = 30
    """Stochastic state s_t: dimensions of the diagonal Gaussian (unused by `drnn`)."""
    hidden_size: int = 200
    """Dense layers of the transition, prior and posterior networks."""
    depth: int = 32
    """Channel multiplier of encoder and decoder: conv 1x,2x,4x,8x; embedding 32x (1024)."""
    reward_layers: int = 2
    """Hidden layers of the reward MLP (paper text: 2; official code: 3)."""
    reward_units: int = 200
    """Units per hidden layer of the reward MLP (paper text: 200; official code: 300)."""
    min_std: float = 0.1
    """Floor added to softplus for the state standard deviation."""
    bit_depth: int = 5
    """Bits per colour channel of the images the model sees and draws (1 to 8)."""
    init: str = "torch"
    """Initial weights: `torch` PyTorch's layer defaults, `glorot` the official code's
    (Glorot uniform kernels, zero biases, GRU gate biases 1). `torch` learned as well or
    better on 3 seeds of the cpu preset; the numbers are in `initialisation`."""

    @property
    def embed_size(self) -> int:
        """Encoder output size e_t: 256 channels x 2 x 2 at depth 32, i.e. 32 * depth."""
        return 32 * self.depth

    def __post_init__(self) -> None:
        _require("model", self, belief_size=POSITIVE, state_size=POSITIVE,
                 hidden_size=POSITIVE, depth=POSITIVE, reward_layers=POSITIVE,
                 reward_units=POSITIVE, min_std=POSITIVE_REAL,
                 bit_depth=(lambda v: 1 <= v <= 8, "an integer in 1..8"))
        _require_choice("model", self, "init", INITS)


@dataclass(frozen=True)
class ObjectiveConfig:
    """Terms and weights of the negative ELBO (paper equation 3 and section 4)."""

    free_nats: float = 3.0
    """KL(q || p) summed over state dimensions is not penalised below this many nats."""
    reward_scale: float = 10.0
    """Weight of the reward log-likelihood (the official code's value)."""
    overshooting_distance: int = 1
    """Latent overshooting distance D; 1 is the standard one-step KL (the paper's agent)."""
    overshooting_kl_scale: float = 1.0
    """Weight beta of the multi-step KL terms d = 2..D."""
    overshooting_weighting: str = "reference"
    """KL for D > 1: `reference` KL_1 + beta mean KL_d, `paper` (KL_1 + beta sum KL_d) / D (eq. 7).

    d runs over 2..D and every KL_d is a batch mean of max(KL, free nats); `reference` has the
    official code's form, the one-step KL at full weight, and learned better on the cpu
    preset (docs/elbo.md). No effect for D = 1. See `objective.negative_elbo`.
    """

    def __post_init__(self) -> None:
        _require("objective", self, free_nats=NON_NEGATIVE, reward_scale=NON_NEGATIVE,
                 overshooting_distance=POSITIVE, overshooting_kl_scale=NON_NEGATIVE)
        _require_choice("objective", self, "overshooting_weighting", OVERSHOOTING_WEIGHTINGS)


@dataclass(frozen=True)
class OptimConfig:
    """Adam as in the paper's appendix."""

    learning_rate: float = 1e-3
    """Adam step size."""
    adam_eps: float = 1e-4
    """Adam epsilon."""
    grad_clip: float = 1000.0
    """Global gradient norm is clipped to this value."""

    def __post_init__(self) -> None:
        _require("optim", self, learning_rate=POSITIVE_REAL, adam_eps=POSITIVE_REAL,
                 grad_clip=POSITIVE_REAL)


@dataclass(frozen=True)
class PlannerConfig:
    """Planning in latent space (paper section 3): CEM, or random shooting."""

    kind: str = "cem"
    """`cem`, or `random_shooting` (the paper's variant: with --planner.candidates 10000).

    `cem`: the cross-entropy method of section 3. `random_shooting`: the agent-design
    ablation of section 5, the best of J uniformly random sequences in one iteration; the
    paper's evaluates 1000 x 10 = 10000 candidates, as many as CEM in its 10 iterations, so
    reproduce it with `--planner.kind random_shooting --planner.candidates 10000` (iterations
    and elites are then unused). `assembly.PLANNERS` lists every kind.
    """
    horizon: int = 12
    """Planning horizon H in agent steps."""
    iterations: int = 10
    """Optimisation iterations I."""
    candidates: int = 1000
    """Candidate action sequences J per iteration."""
    elites: int = 100
    """Top candidates K refitted to."""
    min_variance: float = 0.0
    """CEM refits sigma = sqrt(elite variance + this); 1e-6 is the official planner's floor,
    0 learned better on 3 seeds of the cpu preset at free nats 3 (median test return 412
    against 338)."""
    cuda_graph: bool = True
    """On CUDA, replay each planning call as a captured CUDA graph; false plans eagerly.

    No effect on a CPU. This path has not yet run on a GPU."""

    def __post_init__(self) -> None:
        _require("planner", self, horizon=POSITIVE, iterations=POSITIVE, candidates=POSITIVE,
                 min_variance=NON_NEGATIVE,
                 elites=(lambda v: 1 <= v <= self.candidates,
                         f"in 1..planner.candidates ({self.candidates})"))


@dataclass(frozen=True)
class TrainConfig:
    """The data collection and update schedule (paper section 5 and appendix A)."""

    seed_episodes: int = 5
    """Episodes of uniformly random actions collected before training."""
    collect_interval: int = 100
    """Gradient updates C between collected episodes."""
    batch_size: int = 50
    """Chunks B per batch."""
    chunk_length: int = 50
    """Consecutive agent steps L per chunk."""
    exploration_noise: float = 0.3
    """Std of the Gaussian noise added to planned actions while collecting."""
    collection: str = "planner"
    """Actions of training episodes after the seed episodes: `planner` (plus noise) or `random`.

    `random` collects every episode with uniformly random actions, as the seed episodes
    are (the paper's "random collection" ablation, section 5); updates and test phases,
    which plan, run as usual.
    """
    episodes: int = 1000
    """Stop after this many training episodes (seed episodes included)."""
    env_steps: int | None = None
    """Stop after this many environment steps, if set (whichever budget ends first)."""
    test_every: int = 25
    """Run test episodes every this many training episodes; 0 disables testing."""
    test_episodes: int = 10
    """Noise-free test episodes per test phase."""
    video_every: int = 2
    """Log an open-loop prediction video every this many test phases; 0 disables."""
    checkpoint_every: int = 10
    """Write a checkpoint every this many training episodes (and on interruption)."""
    replay_capacity: int = 1_000_000
    """Replay capacity in agent steps; the oldest episodes are dropped first."""

    def __post_init__(self) -> None:
        _require("train", self, seed_episodes=POSITIVE, collect_interval=POSITIVE,
                 batch_size=POSITIVE, chunk_length=(lambda v: v >= 2, "an integer >= 2"),
                 exploration_noise=NON_NEGATIVE,
                 episodes=(lambda v: v >= self.seed_episodes,
                           f">= train.seed_episodes ({self.seed_episodes})"),
                 env_steps=OPTIONAL_POSITIVE, test_every=NON_NEGATIVE,
                 test_episodes=(lambda v: v >= 1 or self.test_every == 0,
                                "an integer >= 1 while testing is on (train.test_every > 0)"),
                 video_every=NON_NEGATIVE, checkpoint_every=POSITIVE,
                 replay_capacity=POSITIVE)
        _require_choice("train", self, "collection", COLLECTIONS)


@dataclass(frozen=True)
class Config:
    """A whole run. Top-level fields are the ones a user changes most often."""

    task: str = "cartpole-swingup"
    """Task: one of the paper's six, `domain-task` (dm_control), `gym:ID`, or `toy-reach`;
    several as `a,b,...` (one agent for all of them) or `paper` (the paper's six)."""
    seed: int = 0
    """Seed of environments, model initialisation, replay sampling and planning."""
    device: str = "auto"
    """`auto` (cuda if available, else cpu), `cpu`, `cuda` or `cuda:N`."""
    logdir: str = "runs"
    """Folder under which each run gets its own subfolder."""
    precision: str = "fp32"
    """`fp32` or `bf16` (autocast around the networks; KL and likelihoods stay fp32)."""
    compile: bool = False
    """torch.compile the update and the planner's rollout where supported."""
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        validate(self)


def _debug() -> Config:
    """Tiny sizes and short episodes: a smoke test of every code path in seconds on a CPU."""
    return Config(
        env=EnvConfig(episode_steps=80),
        model=ModelConfig(belief_size=16, state_size=4, hidden_size=16, depth=2,
                          reward_units=16),
        planner=PlannerConfig(horizon=3, iterations=2, candidates=16, elites=4),
        train=TrainConfig(seed_episodes=2, collect_interval=2, batch_size=3, chunk_length=5,
                          episodes=4, test_every=2, test_episodes=1, video_every=1,
                          checkpoint_every=1, replay_capacity=100_000),
    )


def _toy() -> Config:
    """Settings that learn `toy-reach` within a few minutes on two CPU cores.

    A prototype learned a toy-reach-like task with these sizes in about 100 s: the time is
    set by the updates before the decoder starts drawing the dot, the same for B = 8 and 16,
    so the batch is the smallest that learned."""
    return Config(
        task="toy-reach",
        model=ModelConfig(belief_size=64, state_size=16, hidden_size=64, depth=8,
                          reward_units=64),
        planner=PlannerConfig(horizon=10, iterations=5, candidates=200, elites=20),
        train=TrainConfig(seed_episodes=5, collect_interval=50, batch_size=8, chunk_length=16,
                          episodes=24, test_every=8, test_episodes=5, video_every=1,
                          checkpoint_every=4),
    )


def _cpu() -> Config:
    """cartpole-swingup on two CPU cores in about an hour: smaller networks, batches and planner.

    Sized by measurement on an idle 2-core Intel Xeon (AMX, avx512_bf16): an update of 16
    chunks of 32 steps takes 0.32 s at depth 16, a planning call of 300 candidates for 6
    iterations 0.057 s for one agent and 0.51 s for ten, an agent step of the environment
    with rendering 0.014 s. 55 trained episodes of 100 updates and 125 planned steps each
    (about 41 s), plus three test phases of 10 episodes (about 1.4 minutes each), come to
    about 45 minutes there. An earlier version (depth 8, L 50, 30 updates per episode, 200
    candidates) fit an hour on an AMD EPYC and ended below random play: too few updates
    (docs/results.md). So the convolutions are half as wide as the paper's (depth 16), the
    GRU and dense layers have 100 units, chunks are 32 steps, and each episode buys the
    paper's 100 updates. The reward model keeps the paper's 2 x 200: with 2 x 100 the final
    test return of seeds 0, 1, 2 was 371.0, 354.4, 351.0, with 2 x 200 443.7, 398.3, 412.2,
    for about 7 % more time. Free nats are 1, not the paper's 3: a lower floor lets the KL
    term pull the prior, which the planner rolls forward, towards the posterior sooner, at no
    cost in time; at 3 the final test returns of seeds 0, 1, 2 were 443.7, 398.3, 412.2
    (median 412.2), at 1 469.2, 481.3, 447.0 (median 469.2). The target
    (`benchmarks/learning.py`): a noise-free test return of 450 at the end, median of 3 seeds,
    none below 300; the paper's agent reaches 821 after 1000 episodes.
    """
    return Config(
        model=ModelConfig(belief_size=100, hidden_size=100, depth=16),
        objective=ObjectiveConfig(free_nats=1.0),
        planner=PlannerConfig(horizon=12, iterations=6, candidates=300, elites=30),
        train=TrainConfig(seed_episodes=5, collect_interval=100, batch_size=16, chunk_length=32,
                          episodes=60, test_every=20, test_episodes=10, video_every=0,
                          checkpoint_every=5),
    )


PAPER_TASK_SET = "paper"
"""`--task paper`: one agent trained on the paper's six tasks at once."""


def task_list(task: str) -> tuple[str, ...]:
    """The tasks a run's `task` names: `a,b` -> (a, b), `paper` -> the paper's six, in the
    paper's order, and a single name -> (name,). ValueError for an empty or repeated name."""
    if task == PAPER_TASK_SET:
        from planet_torch.envs.dm_control import PAPER_TASKS  # gymnasium, not torch
        return tuple(PAPER_TASKS)
    if "," not in task:
        return (task,)  # whether it exists is the task registry's to say
    names = tuple(name.strip() for name in task.split(","))
    if not all(names):
        raise ValueError(f"task {task!r} has an empty name; list tasks as a,b,c")
    if len(set(names)) < len(names):
        raise ValueError(f"task {task!r} names a task twice")
    return names


PRESETS = {"paper": Config, "debug": _debug, "toy": _toy, "cpu": _cpu}
"""Named starting points; command-line flags are applied on top of one."""

SECTIONS = {"env": EnvConfig, "model": ModelConfig, "objective": ObjectiveConfig,
            "optim": OptimConfig, "planner": PlannerConfig, "train": TrainConfig}


def validate(cfg: Config) -> None:
    """Raise ValueError for settings across sections that cannot run, naming the fields.

    Each section checks its own fields when it is built; this adds what needs two sections.
    """
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be {' or '.join(PRECISIONS)}, got {cfg.precision!r}")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    task_list(cfg.task)
    if cfg.objective.overshooting_distance > 1 and cfg.model.kind == "drnn":
        raise ValueError("latent overshooting compares distributions over the stochastic "
                         "state, which model.kind drnn does not have; use "
                         "objective.overshooting_distance 1 or model.kind rssm or ssm")
    if cfg.objective.overshooting_distance >= cfg.train.chunk_length:
        raise ValueError(f"objective.overshooting_distance must be below train.chunk_length "
                         f"({cfg.train.chunk_length}), got "
                         f"{cfg.objective.overshooting_distance}")


def check_episode_fit(cfg: Config, agent_steps: int, task: str | None = None) -> None:
    """Raise ValueError unless a chunk and an episode fit episodes of `agent_steps` steps
    (of `task`, default the run's `task`).

    A chunk takes L consecutive rows of one episode (T + 1 rows for T agent steps), and the
    replay must hold at least one whole episode.
    """
    task = task or cfg.task
    if cfg.train.chunk_length > agent_steps + 1:
        raise ValueError(f"train.chunk_length must be at most {agent_steps + 1}, the rows of one "
                         f"episode of {task} ({agent_steps} agent steps), got "
                         f"{cfg.train.chunk_length}")
    if cfg.train.replay_capacity < agent_steps:
        raise ValueError(f"train.replay_capacity must be at least one episode of {task}, "
                         f"{agent_steps} agent steps, got {cfg.train.replay_capacity}")


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of a config, with the config version."""
    return {"version": CONFIG_VERSION, **dataclasses.asdict(cfg)}


_YAML_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
    "int | None": (int, type(None))}
"""Python types a field of each annotation may hold in a config file (bool is no int)."""


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):  # a hand-edited file: `model: 5`
        raise ValueError(f"config section {where.rstrip('.')} must be a mapping of its "
                         f"fields, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown config field(s) {', '.join(where + k for k in unknown)}; "
                         f"known: {', '.join(where + k for k in known)}")
    kwargs = {}
    for name, value in values.items():
        section = SECTIONS.get(name) if where == "" else None
        allowed = _YAML_TYPES.get(str(known[name].type), (object,))
        if not section and (not isinstance(value, allowed)
                            or (isinstance(value, bool) and bool not in allowed)):
            raise ValueError(f"config field {where}{name} must be {known[name].type}, "
                             f"got {value!r}")
        kwargs[name] = _build(section, value, f"{name}.") if section else value
    return cls(**kwargs)


def _bit_depth_to_model(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: `objective.bit_depth` became `model.bit_depth` (a property of the
    images the model sees, not of the objective)."""
    objective = dict(data.get("objective", {}))
    model = dict(data.get("model", {}))
    if "bit_depth" in objective:
        model["bit_depth"] = objective.pop("bit_depth")
    return {**data, "objective": objective, "model": model}


def _weighting_of_equation_7(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 -> 3: the default of `objective.overshooting_weighting` became `reference`. A
    version 2 config without the field was written before it existed, when equation 7 as
    written (`paper`) was the only weighting."""
    objective = {"overshooting_weighting": "paper", **data.get("objective", {})}
    return {**data, "objective": objective}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _bit_depth_to_model, 2: _weighting_of_equation_7}
"""Version v -> the function that turns a config dict of version v into one of v + 1."""


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config from `to_dict` output of this or an older version (migrated step by
    step through `MIGRATIONS`); refuse newer or unknown versions and unknown fields."""
    data = dict(data)
    version = data.pop("version", None)
    while isinstance(version, int) and version in MIGRATIONS:
        data, version = MIGRATIONS[version](data), version + 1
    if version != CONFIG_VERSION:
        raise ValueError(f"config version {version} is not supported by this planet-torch "
                         f"(expects {CONFIG_VERSION}); train a new run with this version")
    return _build(Config, data, "")


def save(cfg: Config, path: Path) -> None:
    """Write the config as YAML, atomically: a temporary file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    os.replace(tmp, path)


def load(path: Path) -> Config:
    """Read a config written by `save`."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        mark = getattr(error, "problem_mark", None)
        if mark is not None:  # YAML's own message spans lines and quotes the source
            reason = f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
        raise ValueError(f"cannot read config {path}: {reason}") from error
    if not isinstance(data, dict):
        raise ValueError(f"config {path} is not a mapping")
    return from_dict(data)


def override(cfg: Config, assignments: dict[str, Any]) -> Config:
    """Return cfg with `{"train.batch_size": 8, "task": "x"}` style assignments applied."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in assignments.items():
        section, _, name = key.rpartition(".")
        if section:
            nested.setdefault(section, {})[name] = value
        else:
            top[name] = value
    for section, values in nested.items():
        top[section] = replace(getattr(cfg, section), **values)
    return replace(cfg, **top)


FIXED_ON_RESUME = ("task", "seed", "logdir", "env.", "model.")
"""Fields (or whole sections, ending in ".") that a resumed run keeps: the trained weights,
the episodes on disk and the run folder were made with them. Everything else (device,
precision, compile, the planner, the optimiser, the objective, the training
schedule and budget) may change on `--resume`."""


def field_value(cfg: Config, key: str) -> Any:
    """The value of a field named as on the command line (`train.batch_size`, `task`)."""
    section, _, name = key.rpartition(".")
    return getattr(getattr(cfg, section) if section else cfg, name)


def resume_override(saved: Config, assignments: dict[str, Any]) -> Config:
    """The saved config with the flags given on `--resume` applied.

    Raises ValueError, naming the flag, for a change to a field in `FIXED_ON_RESUME`; giving
    such a field its saved value is allowed.
    """
    for key, value in assignments.items():
        fixed = any(key == f or (f.endswith(".") and key.startswith(f)) for f in FIXED_ON_RESUME)
        if fixed and value != field_value(saved, key):
            raise ValueError(f"--{key} {value} cannot be used with --resume: the run was trained "
                             f"with {key} = {field_value(saved, key)!r}, which its checkpoint and "
                             "episodes depend on; leave the flag out, or start a new run")
    return override(saved, assignments)
