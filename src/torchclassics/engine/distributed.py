"""One code path for 1 and N processes: DDP when torchrun has set RANK, nothing otherwise."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..core.errors import UserError


def attempt_store(rank: int, world: int):
    """torchrun's key-value store, under a prefix of its own for each restart of the job.

    After ``--max-restarts`` restarts a killed worker, the processes of the new attempt must not
    read the addresses the previous attempt's processes left in the store (measured: with plain
    ``env://``, killing rank 0 made the restarted rank 0 connect to the dead rank 1's old port and
    fail). The store itself is torchrun's (its agent hosts it) or rank 0's, as ``env://`` would do."""
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=rank == 0 and not agent_hosts)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"torchclassics/attempt-{attempt}", store)


class Distributed:
    def __init__(self):
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        use_cuda = torch.cuda.is_available()
        if use_cuda and self.local_rank >= torch.cuda.device_count():
            raise UserError(f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', self.local_rank + 1)} processes on "
                            f"this machine but it has {torch.cuda.device_count()} GPU(s): use --nproc_per_node="
                            f"{torch.cuda.device_count()}, or CUDA_VISIBLE_DEVICES= to train on CPU processes.")
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", store=attempt_store(self.rank, self.world),
                                    rank=self.rank, world_size=self.world)
        self.device = torch.device("cuda", self.local_rank) if use_cuda else torch.device("cpu")

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over every process (train metrics are counted on each process's shard)."""
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def share(self, value):
        """Rank 0's value, on every rank (e.g. the run directory's name)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def from_env() -> Distributed | None:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun, even with one process
        return Distributed()
    return None
