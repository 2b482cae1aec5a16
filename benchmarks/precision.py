"""Precision benchmark: milliseconds per image of one training step (forward, backward, AdamW) on this CPU.

For the default models of each task, in fp32, bf16 mixed precision (what `--precision bf16-mixed` gives: Lightning
runs the step under torch.autocast(bfloat16) on a CPU) and fp32 with channels-last memory. The median of --steps
steps after two warm-up steps, batch 64:

- `compact` on 64 px tiles (the image task);
- `crnn` on 32 x 128 CAPTCHAs (the text task).

    python benchmarks/precision.py [--steps 6] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def step_ms(model, x, bf16: bool, channels_last: bool, steps: int) -> float:
    import torch

    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = model(x).float().square().mean()  # the loss does not matter to the step's cost
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]) * 1000 / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    args = ap.parse_args()

    import os

    import torch

    from hardsight.config import InputSpec
    from hardsight.models import build_model
    from hardsight.models.image_classifiers import build_image_model

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    torch.manual_seed(0)
    models = {
        "compact, 64 px tiles": (lambda: build_image_model("compact", 12), torch.rand(64, 3, 64, 64)),
        "crnn, 32 x 128 CAPTCHAs": (lambda: build_model("crnn", "text", num_classes=36,
                                                        spec=InputSpec(height=32, width=128)), torch.rand(64, 1, 32, 128)),
    }
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    bf16_flags = sorted({f for f in cpu.split() if "bf16" in f or f.startswith("amx")})
    print(f"\nprecision: {torch.get_num_threads()} threads, CPU bf16 support: {', '.join(bf16_flags) or 'none found'}\n")
    print("| model | fp32 | bf16-mixed | fp32 channels-last | bf16 speed-up |\n|---|---|---|---|---|")
    for name, (build, x) in models.items():
        ms = [step_ms(build(), x, bf16, cl, args.steps) for bf16, cl in ((False, False), (True, False), (False, True))]
        print(f"| {name} | {ms[0]:.2f} ms | {ms[1]:.2f} ms | {ms[2]:.2f} ms | {ms[0] / ms[1]:.2f}x |")


if __name__ == "__main__":
    main()
