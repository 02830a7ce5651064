"""Figures and GIFs: they say something for any run length, are written atomically, and the
frame writer's fast path draws the same picture as a full redraw."""
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from torchclassics.viz.animate import FrameWriter, animate, write_gif
from torchclassics.viz.embed import TsneAnimation, tsne_figure
from torchclassics.viz.plots import (
    confusion_figure,
    draw_image_grid,
    loss_curves,
    loss_figure,
    mosaic,
    new_figure,
    save,
)


def frame(value: int, size=(40, 60)) -> np.ndarray:
    picture = np.full((*size, 3), 255, dtype=np.uint8)
    picture[5:15, 5 + value: 15 + value] = (200, 30, 30)
    return picture


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# -- GIFs ----------------------------------------------------------------------------------------
def test_a_one_frame_gif_is_written(tmp_path):
    path = write_gif([frame(0)], tmp_path / "one.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 1 and gif.size == (60, 40)


def test_frames_keep_their_order_and_the_last_is_held(tmp_path):
    path = write_gif([frame(k) for k in range(3)], tmp_path / "three.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        durations = []
        for k in range(3):
            gif.seek(k)
            durations.append(gif.info["duration"])
            red = np.argwhere(np.asarray(gif.convert("RGB"))[..., 1] < 100)
            assert red[:, 1].min() == 5 + k  # the square moved one pixel a frame
    assert durations == [100, 100, 1500]


def test_no_frame_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "none.gif")
    with pytest.raises(ValueError, match="no frames"):
        animate([], lambda ax, item: None, tmp_path / "none.gif")
    assert list(tmp_path.iterdir()) == []


def test_frames_of_different_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="different sizes"):
        write_gif([frame(0), frame(0, size=(41, 60))], tmp_path / "x.gif")


def test_a_failing_gif_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "animation.gif"
    path.write_bytes(b"the previous animation")

    def full_disk(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(OSError, match="animation.gif"):
        write_gif([frame(0), frame(1)], path)
    assert path.read_bytes() == b"the previous animation"
    assert leftovers(tmp_path) == []


def test_a_failing_figure_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    path.write_bytes(b"the previous figure")

    def crash(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(Figure, "savefig", crash)
    with pytest.raises(RuntimeError):
        loss_curves([{"epoch": 1, "step": 3, "loss": 1.0}], path)
    assert path.read_bytes() == b"the previous figure"
    assert leftovers(tmp_path) == []


def test_figures_are_written_in_the_suffix_format(tmp_path):
    fig = new_figure(2, 2)
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    assert (save(fig, tmp_path / "f.png")).read_bytes().startswith(b"\x89PNG")
    assert (save(fig, tmp_path / "f.svg")).read_text().lstrip().startswith("<?xml")
    assert leftovers(tmp_path) == []


# -- the frame writer ----------------------------------------------------------------------------
def draw_curve(ax, k):
    ax.plot([0, 1, 2], [0, k, 2 * k], "r-")
    ax.set(xlabel="x", ylabel="y", ylim=(-1, 10), title=f"frame {k}" + " longer title" * k)


def test_frames_have_the_same_size_whatever_they_show(tmp_path):
    writer = FrameWriter((3, 2.5))
    for k in range(4):
        draw_curve(writer.axes(), k)
        writer.grab()
    assert {f.shape for f in writer.frames} == {(250, 300, 3)}
    assert not np.array_equal(writer.frames[0], writer.frames[3])
    with Image.open(writer.write(tmp_path / "a.gif")) as gif:
        assert gif.n_frames == 4 and gif.size == (300, 250)


def test_updating_artists_draws_what_a_full_redraw_draws():
    redraw = FrameWriter((3, 2.5))
    update = FrameWriter((3, 2.5))
    ax = update.figure.add_subplot(1, 1, 1)
    draw_curve(ax, 0)
    (line,) = ax.get_lines()
    update.changing(line, ax.title)
    for k in range(3):
        draw_curve(redraw.axes(), k)
        redraw.grab()
        line.set_ydata([0, k, 2 * k])
        ax.set_title(f"frame {k}" + " longer title" * k)
        update.grab()
    assert not np.array_equal(update.frames[0], update.frames[2])  # the changing line was redrawn
    for fast, full in zip(update.frames, redraw.frames):
        np.testing.assert_array_equal(fast, full)


def test_the_last_frame_is_written_as_a_png(tmp_path):
    writer = FrameWriter((2, 2))
    draw_curve(writer.axes(), 1)
    writer.grab()
    with Image.open(writer.write_last(tmp_path / "fit.png")) as still:
        np.testing.assert_array_equal(np.asarray(still.convert("RGB")), writer.frames[-1])


def test_tsne_frames_move_the_points_and_keep_their_size(tmp_path):
    labels = np.arange(30) % 10
    animation = TsneAnimation(labels, size=(3, 2.5))
    rng = np.random.default_rng(0)
    for _ in range(3):
        animation.frame(rng.normal(size=(30, 2)), "a title")
    assert {f.shape for f in animation.frames} == {(250, 300, 3)}
    assert not np.array_equal(animation.frames[0], animation.frames[1])
    assert animation.write(tmp_path / "tsne.gif").is_file()
    tsne_figure(rng.normal(size=(30, 2)), labels, tmp_path / "tsne.png", "t-SNE")
    assert (tmp_path / "tsne.png").is_file()


# -- the loss figure -----------------------------------------------------------------------------
def lines_by_label(ax) -> dict:
    return {line.get_label().split(" (")[0]: line for line in ax.get_lines()}


def test_one_epoch_shows_every_step_with_labelled_axes():
    steps = list(np.linspace(2.3, 0.2, 80))
    history = [{"epoch": 1, "step": 80, "loss": 0.9, "test_loss": 0.3, "accuracy": 0.7, "test_accuracy": 0.91}]
    fig = loss_figure(history, "cnn", step_losses=steps)
    loss_ax, accuracy_ax = fig.axes
    lines = lines_by_label(loss_ax)
    assert len(lines["train, each step"].get_xdata()) == 80
    assert list(lines["train, epoch mean"].get_xdata()) == [80] and lines["train, epoch mean"].get_marker() == "o"
    assert list(lines["test"].get_xdata()) == [80]
    assert loss_ax.get_xlabel() == "step" and loss_ax.get_ylabel() == "loss"
    assert accuracy_ax.get_xlabel() == "step" and accuracy_ax.get_ylabel() == "accuracy"
    assert accuracy_ax.get_xlim() == loss_ax.get_xlim()  # the accuracy points at the end of the same steps
    legend = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert any("last 0.3" in text for text in legend)
    low, high = loss_ax.get_xlim()
    ticks = [tick for tick in loss_ax.get_xticks() if low <= tick <= high]
    assert len(ticks) > 2 and all(tick == int(tick) for tick in ticks)  # whole steps, not the last one alone


def test_metric_names_are_arguments():
    history = [{"epoch": e, "step": 10 * e, "mse": 1.0 / e, "val_mse": 1.2 / e} for e in (1, 2)]
    ax = loss_figure(history, loss="mse", held_out="val", step_losses=[1.0] * 20).axes[0]
    lines = lines_by_label(ax)
    assert set(lines) == {"train, each step", "train, epoch mean", "val"}
    assert ax.get_ylabel() == "mse"


def test_many_epochs_are_drawn_per_epoch():
    history = [{"epoch": e, "step": e, "loss": 1.0 / e, "test_loss": 1.1 / e} for e in range(1, 201)]
    ax = loss_figure(history, step_losses=[0.5] * 200).axes[0]
    assert ax.get_xlabel() == "epoch" and len(lines_by_label(ax)["train"].get_xdata()) == 200
    assert ax.get_yscale() == "log"  # the loss spans 200x


def test_one_epoch_without_step_losses_marks_its_points_at_epoch_1():
    ax = loss_figure([{"epoch": 1, "loss": 0.19, "test_loss": 0.17}]).axes[0]
    assert all(line.get_marker() == "o" for line in ax.get_lines())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1"]


def test_todays_rows_and_call_still_work(tmp_path):
    history = [{"epoch": 1, "loss": 0.5, "test_loss": 0.4}]
    path = loss_curves(history, tmp_path / "loss.png", "regression")
    with Image.open(path) as image:
        assert image.size == (640, 400)
    assert leftovers(tmp_path) == []


def test_no_epoch_or_a_wrong_metric_name_still_gives_a_labelled_figure_saying_why():
    ax = loss_figure([]).axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and "no epoch finished" in ax.texts[0].get_text()
    ax = loss_figure([{"epoch": 1, "mse": 0.1, "test_mse": 0.2}]).axes[0]  # loss="loss" by default
    assert "no 'loss' or 'test_loss'" in ax.texts[0].get_text() and "test_mse" in ax.texts[0].get_text()


# -- confusion matrices ---------------------------------------------------------------------------
def test_many_long_class_names_are_slanted_and_digits_are_not():
    languages = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
                 "Japanese", "Polish", "Portuguese", "Russian", "Spanish"]
    labels = np.arange(45) % 15
    names = confusion_figure(labels, labels, languages).axes[0]
    assert all(t.get_rotation() == 45 and t.get_ha() == "right" for t in names.get_xticklabels())
    digits = confusion_figure(labels % 10, labels % 10, [str(d) for d in range(10)]).axes[0]
    assert all(t.get_rotation() == 0 for t in digits.get_xticklabels())
    assert [t.get_text() for t in digits.texts[:2]] == ["6", "0"]  # 0 and 10 % 10: six zeros, each count in its cell


# -- image grids ---------------------------------------------------------------------------------
def test_mosaic_places_images_row_by_row():
    images = np.arange(5)[:, None, None] * np.ones((5, 2, 3), dtype=np.uint8)
    grid = mosaic(images, columns=3, gap=1, fill=255)
    assert grid.shape == (5, 11)
    assert grid[0, 4] == 1 and grid[3, 0] == 3 and grid[3, 4] == 4 and grid[3, 8] == 255 and grid[2, 0] == 255


def test_image_grid_titles_every_image():
    ax = new_figure(4, 3).add_subplot(1, 1, 1)
    draw_image_grid(ax, np.zeros((6, 28, 28), dtype=np.uint8), 3, [str(k) for k in range(6)], cmap="gray")
    assert [t.get_text() for t in ax.texts] == [str(k) for k in range(6)]


def test_animate_keeps_working_for_todays_callers(tmp_path):
    path = animate(range(3), draw_curve, tmp_path / "a.gif", size=(2, 2), fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (200, 200)
