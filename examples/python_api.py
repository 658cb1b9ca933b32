"""Use a trained run from Python: load it, act in its environment, predict open-loop.

usage: python examples/python_api.py RUN_DIR
"""

import sys

import torch

import planet_torch  # noqa: F401  (first, before any GL context: see planet_torch.gl)
from planet_torch.assembly import make_agent
from planet_torch.envs import make_env
from planet_torch.predict import open_loop
from planet_torch.trained import load_run, play

run = load_run(sys.argv[1], device="cpu")  # the latest checkpoint, in eval mode
print(f"{run.cfg.task}: {run.counters['episodes']} training episodes")

# Act, the simple way: noise-free episodes, all planned together in one batched call.
episodes = play(run, seeds=[0, 1]).episodes
print("returns:", [round(float(episode.reward.sum()), 1) for episode in episodes])

# Act in your own loop: filter each frame into the belief, plan with CEM, step.
env = make_env(run.cfg.task, seed=0, **vars(run.cfg.env))
low, high = (torch.as_tensor(bound) for bound in (env.action_space.low, env.action_space.high))
agent = make_agent(run.cfg, run.model, low, high, torch.Generator().manual_seed(0))
agent.reset(num_envs=1)
obs, _ = env.reset(seed=0)
total, done = 0.0, False
while not done:
    action = agent.act(obs[None])[0]  # observations and actions carry a batch axis
    obs, reward, terminated, truncated, _ = env.step(action)
    total, done = total + reward, terminated or truncated
print(f"own loop return: {total:.1f}")

# Predict open-loop: filter 5 frames of a played episode, imagine the next ones from its
# actions alone, and compare with what happened.
episode = episodes[0]
window = min(len(episode.obs), 20)
prediction = open_loop(run.model, episode.obs[None, :window], episode.action[None, :window],
                       context=5)
print("open-loop error per step ahead:", [round(float(e), 4) for e in prediction.ahead_mse()])
