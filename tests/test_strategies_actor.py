"""Actor: discounted returns / GAE by hand, the policy-gradient sign on a two-action toy, CartPole steps."""

from __future__ import annotations

import json

import pytest
import torch

from trickbench.datamodules.rollouts import make_env
from trickbench.lightning_cli import main as train_main
from trickbench.lightning_modules.actor import approx_kl, policy_loss
from trickbench.lightning_modules.ops.returns import discounted_returns, gae


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    dones = torch.tensor([[0.0], [1.0], [0.0], [0.0]])  # episode ends after step 1; a new one starts at 2
    out = discounted_returns(rewards, dones, gamma=0.5, last_value=torch.tensor([8.0]))
    # t=3: 4 + .5*8 = 8; t=2: 3 + .5*8 = 7; t=1: 2 (no bootstrap across the end); t=0: 1 + .5*2 = 2
    torch.testing.assert_close(out, torch.tensor([[2.0], [2.0], [7.0], [8.0]]))


def test_gae_limits():
    torch.manual_seed(0)
    rewards, values = torch.rand(6, 3), torch.rand(6, 3)
    dones = (torch.rand(6, 3) < 0.3).float()
    last = torch.rand(3)
    adv, ret = gae(rewards, values, dones, last, gamma=0.9, lam=1.0)
    # lam = 1: Monte-Carlo return minus the baseline (REINFORCE with a baseline)
    torch.testing.assert_close(ret, discounted_returns(rewards, dones, 0.9, last))
    torch.testing.assert_close(adv, ret - values)
    adv0, _ = gae(rewards, values, dones, last, gamma=0.9, lam=0.0)
    next_v = torch.cat([values[1:], last[None]])
    torch.testing.assert_close(adv0, rewards + 0.9 * (1 - dones) * next_v - values)  # lam = 0: TD error


@pytest.mark.parametrize("clip_eps", [None, 0.2])
def test_policy_gradient_sign_on_two_action_toy(clip_eps):
    """Action 0 is good (advantage +1), action 1 bad (-1): one gradient step must make action 0 likelier."""
    logits = torch.zeros(2, requires_grad=True)
    actions = torch.tensor([0, 1, 0, 1])
    advantage = torch.tensor([1.0, -1.0, 1.0, -1.0])
    logp_old = torch.log_softmax(logits, 0)[actions].detach()
    loss = policy_loss(torch.log_softmax(logits, 0)[actions], logp_old, advantage, clip_eps)
    loss.backward()
    assert logits.grad[0] < 0 < logits.grad[1]  # descent raises logit 0, lowers logit 1
    with torch.no_grad():
        new = torch.softmax(logits - 0.1 * logits.grad, 0)
    assert new[0] > 0.5


def test_clipping_stops_the_gradient_outside_the_trust_region():
    logp_old = torch.log(torch.tensor([0.5]))
    logp = torch.log(torch.tensor([0.8])).requires_grad_()  # ratio 1.6 > 1.2 with a positive advantage
    policy_loss(logp, logp_old, torch.tensor([1.0]), clip_eps=0.2).backward()
    assert logp.grad.item() == 0.0
    assert approx_kl(logp_old, logp_old).item() == 0.0 and approx_kl(logp.detach(), logp_old).item() > 0


def test_continuous_action_space_is_refused():
    with pytest.raises(ValueError, match="discrete action space"):
        make_env("Pendulum-v1", 1)


def test_actor_trains_a_few_steps_on_cartpole(tmp_path):
    run = tmp_path / "run"
    train_main(
        args=[
            "fit",
            "--config",
            "configs/cartpole_actor.yaml",
            "--config",
            "configs/trainer/cpu_smoke.yaml",
            "--trainer.limit_train_batches",
            "4",
            "--trainer.logger",
            "false",
            "--data.init_args.rollout_steps",
            "32",
            "--data.init_args.minibatch_size",
            "64",
            "--data.init_args.test_episodes",
            "4",
            "--data.init_args.val_episodes",
            "2",
            "--run_dir",
            str(run),
        ]
    )
    record = json.loads((run / "metrics.json").read_text())
    assert record["global_step"] == 4
    # An untrained CartPole policy falls within ~10-60 steps; reward is 1 per step survived.
    assert 5 <= record["test"]["return"] <= 200
