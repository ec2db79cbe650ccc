"""TEMPORARY stand-in for env.py / evaluate.py / policies.py until the bandit branch is merged."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class BernoulliBanditVectorEnv:
    def __init__(self, num_envs, k, horizon, prior=(1.0, 1.0), device="cpu", means=None):
        self.num_envs, self.k, self.horizon, self.device = num_envs, k, horizon, torch.device(device)
        self.prior = prior
        self._fixed = means

    def reset(self, seed=None, options=None):
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(0 if seed is None else seed)
        if self._fixed is not None:
            self.means = self._fixed.to(self.device)
        else:
            self.means = torch.rand(self.num_envs, self.k, generator=self.gen, device=self.device)
        self.pulls = torch.zeros(self.num_envs, self.k, dtype=torch.int64, device=self.device)
        self.succ = torch.zeros_like(self.pulls)
        self.t = 0
        return self._obs(), {"means": self.means}

    def _obs(self):
        left = torch.full((self.num_envs,), self.horizon - self.t, dtype=torch.int64, device=self.device)
        return {"pulls": self.pulls.clone(), "successes": self.succ.clone(), "steps_left": left}

    def step(self, actions):
        p = self.means.gather(1, actions[:, None]).squeeze(1)
        r = (torch.rand(self.num_envs, generator=self.gen, device=self.device) < p).long()
        self.pulls.scatter_add_(1, actions[:, None], torch.ones_like(actions[:, None]))
        self.succ.scatter_add_(1, actions[:, None], r[:, None])
        self.t += 1
        done = torch.full((self.num_envs,), self.t >= self.horizon, device=self.device)
        return self._obs(), r.float(), torch.zeros_like(done), done, {"means": self.means}


class Rollout(NamedTuple):
    rewards: Tensor
    actions: Tensor
    pseudo_regret: Tensor


def rollout(policy, means, horizon, generator) -> Rollout:
    env = BernoulliBanditVectorEnv(means.shape[0], means.shape[1], horizon, means=means)
    obs, _ = env.reset(seed=int(torch.randint(2**31, (1,), generator=generator)))
    rs, acts, prs = [], [], []
    best = means.max(1).values
    for _ in range(horizon):
        a = policy(obs, generator)
        obs, r, _, _, _ = env.step(a)
        rs.append(r)
        acts.append(a)
        prs.append(best - means.gather(1, a[:, None]).squeeze(1))
    return Rollout(torch.stack(rs), torch.stack(acts), torch.stack(prs))


class UCB1:
    def __call__(self, obs, generator):
        pulls, succ = obs["pulls"].float(), obs["successes"].float()
        t = pulls.sum(1, keepdim=True)
        idx = succ / pulls.clamp(min=1) + torch.sqrt(2 * torch.log(t.clamp(min=1)) / pulls.clamp(min=1))
        idx = torch.where(pulls == 0, torch.full_like(idx, math.inf), idx)
        return idx.argmax(1)


class Thompson:
    def __call__(self, obs, generator):
        pulls, succ = obs["pulls"].float(), obs["successes"].float()
        theta = torch._standard_gamma(succ + 1)
        theta = theta / (theta + torch._standard_gamma(pulls - succ + 1))
        return theta.argmax(1)


class Greedy:
    def __call__(self, obs, generator):
        pulls, succ = obs["pulls"].float(), obs["successes"].float()
        return ((succ + 1) / (pulls + 2)).argmax(1)


class Random:
    def __call__(self, obs, generator):
        pulls = obs["pulls"]
        return torch.randint(pulls.shape[1], (pulls.shape[0],), generator=generator)
