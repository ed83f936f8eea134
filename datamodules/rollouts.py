"""Reinforcement-learning data: episodes of a gymnasium environment, collected by the agent being trained.

`RolloutDataModule` serves the Trainer three iterables, so an `Actor` trains through the same
CLI and loop as the supervised modules:
- train: each rollout (num_envs x rollout_steps transitions, collected with the current policy)
  becomes `update_epochs` shuffled passes of minibatches dicts {obs, action, logp, advantage, return};
- val / test: batches of `{"episode_return": (k,)}` from complete evaluation episodes with fixed seeds.
The agent is the Trainer's LightningModule, reached through one documented hook:
`act(obs, deterministic) -> (action, log_prob, value)` and `value(obs) -> (N,)`, both without grad.
Rollouts are collected in the main process (num_workers=0): the policy lives there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, IterableDataset

from trickbench.checks import check_range
from trickbench.lightning_modules.ops.returns import gae


class Agent(Protocol):
    def act(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    def value(self, obs: torch.Tensor) -> torch.Tensor: ...


def make_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """Sync vector env that resets a finished episode in the same step (final obs in info["final_obs"])."""
    env = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    if not isinstance(env.single_action_space, gym.spaces.Discrete):
        raise ValueError(
            f"Actor needs a discrete action space (e.g. CartPole-v1, Acrobot-v1, LunarLander-v3); "
            f"{env_id} has {env.single_action_space}."
        )
    return env


class RolloutDataset(IterableDataset):
    """One iteration = `rollouts` rollouts; each yields `update_epochs * num_envs * steps // minibatch` minibatches."""

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        agent: Agent,
        rollouts: int,
        steps: int,
        update_epochs: int,
        minibatch_size: int,
        gamma: float,
        gae_lambda: float,
        seed: int,
    ) -> None:
        self.env, self.agent = env, agent
        self.rollouts, self.steps, self.update_epochs = rollouts, steps, update_epochs
        self.minibatch_size, self.gamma, self.gae_lambda = minibatch_size, gamma, gae_lambda
        self.gen = torch.Generator().manual_seed(seed)
        obs, _ = env.reset(seed=seed)
        self.obs = torch.as_tensor(obs, dtype=torch.float32)
        self.running_return = torch.zeros(env.num_envs)  # per env, for episode-return logging

    def __len__(self) -> int:
        return self.rollouts * self.update_epochs * (self.env.num_envs * self.steps // self.minibatch_size)

    @torch.no_grad()
    def collect(self) -> tuple[dict[str, torch.Tensor], list[float]]:
        """Step all envs `steps` times with the current policy; flatten to (steps * num_envs, ...)."""
        keys = ("obs", "action", "logp", "value", "reward", "done")
        buf: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
        finished: list[float] = []
        for _ in range(self.steps):
            action, logp, value = self.agent.act(self.obs)
            obs, reward, term, trunc, info = self.env.step(action.cpu().numpy())
            reward = torch.as_tensor(reward, dtype=torch.float32)
            self.running_return += reward
            # Time-limit truncation is not failure: bootstrap with the value of the state the episode stopped in.
            for i in np.flatnonzero(trunc & ~term):
                final = torch.as_tensor(info["final_obs"][i], dtype=torch.float32)[None]
                reward[i] += self.gamma * self.agent.value(final).cpu()[0]
            done = torch.as_tensor(term | trunc, dtype=torch.float32)
            finished += self.running_return[done.bool()].tolist()
            self.running_return[done.bool()] = 0.0
            for k, v in zip(keys, (self.obs, action.cpu(), logp.cpu(), value.cpu(), reward, done)):
                buf[k].append(v)
            self.obs = torch.as_tensor(obs, dtype=torch.float32)
        data = {k: torch.stack(v) for k, v in buf.items()}  # (T, N, ...)
        adv, ret = gae(
            data["reward"], data["value"], data["done"], self.agent.value(self.obs).cpu(), self.gamma, self.gae_lambda
        )
        flat = {k: data[k].flatten(0, 1) for k in ("obs", "action", "logp")}
        return {**flat, "advantage": adv.flatten(), "return": ret.flatten()}, finished

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.rollouts):
            data, finished = self.collect()
            n = len(data["obs"])
            stat = torch.tensor(float(np.mean(finished)) if finished else float("nan"))
            for _ in range(self.update_epochs):
                order = torch.randperm(n, generator=self.gen)
                for b in range(n // self.minibatch_size):
                    idx = order[b * self.minibatch_size : (b + 1) * self.minibatch_size]
                    yield {**{k: v[idx] for k, v in data.items()}, "episode_return": stat}


class EvalEpisodes(IterableDataset):
    """`episodes` complete episodes, `batch` at a time in parallel, seeded `seed, seed+1, ...` (same every pass)."""

    def __init__(self, env_id: str, agent: Agent, episodes: int, batch: int, seed: int, deterministic: bool) -> None:
        self.env_id, self.agent, self.episodes, self.batch = env_id, agent, episodes, batch
        self.seed, self.deterministic = seed, deterministic

    def __len__(self) -> int:
        return -(-self.episodes // self.batch)

    @torch.no_grad()
    def run(self, seeds: list[int]) -> torch.Tensor:
        env = make_env(self.env_id, len(seeds))
        obs, _ = env.reset(seed=seeds)
        total, alive = np.zeros(len(seeds)), np.ones(len(seeds), dtype=bool)
        while alive.any():  # SAME_STEP autoreset: ignore whatever an env does after its first episode
            action, _, _ = self.agent.act(torch.as_tensor(obs, dtype=torch.float32), self.deterministic)
            obs, reward, term, trunc, _ = env.step(action.cpu().numpy())
            total += reward * alive
            alive &= ~(term | trunc)
        env.close()
        return torch.as_tensor(total, dtype=torch.float32)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, self.episodes, self.batch):
            seeds = list(range(self.seed + start, self.seed + min(start + self.batch, self.episodes)))
            yield {"episode_return": self.run(seeds)}


class RolloutDataModule(LightningDataModule):
    """A gymnasium environment as a DataModule. Attributes: `dims` (observation shape), `num_actions`.

    Defaults are PPO's for CartPole (Schulman et al. 2017; CleanRL): 8 envs x 256 steps per rollout,
    4 passes of 512-transition minibatches, gamma 0.99, GAE lambda 0.95. REINFORCE with a baseline:
    `gae_lambda: 1.0, update_epochs: 1`.

    Args:
        env_id: gymnasium environment id
        num_envs: environments stepped in parallel
        rollout_steps: steps per environment per rollout
        rollouts_per_epoch: rollouts collected per training epoch
        update_epochs: passes over each rollout
        minibatch_size: transitions per minibatch
        gamma: discount factor
        gae_lambda: GAE lambda (1: Monte-Carlo advantages)
        val_episodes: episodes per validation
        test_episodes: episodes of the test
        eval_parallel: evaluation environments stepped at once
        deterministic_eval: evaluate the greedy action instead of sampling
        seed: seed of the environments and the minibatch order
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        num_envs: int = 8,
        rollout_steps: int = 256,
        rollouts_per_epoch: int = 4,
        update_epochs: int = 4,
        minibatch_size: int = 512,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        val_episodes: int = 10,
        test_episodes: int = 100,
        eval_parallel: int = 20,
        deterministic_eval: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_range("RolloutDataModule", "gamma", gamma)
        check_range("RolloutDataModule", "gae_lambda", gae_lambda)
        self.save_hyperparameters()
        if num_envs * rollout_steps < minibatch_size:
            raise ValueError(f"minibatch_size ({minibatch_size}) exceeds one rollout ({num_envs} x {rollout_steps}).")
        probe = make_env(env_id, 1)  # fails early, with the message above, on a continuous action space
        self.dims = tuple(probe.single_observation_space.shape)
        self.num_actions = int(probe.single_action_space.n)
        self.num_classes = None
        probe.close()
        self._train: RolloutDataset | None = None

    def _agent(self) -> Agent:
        agent = getattr(self.trainer, "lightning_module", None)
        if not (callable(getattr(agent, "act", None)) and callable(getattr(agent, "value", None))):
            raise TypeError(
                f"RolloutDataModule needs a module with act() and value() (e.g. Actor); got {type(agent).__name__}."
            )
        return agent

    def _loader(self, dataset: IterableDataset) -> DataLoader:
        return DataLoader(dataset, batch_size=None, num_workers=0)  # batches are built by the dataset

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        if self._train is None:  # one dataset for the whole fit: envs continue their episodes across epochs
            env = make_env(h.env_id, h.num_envs)
            self._train = RolloutDataset(
                env,
                self._agent(),
                h.rollouts_per_epoch,
                h.rollout_steps,
                h.update_epochs,
                h.minibatch_size,
                h.gamma,
                h.gae_lambda,
                h.seed,
            )
        return self._loader(self._train)

    def _eval(self, episodes: int, seed: int) -> DataLoader:
        h = self.hparams
        return self._loader(
            EvalEpisodes(h.env_id, self._agent(), episodes, h.eval_parallel, seed, h.deterministic_eval)
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval(self.hparams.val_episodes, seed=10_000 + self.hparams.seed)

    def test_dataloader(self) -> DataLoader:
        # Seeds disjoint from validation: the test score is not the one early stopping looked at.
        return self._eval(self.hparams.test_episodes, seed=20_000 + self.hparams.seed)

    def state_dict(self) -> dict[str, Any]:
        return {}
