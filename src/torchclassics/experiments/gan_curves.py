"""The painter GAN (the tutorial series' "GAN 生成对抗网络"): a generator learns to paint curves
a * x**2 + (a - 1), a ~ U(1, 2), from 5 random numbers, taught by a discriminator that learns
to tell its paintings from the famous artist's.

An epoch is ``steps_per_epoch`` updates (the tutorial's 10,000 steps are 50 epochs of 200),
each on a fresh batch of real paintings and noise drawn from generators seeded by
(seed, epoch): a resumed run replays exactly. Held-out metrics, every epoch, on 1,000 fixed
noise vectors and 1,000 fixed real paintings: how far the generated paintings lie from the
artist's family of curves, and what the discriminator makes of both."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.gan import WithNoise, generator_for
from ..data.paintings import ArtistWorks, artist_works, canvas, nearest_in_family, paint
from ..engine.loop import Task
from ..models.gan import critic, painter
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.plots import log_scale_if_wide, marker_for, new_figure, save, whole_number_ticks
from ._base import Experiment
from .frames import every_nth_epoch

# What the generator minimises, from the discriminator's logit on its fakes:
GENERATOR_LOSSES = {
    # log(1 - D(G(z))): the GAN paper's minimax game, and the tutorial's G_loss
    "saturating": lambda fake_logit: -F.softplus(fake_logit).mean(),
    # -log D(G(z)): the GAN paper's advice for strong gradients early on; DCGAN's
    "non_saturating": lambda fake_logit: F.softplus(-fake_logit).mean(),
}
EQUILIBRIUM_D_LOSS = 2 * math.log(2)  # D(x) = 1/2 everywhere: -log 1/2 - log(1 - 1/2)
SHOWN_PAINTINGS = 10  # paintings per GIF frame: the first is drawn boldly, as in the tutorial


def adversarial_step(generator_loss: str, losses_of_epoch: list):
    """The engine's step for a GAN with models "generator" and "discriminator".

    The discriminator first (real -> 1, fake -> 0), then the generator through the updated
    discriminator: the GAN paper's Algorithm 1 with one discriminator step per generator
    step. Each step's losses are appended to ``losses_of_epoch`` (tensors, copied to the
    host once per epoch) for the per-step loss figure."""
    generator_objective = GENERATOR_LOSSES[generator_loss]

    def step(trainer, noise, real):
        G, D = trainer.wrapped["generator"], trainer.wrapped["discriminator"]
        opt_g, opt_d = trainer.optimizers["generator"], trainer.optimizers["discriminator"]
        amp = trainer.precision
        with amp.autocast():
            fake = G(noise)
            real_logit, fake_logit = D(real), D(fake.detach())  # detach: this loss trains D alone
            # -mean log D(x) - mean log(1 - D(G(z))), the tutorial's D_loss
            loss_d = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        opt_d.zero_grad(set_to_none=True)
        amp.backward(loss_d)
        trainer.clip("discriminator")
        amp.step(opt_d)
        with amp.autocast():
            loss_g = generator_objective(D(fake))
        opt_g.zero_grad(set_to_none=True)
        amp.backward(loss_g)  # also fills D's gradients: cleared by D's zero_grad next step
        trainer.clip("generator")
        amp.step(opt_g)
        losses_of_epoch.append(torch.stack([loss_d.detach(), loss_g.detach()]))
        return {"loss_d": loss_d, "loss_g": loss_g, "d_real": torch.sigmoid(real_logit).mean(),
                "d_fake": torch.sigmoid(fake_logit).mean()}, None

    return step


def keep_step_losses(record: dict, losses_of_epoch: list) -> None:
    """Move one epoch's per-step (loss_d, loss_g) into ``record["step_losses"]`` (saved in checkpoints)."""
    if losses_of_epoch:
        done = torch.stack(losses_of_epoch).float().cpu()
        kept = record.get("step_losses")
        record["step_losses"] = done if kept is None else torch.cat([kept, done])
        losses_of_epoch.clear()


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    width = max(1, min(width, len(values)))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def draw_step_losses(ax, step_losses: torch.Tensor, generator_loss: str) -> None:
    """loss_d and loss_g per step, faint, with their moving averages and equilibrium values."""
    losses = step_losses.numpy()
    steps = np.arange(1, len(losses) + 1)
    width = max(1, len(losses) // 50)
    equilibrium_g = -math.log(2) if generator_loss == "saturating" else math.log(2)
    for column, (name, colour, level) in enumerate((("loss_d", "tab:red", EQUILIBRIUM_D_LOSS),
                                                    ("loss_g", "tab:green", equilibrium_g))):
        if width == 1:  # a short run: each step's loss is the curve itself
            ax.plot(steps, losses[:, column], color=colour, lw=1.5, marker=marker_for(len(steps)), ms=3,
                    label=f"{name}, each step")
        else:
            ax.plot(steps, losses[:, column], color=colour, alpha=0.2, lw=0.5)
            ax.plot(steps[width - 1:], moving_average(losses[:, column], width), color=colour, lw=1.5,
                    label=f"{name} (mean of {width} steps)")
        ax.axhline(level, color=colour, ls=":", lw=1, label=f"{name} at equilibrium ({level:+.3f})")
    ax.set(xlabel="step", ylabel="loss", title="losses per step")
    whole_number_ticks(ax, steps)
    ax.legend(fontsize=8)


class HeldOut:
    """Fixed noise and fixed real paintings, the same every epoch (their own seeded stream), and what
    the last evaluation measured (a GIF frame shows it)."""

    def __init__(self, params: dict, device):
        self.x = canvas(params["points"])
        draws = generator_for("held-out", params["seed"])
        real, _ = artist_works(params["eval_paintings"], self.x, draws)
        ideas = torch.randn(params["eval_paintings"], params["ideas"], generator=draws)
        self.real, self.ideas = real.to(device), ideas.to(device)
        self.latest: dict = {}

    @torch.no_grad()
    def measure(self, generator, discriminator) -> dict:
        """The held-out metrics of a generator and a discriminator, as plain floats."""
        generator.eval()
        discriminator.eval()
        fake = generator(self.ideas).float()
        a, distance = nearest_in_family(fake.cpu(), self.x)
        real_logit, fake_logit = discriminator(self.real).float(), discriminator(fake)
        d_real, d_fake = torch.sigmoid(real_logit), torch.sigmoid(fake_logit)
        measured = {
            "test_distance": float(distance.mean()),
            "test_a_std": float(a.std()),
            "test_d_real": float(d_real.mean()),
            # -(the discriminator's loss): the tutorial's "D score", 2 log 1/2 = -1.386 at equilibrium
            "test_d_score": float(-(F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean())),
            "test_d_accuracy": float(((d_real > 0.5).float().mean() + (d_fake < 0.5).float().mean()) / 2),
        }
        self.latest.clear()
        self.latest.update(measured)
        return measured

    def frame(self, epoch: int, generator) -> dict:
        """A GIF frame: the first paintings of the held-out noise, and the numbers last measured."""
        with torch.no_grad():
            paintings = generator.eval()(self.ideas[:SHOWN_PAINTINGS]).float().cpu()
        return {"epoch": epoch, "paintings": paintings, **self.latest}


@experiment("gan_curves")
class GanCurves(Experiment):
    objective = Objective("test_distance", "min")

    def model_alone(self, params, device, record):
        """The generator alone; evaluate builds the whole Task (its held-out paintings, both nets)."""
        return Task(model=painter(params["ideas"], params["hidden"], params["points"]), train=None, test=None)

    def example_input(self, task):
        ideas = task.model[0].in_features
        return torch.randn(2, ideas, generator=generator_for("example"))

    def build(self, params, device):
        generator = painter(params["ideas"], params["hidden"], params["points"]).to(device)
        discriminator = critic(params["points"], params["hidden"]).to(device)
        held_out, losses_of_epoch = HeldOut(params, device), []
        at_init = held_out.measure(generator, discriminator)  # what "better than untrained" means
        record = {"at_init": at_init, "frames": [held_out.frame(0, generator)]}
        every = every_nth_epoch(params)

        def evaluate(trainer) -> dict:
            return held_out.measure(trainer.models["generator"], trainer.models["discriminator"])

        def on_epoch_end(epoch, generator, record):
            keep_step_losses(record, losses_of_epoch)
            if epoch % every == 0 or epoch == params["epochs"]:
                record["frames"].append(held_out.frame(epoch, generator))

        real = ArtistWorks(params["steps_per_epoch"], params["batch_size"], params["points"], params["seed"], device)
        return Task(
            model=generator, models={"generator": generator, "discriminator": discriminator},
            train=WithNoise(real, (params["ideas"],), params["seed"]),
            test=None, step=adversarial_step(params["generator_loss"], losses_of_epoch),
            evaluate=evaluate, on_epoch_end=on_epoch_end, record=record, loss_name="loss_d",
            context={"x": held_out.x},
        )

    # -- summary and figures ----------------------------------------------------------------------
    def results(self, run):
        return {"at_init": run.task.record["at_init"]}

    def figures(self, run, folder):
        x = run.task.context["x"]
        paintings_animation(x, run.task.record["frames"], folder)
        draw_losses(run.task.record, run.fit.history, run.params["generator_loss"], folder / "loss.png")


def paintings_animation(canvas_x: torch.Tensor, frames: list[dict], figures_dir) -> None:
    """The tutorial's picture at every frame (animation.gif), the last one also painting.png:
    generated paintings between the bounds of the artist's family, and the held-out numbers.
    The bounds and axes are drawn once; a frame redraws the paintings, the numbers, the title
    and the legend (which lies over the paintings)."""
    x = canvas_x.numpy()
    writer = FrameWriter((6.4, 4.8))
    ax = writer.figure.add_subplot(1, 1, 1)
    first = frames[0]["paintings"].numpy()
    faint = [ax.plot(x, painting, c="#4AD631", lw=0.8, alpha=0.35)[0] for painting in first[1:]]
    (bold,) = ax.plot(x, first[0], c="#4AD631", lw=3, label="generated painting (others faint)")
    ax.plot(x, paint(torch.tensor([2.0]), canvas_x)[0].numpy(), c="#74BCFF", lw=3, label="upper bound (a = 2)")
    ax.plot(x, paint(torch.tensor([1.0]), canvas_x)[0].numpy(), c="#FF9359", lw=3, label="lower bound (a = 1)")
    numbers = [ax.text(-0.95, y, "", fontsize=8) for y in (2.75, 2.55, 2.35)]
    ax.set(xlabel="x", ylabel="painting y", ylim=(-0.5, 3))
    legend = ax.legend(loc="lower right", fontsize=8)
    writer.changing(*faint, bold, *numbers, ax.title, legend)
    for frame in frames:
        for line, painting in zip([bold, *faint], frame["paintings"].numpy()):
            line.set_ydata(painting)
        for text, line in zip(numbers, held_out_lines(frame)):
            text.set_text(line)
        ax.set_title(f"epoch {frame['epoch']}")
        writer.grab()
    writer.write_last(figures_dir / "painting.png")
    writer.write(figures_dir / "animation.gif", fps=4)


def draw_losses(record: dict, history: list[dict], generator_loss: str, path) -> None:
    fig = new_figure(11, 4)
    draw_step_losses(fig.add_subplot(1, 2, 1), record["step_losses"], generator_loss)
    ax = fig.add_subplot(1, 2, 2)
    epochs = [0] + [row["epoch"] for row in history]
    distances = [record["at_init"]["test_distance"]] + [row["test_distance"] for row in history]
    ax.plot(epochs, distances, marker="o", ms=3, label="generated paintings (held-out noise)")
    ax.set(xlabel="epoch", ylabel="mean RMS distance to the nearest a x² + (a - 1)",
           title="distance to the artist's family")
    log_scale_if_wide(ax, distances, span=3)  # the last epochs' small changes stay visible
    if ax.get_yscale() == "linear":  # nearly equal distances: plain numbers, no "1e-5 + 6.786e-1" over the label
        ax.ticklabel_format(axis="y", useOffset=False)
    whole_number_ticks(ax, epochs)
    ax.legend(fontsize=8)
    save(fig, path)


def held_out_lines(frame: dict) -> list[str]:
    """A frame's held-out numbers, as the picture writes them in its upper left."""
    return [f"D(real) = {frame['test_d_real']:.2f}  (the tutorial's 'D accuracy'; 0.5 at equilibrium)",
            f"D accuracy = {frame['test_d_accuracy']:.2f}   D score = {frame['test_d_score']:.2f} "
            f"({-EQUILIBRIUM_D_LOSS:.2f} at equilibrium)",
            f"distance to the family = {frame['test_distance']:.3f}"]
