import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from planet_torch.replay import (
    Batch,
    Episode,
    Replay,
    episode_files,
    parse_episode_name,
)


def marked_episode(marker: int, rows: int, action_size: int = 2) -> Episode:
    """Tiny episode whose every row says where it came from.

    obs (rows, 1, 2, 1): pixel 0 holds the episode's marker, pixel 1 the row index;
    action is the marker (zero on the reset row); reward is the row index (zero on row 0).
    """
    obs = np.zeros((rows, 1, 2, 1), dtype=np.uint8)
    obs[:, 0, 0, 0] = marker
    obs[:, 0, 1, 0] = np.arange(rows)
    action = np.full((rows, action_size), marker, dtype=np.float32)
    action[0] = 0
    reward = np.arange(rows, dtype=np.float32)
    return Episode(obs, action, reward)


def random_episode(rng: np.random.Generator, steps: int, action_size: int = 6) -> Episode:
    """Episode of `steps` agent steps with random 64x64x3 frames and a zero reset row."""
    obs = rng.integers(0, 256, (steps + 1, 64, 64, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, (steps + 1, action_size)).astype(np.float32)
    reward = rng.uniform(0, 1, steps + 1).astype(np.float32)
    action[0] = 0
    reward[0] = 0
    return Episode(obs, action, reward)


def assert_same_episodes(a: tuple[Episode, ...], b: tuple[Episode, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            assert u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_array_equal(u, v)


def test_chunks_stay_inside_one_episode_with_consecutive_rows():
    replay = Replay(seed=0)
    rows = [3, 7, 5, 12, 6, 20]
    for marker, n in enumerate(rows, start=1):
        replay.add(marked_episode(marker, n))
    assert replay.num_episodes == 6 and replay.num_steps == sum(rows) - len(rows)

    batch = replay.sample(batch_size=400, length=5)
    assert isinstance(batch, Batch)
    assert batch.obs.shape == (400, 5, 1, 2, 1) and batch.obs.dtype == np.uint8
    assert batch.action.shape == (400, 5, 2) and batch.action.dtype == np.float32
    assert batch.reward.shape == (400, 5) and batch.reward.dtype == np.float32
    seen = set()
    for obs, action, reward in zip(*batch, strict=True):
        marker = obs[0, 0, 0, 0]
        row = obs[:, 0, 1, 0].astype(int)
        assert np.all(obs[:, 0, 0, 0] == marker)  # one episode per chunk
        assert np.array_equal(row, row[0] + np.arange(5))  # consecutive rows
        assert row[-1] < rows[marker - 1]
        np.testing.assert_array_equal(reward, row)  # reward and obs come from the same rows
        np.testing.assert_array_equal(action[:, 0], np.where(row == 0, 0, marker))
        seen.add(int(marker))
    assert seen == {2, 3, 4, 5, 6}  # episode 1 (3 rows) is too short for L = 5


def test_every_valid_episode_and_start_is_equally_likely():
    # Valid chunks of L = 4: 2 + 5 + 9 = 16 (episode, start) pairs; the 3-row episode has none.
    # An episode-first sampler (uniform episode, then uniform start) would give episode 1's
    # starts 1/6 each instead of 1/16 and fail this by a wide margin.
    replay = Replay(seed=1234)
    rows = {1: 5, 2: 8, 3: 12, 4: 3}
    for marker, n in rows.items():
        replay.add(marked_episode(marker, n))
    length, draws = 4, 32_000
    counts = Counter()
    for _ in range(draws // 1000):
        obs = replay.sample(1000, length).obs
        counts.update(zip(obs[:, 0, 0, 0, 0].tolist(), obs[:, 0, 0, 1, 0].tolist(), strict=True))
    cells = [(m, s) for m, n in rows.items() for s in range(n - length + 1)]
    assert len(cells) == 16 and set(counts) == set(cells)
    expected = draws / len(cells)
    chi_square = sum((counts[cell] - expected) ** 2 / expected for cell in cells)
    # 15 degrees of freedom: P(chi2 > 56.5) = 1e-6 under uniform sampling (seed fixed anyway).
    assert chi_square < 56.5, (chi_square, counts)


def test_same_seed_same_batch_and_explicit_rng():
    def filled(seed: int | None) -> Replay:
        replay = Replay(seed=seed)
        for marker, n in enumerate([9, 14, 30], start=1):
            replay.add(marked_episode(marker, n))
        return replay

    a, b, c = filled(3).sample(16, 6), filled(3).sample(16, 6), filled(4).sample(16, 6)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.obs, c.obs)
    # a passed generator replaces the replay's own one
    d = filled(None).sample(16, 6, rng=np.random.default_rng(7))
    e = filled(8).sample(16, 6, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(d.obs, e.obs)


def test_no_episode_long_enough_names_longest_and_length():
    replay = Replay(seed=0)
    with pytest.raises(ValueError, match="empty replay"):
        replay.sample(2, 3)
    replay.add(marked_episode(1, 4))
    replay.add(marked_episode(2, 6))
    with pytest.raises(ValueError, match=r"L=7.*longest has 6 rows"):
        replay.sample(2, 7)
    assert replay.sample(2, 6).obs.shape[:2] == (2, 6)
    with pytest.raises(ValueError, match="batch_size and length"):
        replay.sample(0, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e._replace(action=e.action[:-1]), r"action must have shape.*\(4, 2\)"),
        (lambda e: e._replace(reward=e.reward[:, None]), r"reward must have shape.*\(5, 1\)"),
        (lambda e: e._replace(obs=e.obs[:, 0]), r"obs must have shape.*\(5, 2, 1\)"),
        (lambda e: e._replace(obs=e.obs.astype(np.float32)), "obs must be uint8.*float32"),
        (lambda e: e._replace(reward=e.reward.astype(np.float64)), "reward must be float32"),
        (lambda e: Episode(e.obs[:1], e.action[:1], e.reward[:1]), "at least one step"),
        (lambda e: e._replace(action=e.action + 1), "row 0 is the reset frame"),
    ],
)
def test_add_validates_episodes(change, message):
    replay = Replay()
    with pytest.raises(ValueError, match=message):
        replay.add(change(marked_episode(1, 5)))
    assert replay.num_episodes == 0


def test_add_requires_same_frame_and_action_size_and_copies():
    replay = Replay()
    episode = marked_episode(1, 5)
    replay.add(episode)
    with pytest.raises(ValueError, match=r"\(1, 2, 1\).*\(3,\).*stored.*\(1, 2, 1\).*\(2,\)"):
        replay.add(marked_episode(2, 5, action_size=3))
    episode.obs[:] = 99  # the caller may reuse its buffers
    stored = replay.episodes[0]
    assert stored.obs[0, 0, 0, 0] == 1 and stored.length == 5
    assert not stored.obs.flags.writeable


def test_save_load_round_trip_and_numbering(tmp_path: Path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "episodes"
    replay = Replay(folder)
    paths = [replay.add(random_episode(rng, steps)) for steps in (7, 3, 12)]
    assert [p.name for p in paths] == ["000000-7.npz", "000001-3.npz", "000002-12.npz"]
    assert episode_files(folder) == paths
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in paths]  # no temp files
    assert parse_episode_name(paths[2]) == (2, 12)

    loaded = Replay.load(folder, seed=0)
    assert_same_episodes(loaded.episodes, replay.episodes)
    assert (loaded.num_steps, loaded.nbytes) == (replay.num_steps, replay.nbytes)
    assert loaded.add(random_episode(rng, 2)).name == "000003-2.npz"
    # a new replay on a used folder does not read it, but never overwrites its files
    assert Replay(folder).add(random_episode(rng, 4)).name == "000004-4.npz"
    assert Replay.load(folder).num_episodes == 5


def test_corrupt_and_temporary_files_are_skipped(tmp_path: Path):
    rng = np.random.default_rng(1)
    replay = Replay(tmp_path)
    paths = [replay.add(random_episode(rng, 5)) for _ in range(5)]
    truncated, garbage, misnamed = paths[1], paths[2], paths[3]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    garbage.write_bytes(b"not an npz file at all")
    misnamed.rename(misnamed.with_name("000003-6.npz"))  # the name says 6 steps, it holds 5
    (tmp_path / ".000005-5.npz.x1y2.tmp").write_bytes(b"half written")  # interrupted write
    assert len(episode_files(tmp_path)) == 5

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = Replay.load(tmp_path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    for name in (truncated.name, garbage.name, "000003-6.npz"):
        assert any(name in m for m in messages), (name, messages)
    assert_same_episodes(loaded.episodes, (replay.episodes[0], replay.episodes[4]))
    assert loaded.add(random_episode(rng, 1)).name == "000005-1.npz"


def test_capacity_drops_oldest_episodes_in_memory_only(tmp_path: Path):
    replay = Replay(tmp_path, capacity=10)
    for marker in (1, 2, 3):
        replay.add(marked_episode(marker, 5))  # 4 steps each
    assert replay.num_steps == 8
    assert [e.obs[0, 0, 0, 0] for e in replay.episodes] == [2, 3]
    assert replay.nbytes == sum(a.nbytes for e in replay.episodes for a in e)
    assert len(episode_files(tmp_path)) == 3  # files stay on disk
    replay.add(marked_episode(4, 12))  # larger than the capacity: kept alone
    assert [e.obs[0, 0, 0, 0] for e in replay.episodes] == [4]
    assert replay.num_steps == 11
    with pytest.raises(ValueError, match="capacity"):
        Replay(capacity=0)


def test_load_with_capacity_opens_only_the_newest_files(tmp_path: Path):
    live = Replay(tmp_path, capacity=12)
    paths = [live.add(marked_episode(marker, 5)) for marker in range(1, 6)]  # 4 steps each
    for old in paths[:2]:  # if the loader opened these it would warn
        old.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = Replay.load(tmp_path, capacity=12)
    assert [e.obs[0, 0, 0, 0] for e in loaded.episodes] == [3, 4, 5]
    assert_same_episodes(loaded.episodes, live.episodes)
    with pytest.raises(FileNotFoundError):
        Replay.load(tmp_path / "missing")


def test_memory_per_agent_step_is_under_12_5_kb():
    # cartpole's paper episode: 1000 / 8 = 125 agent steps; 6 action dimensions (walker, cheetah)
    replay = Replay()
    replay.add(random_episode(np.random.default_rng(2), 125, action_size=6))
    episode = replay.episodes[0]
    assert replay.nbytes == episode.obs.nbytes + episode.action.nbytes + episode.reward.nbytes
    assert replay.nbytes / replay.num_steps <= 12_500
