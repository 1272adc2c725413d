"""Run the ``styletransfer train`` command in one torchrun process and keep this rank's decoder.

    torchrun --standalone --nproc-per-node 2 tests/helpers/ddp_worker.py OUT_DIR train --content-dir ...

Every rank writes ``OUT_DIR/rank{RANK}.pt`` (its decoder's state dict) and
``OUT_DIR/rank{RANK}_gradients.pt`` (the averaged gradient each step applied), so a test can check
that the replicas agree and set them against one process; the command itself writes checkpoints
from rank 0 only.
"""

from __future__ import annotations

import sys

import torch

import styletransfer.training as training
from styletransfer.cli import main
from tests.helpers.gradient_log import recorded_gradients


def run(out_dir: str, args: list[str]) -> int:
    results = []
    original = training.train

    def capture(*a, **k):
        results.append(original(*a, **k))
        return results[-1]

    training.train = capture
    with recorded_gradients() as steps:
        try:
            main(args, prog_name="styletransfer")
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
    for result in results:
        torch.save(result.decoder.state_dict(), f"{out_dir}/rank{result.rank}.pt")
        torch.save(steps, f"{out_dir}/rank{result.rank}_gradients.pt")
    return int(code)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
