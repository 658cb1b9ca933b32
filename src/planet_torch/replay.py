"""Episodes on disk and in memory (uint8 frames), uniform chunk sampling inside episodes.

An episode of T agent steps is stored as T + 1 rows, the reset frame included. Row t holds
the observation o_t, the action a_{t-1} that led to it and the reward r_t received with it;
the reset row 0 has a zero action and a zero reward:

    environment   o_0 --a_0--> o_1, r_1 --a_1--> o_2, r_2  ...  --a_{T-1}--> o_T, r_T

    row t          0        1          2       ...     T
    obs[t]        o_0      o_1        o_2      ...    o_T        uint8 (T+1, H, W, C)
    action[t]      0       a_0        a_1      ...  a_{T-1}      float32 (T+1, A)
    reward[t]      0       r_1        r_2      ...    r_T        float32 (T+1,)

So the model reads one row per step with no index shifting: belief[t] = f(belief[t-1],
state[t-1], action[t]), the posterior q(s_t | h_t, e_t) encodes obs[t], and the reward model
p(r_t | h_t, s_t) predicts reward[t]. In a sampled chunk, action[0] is the action that led
into the chunk's first frame (zero only when the chunk starts at the reset frame).

On disk each episode is one compressed `.npz` (keys obs, action, reward) named
`{index:06d}-{steps}.npz`, e.g. `000012-126.npz` is the thirteenth episode of the folder and
holds 126 agent steps (127 rows). Indices only grow over the life of a folder, so a loader
can pick the newest episodes that fit its capacity from the names alone. Files are written
to a hidden temporary file in the same folder and renamed, so a crash never leaves a
half-written episode under an episode name; unreadable files are skipped with a warning.

Capacity is counted in agent steps (paper: 10^6); the oldest episodes leave memory first
(their files stay on disk). `Replay.sample` draws B chunks of L consecutive rows, each
inside one episode, with every valid (episode, start) pair equally likely, as in the paper.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

_NAME = re.compile(r"^(\d+)-(\d+)\.npz$")
_INDEX_DIGITS = 6


class Episode(NamedTuple):
    """One episode of T agent steps as T + 1 rows (see the module docstring for alignment)."""

    obs: np.ndarray
    """uint8 (T+1, H, W, C): o_0 (the reset frame) .. o_T."""
    action: np.ndarray
    """float32 (T+1, A): zeros on row 0, then a_0 .. a_{T-1}; row t led to obs[t]."""
    reward: np.ndarray
    """float32 (T+1,): zero on row 0, then r_1 .. r_T; row t came with obs[t]."""

    @property
    def length(self) -> int:
        """Number of rows, T + 1."""
        return len(self.obs)

    @property
    def steps(self) -> int:
        """Number of agent steps (transitions), T = rows - 1."""
        return len(self.obs) - 1


class Batch(NamedTuple):
    """B chunks of L consecutive rows, each from one episode, rows aligned as in `Episode`."""

    obs: np.ndarray
    """uint8 (B, L, H, W, C)."""
    action: np.ndarray
    """float32 (B, L, A)."""
    reward: np.ndarray
    """float32 (B, L)."""


class EpisodeName(NamedTuple):
    """What an episode file's name says: its index in the folder and its agent steps."""

    index: int
    steps: int


def parse_episode_name(path: Path) -> EpisodeName:
    """`000012-126.npz` -> EpisodeName(index=12, steps=126); ValueError for other names."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(
            f"{Path(path).name!r} is not an episode file name; expected e.g. '000012-126.npz' "
            "(index-steps.npz)"
        )
    return EpisodeName(int(match.group(1)), int(match.group(2)))


def episode_files(directory: Path) -> list[Path]:
    """Episode files in `directory`, oldest first (by index); temporary files are ignored."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    paths = [path for path in directory.iterdir() if _NAME.match(path.name)]
    return sorted(paths, key=lambda path: parse_episode_name(path).index)


def _check_episode(episode: Episode, like: Episode | None = None) -> Episode:
    """Validate shapes, dtypes and the zero reset row; return read-only contiguous copies.

    `like`, if given, is an episode already stored: frame shape (H, W, C) and action size A
    must match it so that episodes can share a batch.
    """
    obs, action, reward = (np.asarray(array) for array in episode)
    rows = len(obs) if obs.ndim else 0
    expected = {
        "obs": (np.uint8, 4, "(T+1, H, W, C)", obs),
        "action": (np.float32, 2, "(T+1, A)", action),
        "reward": (np.float32, 1, "(T+1,)", reward),
    }
    for name, (dtype, ndim, layout, array) in expected.items():
        if array.dtype != dtype:
            raise ValueError(
                f"episode {name} must be {np.dtype(dtype).name} {layout}, got dtype {array.dtype} "
                f"(shape {array.shape}); convert with .astype(np.{np.dtype(dtype).name})"
            )
        if array.ndim != ndim or len(array) != rows:
            raise ValueError(
                f"episode {name} must have shape {layout} with T+1 = {rows} rows like obs, got "
                f"shape {array.shape}; obs {obs.shape}, action {action.shape}, "
                f"reward {reward.shape}"
            )
    if rows < 2:
        raise ValueError(
            f"an episode needs the reset row and at least one step (T+1 >= 2 rows), got obs "
            f"shape {obs.shape}"
        )
    if like is not None and (
        obs.shape[1:] != like.obs.shape[1:] or action.shape[1:] != like.action.shape[1:]
    ):
        raise ValueError(
            f"episode frames {obs.shape[1:]} and action size {action.shape[1:]} differ from the "
            f"stored episodes' {like.obs.shape[1:]} and {like.action.shape[1:]} "
            f"(got obs {obs.shape}, action {action.shape})"
        )
    if np.any(action[0] != 0) or reward[0] != 0:
        raise ValueError(
            f"row 0 is the reset frame and must hold a zero action and zero reward, got action "
            f"{action[0]} and reward {reward[0]}; row t holds o_t, a_(t-1), r_t (see "
            "planet_torch.replay)"
        )
    arrays = [np.array(array, order="C") for array in (obs, action, reward)]
    for array in arrays:
        array.setflags(write=False)
    return Episode(*arrays)


class Replay:
    """Whole episodes in memory (uint8 frames), optionally saved to `directory` as they come.

    Args:
        directory: folder for episode files; None keeps episodes in memory only. Numbering
            continues after the highest index already in the folder; existing files are not
            read (use `Replay.load` for that).
        capacity: agent steps kept in memory (paper: 10^6); when exceeded the oldest episodes
            are dropped, but the newest episode is always kept.
        seed: seed of the replay's own `np.random.Generator` used by `sample`.
    """

    def __init__(self, directory: Path | None = None, capacity: int = 1_000_000,
                 seed: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity is in agent steps and must be >= 1, got {capacity}")
        self._capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._episodes: list[Episode] = []
        self._rows = np.zeros(0, dtype=np.int64)
        self._num_steps = 0
        self._nbytes = 0
        self._directory = None if directory is None else Path(directory)
        self._next_index = 0
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            files = episode_files(self._directory)
            if files:
                self._next_index = parse_episode_name(files[-1]).index + 1

    @classmethod
    def load(cls, directory: Path, capacity: int = 1_000_000,
             seed: int | None = None) -> Replay:
        """Rebuild a replay from the episode files in `directory`; later adds go there too.

        Only the newest episodes whose steps (read from the file names) fit in `capacity` are
        opened, as if all episodes had been added in order. A file that cannot be read, or
        whose contents disagree with its name, is skipped with a warning and not counted.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"no replay folder at {directory}")
        replay = cls(directory, capacity, seed)
        loaded: list[Episode] = []
        steps = 0
        for path in reversed(episode_files(directory)):
            name = parse_episode_name(path)
            if loaded and steps + name.steps > capacity:
                break
            episode = _read_episode(path, name, loaded[0] if loaded else None)
            if episode is not None:
                loaded.append(episode)
                steps += name.steps
        for episode in reversed(loaded):
            replay._store(episode)
        return replay

    @property
    def directory(self) -> Path | None:
        """Folder the episodes are saved to, or None."""
        return self._directory

    @property
    def rng(self) -> np.random.Generator:
        """The generator `sample` draws from by default (its state goes into checkpoints)."""
        return self._rng

    @property
    def capacity(self) -> int:
        """Agent steps kept in memory."""
        return self._capacity

    @property
    def episodes(self) -> tuple[Episode, ...]:
        """The episodes in memory, oldest first; their arrays are read-only."""
        return tuple(self._episodes)

    @property
    def num_episodes(self) -> int:
        """Episodes in memory."""
        return len(self._episodes)

    @property
    def num_steps(self) -> int:
        """Agent steps (transitions) in memory: the sum of rows - 1 over episodes."""
        return self._num_steps

    @property
    def nbytes(self) -> int:
        """Bytes held by the episodes' arrays in memory."""
        return self._nbytes

    def add(self, episode: Episode) -> Path | None:
        """Validate and store `episode` (copied); save it at once if the replay has a folder.

        Returns the episode's file, or None without a folder. Raises ValueError if shapes,
        dtypes or the zero reset row are wrong, with the actual shapes in the message.
        """
        like = self._episodes[-1] if self._episodes else None
        episode = _check_episode(Episode(*episode), like)
        path = None
        if self._directory is not None:
            path = self._directory / f"{self._next_index:0{_INDEX_DIGITS}d}-{episode.steps}.npz"
            _write_episode(path, episode)
            self._next_index += 1
        self._store(episode)
        return path

    def sample(self, batch_size: int, length: int,
               rng: np.random.Generator | None = None) -> Batch:
        """B = batch_size chunks of L = length consecutive rows, each inside one episode.

        Every valid (episode, start) pair is equally likely: an episode with `rows` rows is
        drawn with probability proportional to rows - L + 1, then the start uniformly.
        Uses `rng` if given, otherwise the replay's own generator (seeded by `seed`).
        Returns a `Batch` of obs uint8 (B, L, H, W, C), action float32 (B, L, A) and
        reward float32 (B, L).
        """
        if batch_size < 1 or length < 1:
            raise ValueError(
                f"batch_size and length must be >= 1, got batch_size={batch_size}, "
                f"length={length}"
            )
        if not self._episodes:
            raise ValueError("cannot sample from an empty replay; add episodes first")
        starts_per_episode = np.maximum(self._rows - length + 1, 0)
        offsets = np.cumsum(starts_per_episode)
        total = int(offsets[-1])
        if total == 0:
            raise ValueError(
                f"no episode is long enough for chunks of length L={length}: the longest has "
                f"{int(self._rows.max())} rows ({int(self._rows.max()) - 1} steps); use a "
                "shorter chunk length or collect longer episodes"
            )
        rng = self._rng if rng is None else rng
        flat = rng.integers(total, size=batch_size)
        which = np.searchsorted(offsets, flat, side="right")
        starts = flat - (offsets[which] - starts_per_episode[which])
        first = self._episodes[0]
        obs = np.empty((batch_size, length, *first.obs.shape[1:]), dtype=np.uint8)
        action = np.empty((batch_size, length, *first.action.shape[1:]), dtype=np.float32)
        reward = np.empty((batch_size, length), dtype=np.float32)
        for i, (index, start) in enumerate(zip(which.tolist(), starts.tolist(), strict=True)):
            episode = self._episodes[index]
            obs[i] = episode.obs[start:start + length]
            action[i] = episode.action[start:start + length]
            reward[i] = episode.reward[start:start + length]
        return Batch(obs, action, reward)

    def _store(self, episode: Episode) -> None:
        """Append a validated episode and drop the oldest ones beyond capacity."""
        self._episodes.append(episode)
        self._num_steps += episode.steps
        self._nbytes += sum(array.nbytes for array in episode)
        while self._num_steps > self._capacity and len(self._episodes) > 1:
            old = self._episodes.pop(0)
            self._num_steps -= old.steps
            self._nbytes -= sum(array.nbytes for array in old)
        self._rows = np.fromiter((ep.length for ep in self._episodes), dtype=np.int64,
                                 count=len(self._episodes))


def _write_episode(path: Path, episode: Episode) -> None:
    """Write `episode` to `path` as compressed npz, via a temporary file and an atomic rename."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez_compressed(file, **episode._asdict())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_episode(path: Path, name: EpisodeName, like: Episode | None) -> Episode | None:
    """Read and validate one episode file; warn and return None if it is unusable.

    Any failure counts (truncated zip, garbage bytes, missing keys, wrong shapes, frames or
    actions unlike the episode `like` already read), since a bad file must never stop a
    replay from loading.
    """
    try:
        # open the file here: np.load leaks its own handle when the zip is truncated
        with path.open("rb") as file, np.load(file, allow_pickle=False) as data:
            episode = _check_episode(Episode(data["obs"], data["action"], data["reward"]), like)
        if episode.steps != name.steps:
            raise ValueError(f"the name says {name.steps} steps but the file holds "
                             f"{episode.steps}")
    except Exception as error:  # any unreadable file is skipped, see the docstring
        warnings.warn(f"skipping unreadable episode file {path}: {type(error).__name__}: {error}",
                      stacklevel=3)
        return None
    return episode
