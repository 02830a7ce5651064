"""A character-level RNN names a surname's language (PyTorch tutorial "NLP From Scratch:
Classifying Names with a Character-Level RNN").

Names are batches of padded letter indices; the RNN reads each one-hot letter and a
linear layer classifies the state after the name's last letter (models/char_rnn.py). The
alphabet and the languages are kept in the Task's ``record``, which every checkpoint
carries, so ``predict`` needs no data: ``torchclassics predict RUN Dostoevsky``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.batches import TensorBatches
from ..data.names import LETTERS, encode, load_names, stratified_split, to_ascii
from ..engine import checkpoint
from ..engine.loop import Task, accuracy_sum
from ..errors import UserError
from ..models.char_rnn import CharRNN
from ..registry import experiment
from ..viz.plots import confusion_matrix
from ._base import Experiment, draw_loss

EXAMPLES = ("Dovesky", "Jackson", "Satoshi", "Dostoevsky", "Nguyen", "Schmidt")  # the tutorial's, and a few more


def trim_padding(codes: torch.Tensor, labels: torch.Tensor):
    """A batch as long as its longest name, not the longest of the whole data set."""
    longest = int((codes != 0).sum(1).max())
    return codes[:, :max(longest, 1)], labels


@experiment("char_rnn_names")
class CharRNNNames(Experiment):
    objective = ("test_accuracy", "max")

    def build(self, params, device):
        data = load_names(params["data_root"], params["download"])
        train, test = stratified_split(data.labels, params["test_fraction"], params["seed"])
        codes = encode(data.names)
        self.data, self.test_index = data, test
        self.letters, self.languages = LETTERS, data.languages

        def batches(index, batch_size, shuffle):
            return TensorBatches(codes[index], data.labels[index], batch_size=batch_size, shuffle=shuffle,
                                 seed=params["seed"], transform=trim_padding, device=device)

        return Task(model=self.model(params), train=batches(train, params["batch_size"], True),
                    test=batches(test, params["test_batch_size"], False), loss_fn=nn.CrossEntropyLoss(),
                    metrics={"accuracy": accuracy_sum}, monitor="test_accuracy", mode="max",
                    record={"letters": LETTERS, "languages": list(data.languages)})

    def model(self, params) -> CharRNN:
        return CharRNN(len(self.letters), params["hidden"], len(self.languages), params["cell"])

    def model_alone(self, params, device, run_dir):
        """The alphabet and the languages come from the run's last checkpoint."""
        last = self.checkpoint_folder(run_dir) / "last.pt"
        if not last.exists():
            raise UserError(f"{run_dir.path} has no checkpoints/last.pt: the languages are kept there.")
        record = checkpoint.load(last)["record"]
        self.letters, self.languages = record["letters"], record["languages"]
        return Task(model=self.model(params), train=None, test=None, record=record)

    def example_input(self, task):
        return encode(["Dostoevsky", "Satoshi"], self.letters)

    # -- results -------------------------------------------------------------------------
    @torch.no_grad()
    def classify(self, model, names: list[str], device) -> torch.Tensor:
        """Probabilities (CPU, one row per name) of every language."""
        model.eval()
        return torch.softmax(model(encode(names, self.letters).to(device)), 1).cpu()

    def test_predictions(self, task, device) -> torch.Tensor:
        names = [self.data.names[i] for i in self.test_index]
        return self.classify(task.model, names, device).argmax(1)

    def final_metrics(self, task, fit, trainer):
        metrics = super().final_metrics(task, fit, trainer)
        metrics["test_majority_accuracy"] = self.majority_accuracy(task)
        return metrics

    def majority_accuracy(self, task) -> float:
        """The accuracy on the test split of always answering the training split's commonest language."""
        train_labels, test_labels = task.train.tensors[1].cpu(), task.test.tensors[1].cpu()
        commonest = int(train_labels.bincount().argmax())
        return float((test_labels == commonest).float().mean())

    def extra_summary(self, task, fit, trainer):
        probabilities = self.classify(task.model, [to_ascii(n) for n in EXAMPLES], trainer.device)
        labels = task.train.tensors[1].cpu()
        return {"data": self.data.source, "languages": self.languages,
                "train_names_per_language": dict(zip(self.languages, labels.bincount(minlength=len(self.languages)).tolist())),
                "examples": {name: self.languages[int(p.argmax())] for name, p in zip(EXAMPLES, probabilities)}}

    def figures(self, task, fit, trainer, figures_dir):
        predicted = self.test_predictions(task, trainer.device)
        true = task.test.tensors[1].cpu()
        accuracy = float((predicted == true).float().mean())
        confusion_matrix(true.numpy(), predicted.numpy(), self.languages, figures_dir / "confusion.png",
                         f"{self.name}: {len(true):,} test names, accuracy {accuracy:.3f}")
        draw_loss(task, fit, figures_dir / "loss.png", f"{self.name}: cross-entropy")

    # -- predict ------------------------------------------------------------------------
    def predict(self, model, params, files, device):
        """Each item is a name, or a text file of names (one a line) when it is a Path of an
        existing file; a ``str`` is always a name (what ``--text`` gives)."""
        names = []
        for item in files:
            path = Path(item)
            if isinstance(item, Path) and path.is_file():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                names += [(f"{path}:{n}", line) for n, line in enumerate(lines, 1) if line.strip()]
            else:
                names.append((str(item), str(item)))
        return [self.predict_one(model, shown, text, device) for shown, text in names]

    def predict_one(self, model, shown: str, text: str, device) -> dict:
        name = to_ascii(text)
        if not name:
            return {"file": shown, "error": f"no letters of the alphabet in {text!r} (A-Z, a-z, space, . , ; ' -)"}
        probabilities = self.classify(model, [name], device)[0]
        top = probabilities.topk(min(3, len(probabilities)))
        return {"file": shown, "label": self.languages[int(top.indices[0])], "probability": float(top.values[0]),
                "top3": {self.languages[int(i)]: round(float(p), 4) for p, i in zip(top.values, top.indices)}}
