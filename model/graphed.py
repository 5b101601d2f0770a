"""Training epochs of static-buffer steps, replayed as a CUDA graph on a GPU.

At small batch sizes a GPU step is nearly all kernel launches and Python; its arithmetic is a tiny
share (issue 14). Here every tensor a step touches keeps one address: the batch's indices, the
gathered images and labels, the learning rate (a tensor the fused optimiser reads), the running loss
and the correct count. So CUDA can capture the whole step once per run (the gather, the augmentation
(shifts, distortions), dropout, forward, loss, backward and the fused optimiser step) and replay it
with one launch per batch. The schedule's next rate is written into the rate tensor between replays,
from the run's own scheduler stepped on a shadow optimiser.

On CPU nothing is captured and the same body runs as plain code: that is the testable core, which
for a fixed seed makes the same updates as model.loop.train_step (tests/test_graphed.py). Where
capture fails, one log line says why and the run trains eagerly.
"""
from __future__ import annotations

import contextlib
import logging
import math
import warnings

import torch
import torch.nn.functional as F

from model.augment import augment
from model.step import train_step

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch.cuda.graphs asks
CHECK_EVERY = 50  # steps between divergence checks (each one waits for the device)


class Schedule:
    """The run's scheduler stepped on a one-parameter shadow optimiser: the rate of every step
    without touching the real optimiser, whose rate is a tensor inside the graph."""

    def __init__(self, run):
        self.run = run
        self.param = torch.zeros(1, requires_grad=True)
        self.opt = torch.optim.SGD([self.param], lr=float(run.optimizer.param_groups[0]["lr"]))
        self.sched = None
        if run.scheduler is not None:
            self.sched = object.__new__(type(run.scheduler))
            self.sched.__dict__.update(run.scheduler.state_dict())  # what load_state_dict does
            self.sched.optimizer = self.opt
            self.opt.param_groups[0]["initial_lr"] = run.scheduler.base_lrs[0]

    def current(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def advance(self) -> None:
        if self.sched is not None:
            with warnings.catch_warnings():  # "optimizer.step() overridden": the shadow has no patched step
                warnings.simplefilter("ignore", UserWarning)
                self.sched.step()

    def write_back(self) -> None:
        """The real scheduler and rate where the eager path would have left them."""
        if self.sched is not None:
            self.run.scheduler.load_state_dict(self.sched.state_dict())
        for g in self.run.optimizer.param_groups:
            g["lr"] = self.current()


def snapshot(run) -> tuple[list[torch.Tensor], dict]:
    """Copies of the weights and of the optimiser's state tensors, to undo steps in place."""
    params = [p.detach().clone() for p in run.model.parameters()]
    state = {p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)} for p, st in run.optimizer.state.items()}
    return params, state


def restore(run, snap: tuple[list[torch.Tensor], dict]) -> None:
    """Put weights and optimiser state back *into the same tensors* (load_state_dict would make new
    ones, which a captured graph would never see). State the steps created is zeroed: a zero
    momentum buffer, Adam moment or step count acts exactly as none does."""
    params, state = snap
    with torch.no_grad():
        for p, saved in zip(run.model.parameters(), params):
            p.copy_(saved)
        for p, st in run.optimizer.state.items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    old = state.get(p, {}).get(k)
                    v.copy_(old) if old is not None else v.zero_()


class StaticStep:
    """The training step of `run` on fixed buffers; `step(idx, lr)` trains on the images idx names."""

    def __init__(self, run, x: torch.Tensor, y: torch.Tensor, background: float):
        self.run, self.x, self.y, self.background = run, x, y, background
        b = run.cfg.batch_size
        self.idx = torch.zeros(b, dtype=torch.long, device=x.device)
        self.xb = x.new_empty((b, x.shape[1]))
        self.yb = y.new_empty(b)
        self.loss_sum = torch.zeros((), device=x.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=x.device)
        # the rate as a tensor: float64 on CPU, where it then equals the eager step's Python float to
        # the bit; float32 on CUDA, which the fused kernels read there
        self.lr = torch.zeros((), dtype=torch.float64 if x.device.type == "cpu" else torch.float32, device=x.device)
        self.generator: torch.Generator | None = None  # CPU: the epoch's generator; CUDA: the device's
        self.graph = None
        self.tried = False

    def use_tensor_lr(self) -> None:
        for g in self.run.optimizer.param_groups:
            g["lr"] = self.lr  # the fused optimiser reads the rate from this tensor

    def body(self) -> None:
        """One step on the static buffers; every result lands in a buffer."""
        run = self.run
        torch.index_select(self.x, 0, self.idx, out=self.xb)
        torch.index_select(self.y, 0, self.idx, out=self.yb)
        xb = self.xb
        xb = augment(xb, run.cfg, self.background, self.generator, run.image_shape)
        # no autocast cache: a graph must not keep casts of the weights from the step it was captured in
        with torch.autocast(xb.device.type, dtype=run.amp, cache_enabled=False) if run.amp else contextlib.nullcontext():
            logits = run.model(xb)
        loss = F.cross_entropy(logits.float(), self.yb)
        run.optimizer.zero_grad(set_to_none=False)  # gradients keep their addresses
        loss.backward()
        run.optimizer.step()
        self.loss_sum.add_(loss.detach() * len(self.yb))
        self.correct.add_((logits.detach().argmax(1) == self.yb).sum())

    def warm_up(self, steps: int = WARMUP_STEPS) -> None:
        """Real steps on the current stream (capture needs the kernels' workspaces allocated first)."""
        for _ in range(steps):
            self.body()

    def capture(self) -> None:
        """Record body() as a CUDA graph once; on failure log why and stay eager. The warm-up and
        capture steps are undone in place (the graph holds the tensors' addresses)."""
        self.tried = True
        if self.x.device.type != "cuda":
            return
        snap = snapshot(self.run)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.warm_up()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.body()
            self.graph = graph
        except Exception as e:  # noqa: BLE001 - whatever capture cannot hold, eager steps can
            log.warning("CUDA graph capture failed, training eagerly: %s", " ".join(str(e).split())[:200])
            self.graph = None
        finally:
            restore(self.run, snap)
            self.loss_sum.zero_()
            self.correct.zero_()

    def step(self, idx: torch.Tensor, lr: float) -> None:
        self.idx.copy_(idx)
        self.lr.fill_(lr)
        if self.graph is not None:
            self.graph.replay()
        else:
            self.body()


def static_epoch(run, x: torch.Tensor, y: torch.Tensor, background: float, perm: torch.Tensor,
                 gen: torch.Generator, progress=None) -> dict:
    """model.loop.train_epoch's contract with static steps for the full batches; the last, partial
    batch (its shape differs) takes the eager step."""
    step = getattr(run, "static_step", None)
    if step is None or step.x is not x:
        step = run.static_step = StaticStep(run, x, y, background)
    schedule = Schedule(run)  # before the rate becomes the step's tensor: it reads the float
    step.generator = gen if x.device.type == "cpu" else None
    step.use_tensor_lr()
    if not step.tried:
        step.capture()
    if x.device.type == "cuda":  # the shifts and dropout masks come from the device's generator
        torch.cuda.manual_seed(gen.initial_seed())
    step.loss_sum.zero_()
    step.correct.zero_()
    b, n = run.cfg.batch_size, len(y)
    full = n // b
    seen, diverged = 0, False
    for k in range(full):
        step.step(perm[k * b:(k + 1) * b], schedule.current())
        schedule.advance()
        seen += b
        if progress is not None:
            progress(b)
        if k % CHECK_EVERY == CHECK_EVERY - 1 and not torch.isfinite(step.loss_sum):
            diverged = True
            break
    loss_sum, correct = step.loss_sum.clone(), step.correct.clone()
    schedule.write_back()
    if not diverged and full * b < n:
        idx = perm[full * b:]
        xb, yb = x[idx], y[idx]
        xb = augment(xb, run.cfg, background, step.generator, run.image_shape)
        loss, logits = train_step(run, xb, yb)
        loss_sum += loss * len(yb)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(yb)
        if progress is not None:
            progress(len(yb))
    loss_mean = float(loss_sum) / max(seen, 1)
    return {"train_loss": loss_mean, "train_accuracy": int(correct) / max(seen, 1),
            "diverged": diverged or not math.isfinite(loss_mean)}
