"""Navigation policies: the state as sets, equivariance under S_N x S_M, and the baselines' lack
of it."""

import pytest
import torch

from symlight.check import assert_equivariant, equivariance_error
from symlight.symmetry import SetSymmetry
from symlight.tasks.navigation import (
    CentralisedPolicy,
    DecentralisedPolicy,
    MLPPolicy,
    NavigationDataModule,
    NavState,
    NearestKPolicy,
    features,
)

AGENTS_AND_LANDMARKS = SetSymmetry(
    {"agent_pos": (1, 0), "agent_vel": (1, 0), "landmark_pos": (0, 1)}, out_order=(1, 0)
)


def state_of(batch: dict) -> NavState:
    return NavState(batch["agent_pos"], batch["agent_vel"], batch["landmark_pos"], batch["step"])


def outputs(net, batch: dict) -> dict:
    """Logits per agent and the team's value repeated for every agent: both order (1,0)."""
    logits, value = net(state_of(batch), batch.get("mask"))
    return {"logits": logits, "value": value[:, None, None].expand(*logits.shape[:2], 1)}


def random_batch(e: int, n: int, m: int, seed: int = 0, padded: bool = False) -> dict:
    gen = torch.Generator().manual_seed(seed)
    batch = {
        "agent_pos": torch.rand(e, n, 2, generator=gen, dtype=torch.float64) * 4 - 2,
        "agent_vel": torch.randn(e, n, 2, generator=gen, dtype=torch.float64),
        "landmark_pos": torch.rand(e, m, 2, generator=gen, dtype=torch.float64) * 4 - 2,
        "step": 7,
    }
    if padded:  # episode b has n - b % 2 real agents and m - b % 3 real landmarks
        rows = torch.arange(e)[:, None]
        batch["mask"] = (torch.arange(n) < n - rows % 2, torch.arange(m) < m - rows % 3)
    return batch


EQUIVARIANT = [
    lambda: CentralisedPolicy(hidden=8, blocks=1),
    lambda: CentralisedPolicy(hidden=8, blocks=0, pooling="mean", sinkhorn=0),
    lambda: DecentralisedPolicy(hidden=8),
]


@pytest.mark.parametrize("make", EQUIVARIANT, ids=["centralised", "softmax", "decentralised"])
@pytest.mark.parametrize("n, m", [(3, 3), (5, 2), (2, 6)])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_policies_are_equivariant_to_agents_and_landmarks_in_float64(make, n, m, train):
    torch.manual_seed(0)
    net = make().double()
    for padded in (False, True):
        batch = random_batch(4, n, m, seed=n + m, padded=padded)
        result = assert_equivariant(
            net, batch, AGENTS_AND_LANDMARKS, num_samples=2, train=train, forward=outputs
        )
        assert result.max_abs_error < 1e-12
        # both sets' generators and random elements of the product were applied
        elements = {row.element for row in result.rows}
        assert {"transposition of set 0", "cycle of set 1", "random 2"} <= elements


@pytest.mark.parametrize("make", EQUIVARIANT, ids=["centralised", "softmax", "decentralised"])
def test_padding_never_changes_the_real_outputs(make):
    torch.manual_seed(0)
    net = make().double()
    batch = random_batch(6, 4, 5, padded=True)
    moved = dict(batch)
    agents, landmarks = batch["mask"]
    for key, real in (("agent_pos", agents), ("agent_vel", agents), ("landmark_pos", landmarks)):
        noise = torch.randn_like(batch[key]) * 10
        moved[key] = torch.where(real[..., None], batch[key], noise)
    logits, value = net(state_of(batch), batch["mask"])
    logits_moved, value_moved = net(state_of(moved), batch["mask"])
    torch.testing.assert_close(logits_moved, logits, rtol=0, atol=1e-12)
    torch.testing.assert_close(value_moved, value, rtol=0, atol=1e-12)
    assert (logits[~agents] == 0).all()


def test_features_are_relative_and_permute_with_the_sets():
    batch = random_batch(3, 4, 5)
    x = features(state_of(batch))
    assert x.landmarks.shape == (3, 4, 5, 5) and x.agents.shape == (3, 4, 4, 6)
    shifted = dict(batch)
    shift = torch.tensor([0.7, -1.3], dtype=torch.float64)
    shifted["agent_pos"] = batch["agent_pos"] + shift
    shifted["landmark_pos"] = batch["landmark_pos"] + shift
    y = features(state_of(shifted))
    torch.testing.assert_close(y.landmarks, x.landmarks)
    torch.testing.assert_close(y.agents, x.agents)
    # what agent 1 sees of landmark 2: the vector to it and its length (both shortened to the
    # reach, 1), then agent 1's velocity
    to_mark = batch["landmark_pos"][:, 2] - batch["agent_pos"][:, 1]
    length = to_mark.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(x.landmarks[:, 1, 2, :2], to_mark / length.clamp(min=1.0))
    torch.testing.assert_close(x.landmarks[:, 1, 2, 2:3], length.clamp(max=1.0))
    torch.testing.assert_close(x.landmarks[:, 1, 2, 3:], batch["agent_vel"][:, 1])
    assert (length < 1).any() and (length > 1).any()  # both cases were checked
    # agent 0 seen from agent 3, and the flag that it is another agent (0 on the diagonal)
    to_agent = batch["agent_pos"][:, 0] - batch["agent_pos"][:, 3]
    torch.testing.assert_close(
        x.agents[:, 3, 0, :2], to_agent / to_agent.norm(dim=-1, keepdim=True).clamp(min=1.0)
    )
    assert x.agents[:, 2, 2, 5].eq(0).all() and x.agents[:, 2, 1, 5].eq(1).all()


def test_the_centralised_policy_is_translation_invariant_and_runs_at_any_size():
    torch.manual_seed(0)
    net = CentralisedPolicy(hidden=8, blocks=1).double()
    batch = random_batch(2, 3, 3)
    logits, value = net(state_of(batch))
    batch["agent_pos"] = batch["agent_pos"] + 5.0
    batch["landmark_pos"] = batch["landmark_pos"] + 5.0
    moved, moved_value = net(state_of(batch))
    torch.testing.assert_close(moved, logits)
    torch.testing.assert_close(moved_value, value)
    for n in (1, 20):
        logits, value = net(state_of(random_batch(2, n, n)))
        assert logits.shape == (2, n, 5) and value.shape == (2,)
        assert torch.isfinite(logits).all() and torch.isfinite(value).all()


def test_the_mlp_over_observations_is_not_equivariant_and_runs_at_its_own_size_only():
    torch.manual_seed(0)
    net = MLPPolicy(agents=3).double()
    result = equivariance_error(net, random_batch(4, 3, 3), AGENTS_AND_LANDMARKS, forward=outputs)
    per_output = result.per_output
    assert per_output["logits"][1] > 1e-3 and per_output["value"][1] > 1e-3
    with pytest.raises(ValueError, match="built for 3 agents and landmarks, got 4 agents"):
        net(state_of(random_batch(2, 4, 4)))


def test_the_nearest_k_mlp_pads_when_there_are_fewer_entities():
    torch.manual_seed(0)
    net = NearestKPolicy(k=3).double()
    for n in (1, 2, 20):
        logits, value = net(state_of(random_batch(2, n, n)))
        assert logits.shape == (2, n, 5) and torch.isfinite(logits).all()
    # sorted by distance, it ignores the labels of agents and landmarks (no ties here)
    result = equivariance_error(net, random_batch(4, 6, 6), AGENTS_AND_LANDMARKS, forward=outputs)
    assert result.max_abs_error < 1e-12
    # but it sees the k nearest landmarks only: moving a far one changes nothing
    pos = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], dtype=torch.float64)
    marks = [[0.0, 0.1], [0.1, 0.0], [1.0, 0.1], [1.1, 0.0], [0.5, 0.2], [5.0, 5.0]]
    marks = torch.tensor([marks], dtype=torch.float64)
    logits, _ = net(NavState(pos, torch.zeros_like(pos), marks, 0))
    marks[0, 5] = torch.tensor([-4.0, 6.0], dtype=torch.float64)
    torch.testing.assert_close(net(NavState(pos, torch.zeros_like(pos), marks, 0))[0], logits)
    marks[0, 4] = torch.tensor([-4.0, 6.0], dtype=torch.float64)  # a near one does matter
    assert not torch.allclose(net(NavState(pos, torch.zeros_like(pos), marks, 0))[0], logits)


@pytest.mark.parametrize("cls", [CentralisedPolicy, DecentralisedPolicy, MLPPolicy, NearestKPolicy])
def test_policies_are_built_for_the_task_declaration(cls):
    task = NavigationDataModule()
    net = cls(task.element_shape[0], task.rep_out.channels, task.rep_out.orders)
    assert net.rep_out == task.rep_out
    with pytest.raises(ValueError, match=rf"{cls.__name__} acts in the plane"):
        cls(3, 5, (1, 0))
    with pytest.raises(ValueError, match=rf"{cls.__name__} acts in the plane"):
        cls(2, 1, (1, 0))
