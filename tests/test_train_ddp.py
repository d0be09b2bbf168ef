"""The DDP path on CPU: two processes with the gloo backend, as torchrun would launch them."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from eventclip.train import synth, trainer
from tests.test_train_trainer import tiny_recipe


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, folder: str, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), EVENTCLIP_NO_PROGRESS="1", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    try:
        result = trainer.train(tiny_recipe(folder), out)
        torch.save(result.model.event_encoder.state_dict(), f"{out}/rank{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_process_gloo_training_keeps_replicas_identical(tmp_path):
    folder = synth.generate(tmp_path / "d", synth.SynthConfig(seed=2, emoji=1, letters=1, digits=1,
                                                              samples_per_class=4))
    out = tmp_path / "run"
    out.mkdir()
    mp.start_processes(_worker, args=(_port(), str(folder), str(out)), nprocs=2, start_method="spawn")
    a, b = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert (out / "model" / "model.json").is_file()
