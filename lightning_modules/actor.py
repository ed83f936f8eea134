"""Reinforcement learning a = f(s): a policy-gradient actor with a learned value baseline.

PPO (Schulman et al. 2017) by default: clipped probability-ratio objective, MSE value loss, an
entropy bonus and an optional KL penalty to the rollout policy. `clip_eps: null` turns the policy
term into the plain score-function gradient, i.e. REINFORCE with a baseline (use it with
`gae_lambda: 1.0, update_epochs: 1` in `trickbench.datamodules.RolloutDataModule`, which collects the data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.distributions import Categorical

from trickbench.checks import check_range
from trickbench.lightning_modules import optim


def policy_loss(
    logp: torch.Tensor, logp_old: torch.Tensor, advantage: torch.Tensor, clip_eps: float | None
) -> torch.Tensor:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)], r = pi/pi_old; clip_eps None: -E[log pi(a|s) A] (REINFORCE)."""
    if clip_eps is None:
        return -(logp * advantage).mean()
    ratio = (logp - logp_old).exp()
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    return -torch.min(ratio * advantage, clipped * advantage).mean()


def approx_kl(logp: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi) estimated from samples of pi_old: E[(r - 1) - log r] (>= 0, low variance; Schulman 2020)."""
    log_ratio = logp - logp_old
    return (log_ratio.exp() - 1.0 - log_ratio).mean()


class Actor(LightningModule):
    """Logs `train/episode_return` (mean over episodes finished in the rollout), `train/{policy,value}_loss`,
    `train/entropy`, `train/approx_kl`, `train/clip_frac`, and `{val,test}/return` (mean evaluation return).

    Hook for `RolloutDataModule`: `act(obs, deterministic)` and `value(obs)`, both without gradients.

    Args:
        policy: observation -> action logits
        value_net: observation -> state value (one output)
        clip_eps: PPO clipping epsilon; null for the unclipped policy gradient
        kl_coef: weight of a KL(old || new) penalty on the policy update (0: off)
        value_coef: weight of the value loss
        entropy_coef: weight of the entropy bonus
        normalize_advantage: standardise advantages per minibatch
        optimizer: optimizer factory (a torch optimizer class path with its init_args; the module passes its parameter
            groups)
        lr_scheduler: LR scheduler factory, or null for a constant LR (with `scheduler_interval`)
    """

    def __init__(
        self,
        policy: nn.Module,
        value_net: nn.Module,
        clip_eps: float | None = 0.2,
        kl_coef: float = 0.0,
        value_coef: float = 0.5,
        entropy_coef: float = 0.01,
        normalize_advantage: bool = True,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        if clip_eps is not None:
            check_range("Actor", "clip_eps", clip_eps, 0.0, 1.0, low_open=True)
        for name, value in (("kl_coef", kl_coef), ("value_coef", value_coef), ("entropy_coef", entropy_coef)):
            check_range("Actor", name, value, 0.0, float("inf"))
        self.save_hyperparameters(ignore=["policy", "value_net", "optimizer", "lr_scheduler"])
        self.policy, self.value_net = policy, value_net
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler

    def forward(self, obs: torch.Tensor) -> Categorical:
        return Categorical(logits=self.policy(obs))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = obs.to(self.device)
        dist = self(obs)
        action = dist.probs.argmax(-1) if deterministic else dist.sample()
        return action, dist.log_prob(action), self.value_net(obs).squeeze(-1)

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value_net(obs.to(self.device)).squeeze(-1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        h = self.hparams
        dist = self(batch["obs"])
        logp = dist.log_prob(batch["action"])
        adv = batch["advantage"]
        if h.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg = policy_loss(logp, batch["logp"], adv, h.clip_eps)
        kl = approx_kl(logp, batch["logp"])
        v_loss = F.mse_loss(self.value_net(batch["obs"]).squeeze(-1), batch["return"])
        entropy = dist.entropy().mean()
        loss = pg + h.value_coef * v_loss - h.entropy_coef * entropy + h.kl_coef * kl
        self.log_dict(
            {
                "train/loss": loss,
                "train/policy_loss": pg,
                "train/value_loss": v_loss,
                "train/entropy": entropy,
                "train/approx_kl": kl,
            }
        )
        if h.clip_eps is not None:
            self.log("train/clip_frac", ((logp - batch["logp"]).exp().sub(1).abs() > h.clip_eps).float().mean())
        if not torch.isnan(batch["episode_return"]):
            self.log("train/episode_return", batch["episode_return"], prog_bar=True)
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        returns = batch["episode_return"]
        self.log(f"{stage}/return", returns.mean(), batch_size=len(returns), prog_bar=True)
        self.log(f"{stage}/return_min", returns.min(), batch_size=len(returns), reduce_fx="min")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self):
        return optim.configure(self, self, self.optimizer, self.lr_scheduler, "step", False)
