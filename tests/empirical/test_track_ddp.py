"""The tracker's DDP recipe (empirical/track.py's docstring) with two gloo processes on the
CPU: the communication hook sees each rank's local gradient, the all-reduced .grad is the
gradient of both ranks' examples, and every rank gets the same B_simple."""

import json
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from empirical.track import NoiseScaleTracker, squared_norm, two_batch_pair

WORLD, B = 2, 4


def _loss(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    ddp_model = DistributedDataParallel(model)
    local = []

    def hook(state, bucket):
        local.append(bucket.buffer().double().square().sum())
        return default_hooks.allreduce_hook(state, bucket)

    ddp_model.register_comm_hook(None, hook)
    gen = torch.Generator().manual_seed(rank)
    x, y = torch.randn(B, 8, generator=gen), torch.randint(0, 3, (B,), generator=gen)
    _loss(ddp_model, x, y).backward()
    small = torch.stack(local).sum()
    local_ref = squared_norm(torch.autograd.grad(_loss(model, x, y), list(model.parameters())))
    xs = [torch.zeros_like(x) for _ in range(WORLD)]
    ys = [torch.zeros_like(y) for _ in range(WORLD)]
    dist.all_gather(xs, x)
    dist.all_gather(ys, y)
    big_ref = squared_norm(torch.autograd.grad(_loss(model, torch.cat(xs), torch.cat(ys)),
                                               list(model.parameters())))
    local_sq = float(small)
    dist.all_reduce(small)
    small /= WORLD
    big = squared_norm([p.grad for p in ddp_model.parameters()])
    tracker = NoiseScaleTracker()
    tracker.update_norms(0, small.item(), big, b_small=B, b_big=WORLD * B)
    with open(f"{out}/{rank}.json", "w") as fh:
        json.dump({"local": local_sq, "local_ref": local_ref, "big": big, "big_ref": big_ref,
                   "small_mean": small.item(), "b_simple": tracker.b_simple}, fh)
    del ddp_model                 # the reducer's threads end before the group does
    dist.barrier()                # neither rank tears gloo down while the other still talks
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_recipe_gives_the_two_batch_sizes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=WORLD)
    r = [json.loads((tmp_path / f"{k}.json").read_text()) for k in range(WORLD)]
    for k in range(WORLD):
        assert r[k]["local"] == pytest.approx(r[k]["local_ref"], rel=1e-5)
        assert r[k]["big"] == pytest.approx(r[k]["big_ref"], rel=1e-5)
    mean_local = (r[0]["local"] + r[1]["local"]) / 2
    assert r[0]["small_mean"] == pytest.approx(mean_local, rel=1e-12)
    expected = two_batch_pair(mean_local, r[0]["big"], B, WORLD * B)
    assert r[0]["b_simple"] == pytest.approx(expected[0] / expected[1], rel=1e-10)
    assert r[0]["b_simple"] == r[1]["b_simple"]
