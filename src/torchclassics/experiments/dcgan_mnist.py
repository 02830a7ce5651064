"""A small DCGAN on MNIST: a transposed-convolution generator against a strided-convolution
discriminator (Radford, Metz and Chintala 2015), trained with the engine's GAN step.

How good are the digits? A judge, the tutorial series' CNN (``models/cnn.py``) trained
inside the experiment for a few seconds on the same training digits, looks at 1,000 digits
generated from fixed noise after every epoch:

* ``test_fd``: the Fréchet distance between generated and real test digits in the judge's
  feature space (its last feature maps averaged over their 7x7 positions: 32 numbers per
  digit), as FID does with an Inception net. It grows when digits look wrong *and* when some
  digits are never drawn (mode collapse); real training digits score near 0;
* ``test_confident``: the share of generated digits the judge labels with probability > 0.9
  (legibility alone: a generator drawing only ones would score high).

The judge is trained from its own fixed seed, so every run on the same data is measured by
the same judge, whatever the run's seed; it is rebuilt (identically) on --resume.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import UserError
from ..data import mnist
from ..data.batches import TensorBatches
from ..data.gan import WithNoise, generator_for
from ..engine import threads
from ..engine.loop import Task
from ..models.cnn import CNN
from ..models.gan import DCDiscriminator, DCGenerator, dcgan_init
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.animate import FrameWriter
from ..viz.plots import log_scale_if_wide, new_figure, save, whole_number_ticks
from ._base import Experiment
from .frames import every_nth_epoch
from .gan_curves import adversarial_step, draw_step_losses, keep_step_losses

JUDGE_BATCH, JUDGE_LR = 50, 1e-3
CONFIDENT = 0.9     # a judge's label counts as confident above this probability
GRID_SIDE = 8       # the sample grid: 8 x 8 digits from fixed noise
EVAL_CHUNK = 500    # digits per forward pass when measuring
# CPU threads of the judge and of training. On this project's shared, busy 2-core CPU one thread
# ran a GAN step in 0.12-0.15 s, two threads in 0.9 s (the other processes hold the second core).
# One thread also keeps the judge's arithmetic, and so every test_fd, the same whatever the
# number of cores.
CPU_THREADS = 1


def to_tanh_range(images: torch.Tensor, labels: torch.Tensor):
    """uint8 (B, 28, 28) -> float (B, 1, 28, 28) in [-1, 1], the range of the generator's Tanh."""
    return images.unsqueeze(1).float().mul_(2 / 255).sub_(1), labels


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generated (B, 1, 28, 28) in [-1, 1] -> uint8 (B, 28, 28): the pixels a saved image would hold."""
    return images[:, 0].float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def for_cpu(module):
    """Channels-last weights make oneDNN's convolutions faster on a CPU (cnn_mnist measured 1.35-1.5x;
    here 1.2x per GAN step); the arithmetic is the same."""
    return module.to(memory_format=torch.channels_last)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mean_a - mean_b|^2 + trace(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)), in float64.

    The trace of the square root is the sum of the square roots of the eigenvalues of
    cov_a @ cov_b, which are real and >= 0 for two covariance matrices (tiny negative or
    imaginary parts are rounding)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    roots = np.sqrt(np.linalg.eigvals(cov_a @ cov_b).real.clip(min=0)).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * roots)


class Judge:
    """The tutorial's CNN trained for ``steps`` steps on the training digits, from its own seed."""

    def __init__(self, data: mnist.Mnist, device: torch.device, steps: int, reference_digits: int):
        with torch.random.fork_rng(devices=[]):  # its own initial weights; the run's random streams untouched
            torch.manual_seed(0)
            self.net = CNN().to(device)
        if device.type == "cpu":
            self.net = for_cpu(self.net)
        self.device = device
        self.train(data.train_images, data.train_labels, steps)
        test = data.test_images[:reference_digits]
        features, probabilities = self.look(test)
        self.accuracy = float((probabilities.argmax(1) == data.test_labels[: len(test)]).float().mean())
        self.reference = features  # real test digits: what generated digits are compared with
        self.real_digits = {  # what real digits score: the best a generator can hope for
            "test_fd": frechet_distance(self.look(data.train_images[:reference_digits])[0], features),
            "test_confident": float((probabilities.max(1).values > CONFIDENT).float().mean()),
        }

    def train(self, images: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=JUDGE_LR)
        draws = generator_for("judge")
        self.net.train()
        for _ in range(steps):
            index = torch.randint(len(images), (JUDGE_BATCH,), generator=draws)
            logits = self.net(mnist.normalise(images[index].to(self.device)))
            loss = F.cross_entropy(logits, labels[index].to(self.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        self.net.eval()

    @torch.no_grad()
    def look(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """uint8 digits (N, 28, 28) -> (features (N, 32) as numpy, label probabilities (N, 10) on the CPU)."""
        features, probabilities = [], []
        for chunk in images.split(EVAL_CHUNK):
            maps = self.net.conv2(self.net.conv1(mnist.normalise(chunk.to(self.device))))
            features.append(maps.mean(dim=(2, 3)).cpu())
            probabilities.append(torch.softmax(self.net.out(maps.flatten(1)), dim=1).cpu())
        return torch.cat(features).numpy(), torch.cat(probabilities)

    def score(self, digits: torch.Tensor) -> dict:
        features, probabilities = self.look(digits)
        return {"test_fd": frechet_distance(features, self.reference),
                "test_confident": float((probabilities.max(1).values > CONFIDENT).float().mean())}


def grid(digits: torch.Tensor) -> np.ndarray:
    """uint8 (side * side, 28, 28) -> one (side * 30, side * 30) image, 2 dark pixels between digits."""
    side = int(round(len(digits) ** 0.5))
    padded = F.pad(digits[: side * side], (1, 1, 1, 1))
    return padded.reshape(side, side, 30, 30).permute(0, 2, 1, 3).reshape(side * 30, side * 30).numpy()


@torch.no_grad()
def generate(generator, noise: torch.Tensor, device) -> torch.Tensor:
    """uint8 digits from ``noise``, the generator in eval mode (batch norm's running statistics: what an
    exported generator computes)."""
    generator.eval()
    return torch.cat([to_uint8(generator(chunk.to(device))).cpu() for chunk in noise.split(EVAL_CHUNK)])


@experiment("dcgan_mnist")
class DcganMnist(Experiment):
    objective = Objective("test_fd", "min")

    def model_alone(self, params, device, record):
        """The generator alone: no data set read, no judge trained."""
        return Task(model=DCGenerator(params["noise_dim"], params["width"]), train=None, test=None)

    def example_input(self, task):
        """A noise batch: what the generator turns into digits."""
        return torch.randn(2, task.model.noise_dim, generator=generator_for("example"))

    def build(self, params, device):
        data = mnist.load_mnist(params.get("data_root"), allow_download=params.get("download", True))
        if params["batch_size"] > len(data.train_images):  # drop_last would leave no batch at all
            raise UserError(f"batch_size={params['batch_size']}: more than the {len(data.train_images):,} "
                            f"training digits ({data.source}); give at most {len(data.train_images)}.")
        generator = dcgan_init(DCGenerator(params["noise_dim"], params["width"])).to(device)
        discriminator = dcgan_init(DCDiscriminator(params["width"])).to(device)
        if device.type == "cpu":
            generator, discriminator = for_cpu(generator), for_cpu(discriminator)
        eval_noise = torch.randn(params["eval_digits"], params["noise_dim"],
                                 generator=generator_for("held-out", params["seed"])).to(device)
        # The grid's noise lives in the record: checkpointed, so a resumed run draws the same digits.
        grid_noise = torch.randn(GRID_SIDE**2, params["noise_dim"], generator=generator_for("grid", params["seed"]))
        record = {"grid_noise": grid_noise}

        def frame(epoch: int, generator) -> dict:
            return {"epoch": epoch, "digits": generate(generator, record["grid_noise"], device)}

        with threads.using(CPU_THREADS):  # as in training: the judge's numbers never depend on the cores
            judge = Judge(data, device, params["judge_steps"], params["eval_digits"])
            record["at_init"] = judge.score(generate(generator, eval_noise, device))
            record["frames"] = [frame(0, generator)]
        losses_of_epoch: list = []
        every = every_nth_epoch(params)

        def evaluate(trainer) -> dict:
            return judge.score(generate(trainer.models["generator"], eval_noise, device))

        def on_epoch_end(epoch, generator, record):
            keep_step_losses(record, losses_of_epoch)
            if epoch % every == 0 or epoch == params["epochs"]:
                record["frames"].append(frame(epoch, generator))

        real = TensorBatches(data.train_images, data.train_labels, batch_size=params["batch_size"],
                             shuffle=True, seed=params["seed"], drop_last=True, transform=to_tanh_range, device=device)
        return Task(
            model=generator, models={"generator": generator, "discriminator": discriminator},
            train=WithNoise(real, (params["noise_dim"],), params["seed"]), test=None,
            step=adversarial_step(params["generator_loss"], losses_of_epoch),
            evaluate=evaluate, on_epoch_end=on_epoch_end, record=record,
            loss_name="loss_d", cpu_threads=CPU_THREADS, context={"data": data, "judge": judge},
        )

    # -- summary and figures ----------------------------------------------------------------------
    def results(self, run):
        data, judge = run.task.context["data"], run.task.context["judge"]
        return {"data": data.source, "at_init": run.task.record["at_init"], "real_digits": judge.real_digits,
                "judge": {"model": "CNN of models/cnn.py", "steps": run.params["judge_steps"],
                          "batch_size": JUDGE_BATCH, "test_accuracy": judge.accuracy}}

    def figures(self, run, folder):
        record, history, judge = run.task.record, run.fit.history, run.task.context["judge"]
        samples_animation(record["frames"], folder)
        draw_losses(record, history, run.params["generator_loss"], folder / "loss.png")
        draw_quality(record, history, judge.real_digits, folder / "quality.png")


def samples_animation(frames: list[dict], figures_dir) -> None:
    """The grid of digits from fixed noise at every frame (animation.gif); the last is
    samples.png. The axes are drawn once; a frame swaps the grid's pixels and the title."""
    writer = FrameWriter((5, 5.3))
    ax = writer.figure.add_subplot(1, 1, 1)
    picture = ax.imshow(grid(frames[0]["digits"]), cmap="gray", vmin=0, vmax=255)
    ax.set(xticks=[], yticks=[], xlabel=f"{GRID_SIDE**2} digits from fixed noise")
    writer.changing(picture, ax.title)
    for frame in frames:
        picture.set_data(grid(frame["digits"]))
        ax.set_title(f"epoch {frame['epoch']}" + ("  (untrained)" if frame["epoch"] == 0 else ""))
        writer.grab()
    writer.write_last(figures_dir / "samples.png")
    writer.write(figures_dir / "animation.gif", fps=3)


def draw_losses(record: dict, history: list[dict], generator_loss: str, path) -> None:
    fig = new_figure(11, 4)
    draw_step_losses(fig.add_subplot(1, 2, 1), record["step_losses"], generator_loss)
    ax = fig.add_subplot(1, 2, 2)
    epochs = [row["epoch"] for row in history]
    for key, label in (("d_real", "D(x), real digits"), ("d_fake", "D(G(z)), generated digits")):
        ax.plot(epochs, [row[key] for row in history], marker="o", ms=3, label=label)
    ax.set(xlabel="epoch", ylabel="discriminator's probability 'real' (training batches)", ylim=(0, 1),
           title="what the discriminator says")
    whole_number_ticks(ax, epochs)
    ax.legend(fontsize=8)
    save(fig, path)


def draw_quality(record: dict, history: list[dict], real_digits: dict, path) -> None:
    """The judge's two numbers per epoch, beside what real digits score."""
    fig = new_figure(11, 4)
    epochs = [0] + [row["epoch"] for row in history]
    rows = [record["at_init"]] + history
    shown = (("test_fd", "Fréchet distance in the judge's features", True),
             ("test_confident", f"share of confident labels (p > {CONFIDENT})", False))
    for column, (key, label, log) in enumerate(shown):
        ax = fig.add_subplot(1, 2, column + 1)
        values = [row[key] for row in rows]
        ax.plot(epochs, values, marker="o", ms=3, label="generated digits")
        ax.axhline(real_digits[key], color="k", ls="--", lw=1, label="real digits")
        ax.set(xlabel="epoch", ylabel=label, title=label.split(" (")[0])
        if log:
            log_scale_if_wide(ax, values + [real_digits[key]], span=3)
        whole_number_ticks(ax, epochs)
        ax.legend(fontsize=8)
    save(fig, path)
