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
from ..engine.loop import Task, accuracy_sum
from ..models.char_rnn import CharRNN
from ..registry import experiment
from ..rundir.metrics import Objective
from ..viz.plots import confusion_matrix
from ._base import Experiment, FinishedRun, draw_loss

EXAMPLES = ("Dovesky", "Jackson", "Satoshi", "Dostoevsky", "Nguyen", "Schmidt")  # the tutorial's, and a few more


def trim_padding(codes: torch.Tensor, labels: torch.Tensor):
    """A batch as long as its longest name, not the longest of the whole data set."""
    longest = int((codes != 0).sum(1).max())
    return codes[:, :max(longest, 1)], labels


def model_of(params: dict, record: dict) -> CharRNN:
    return CharRNN(len(record["letters"]), params["hidden"], len(record["languages"]), params["cell"])


@torch.no_grad()
def classify(model, letters: str, names: list[str], device) -> torch.Tensor:
    """Probabilities (CPU, one row per name) of every language."""
    model.eval()
    return torch.softmax(model(encode(names, letters).to(device)), 1).cpu()


@experiment("char_rnn_names")
class CharRNNNames(Experiment):
    objective = Objective("test_accuracy", "max")

    def build(self, params, device):
        data = load_names(params["data_root"], params["download"])
        train, test = stratified_split(data.labels, params["test_fraction"], params["seed"])
        codes = encode(data.names)

        def batches(index, batch_size, shuffle):
            return TensorBatches(codes[index], data.labels[index], batch_size=batch_size, shuffle=shuffle,
                                 seed=params["seed"], transform=trim_padding, device=device)

        # The alphabet and the languages are checkpointed: predict needs no data.
        record = {"letters": LETTERS, "languages": list(data.languages)}
        return Task(model=model_of(params, record), train=batches(train, params["batch_size"], True),
                    test=batches(test, params["test_batch_size"], False), loss_fn=nn.CrossEntropyLoss(),
                    metrics={"accuracy": accuracy_sum}, record=record,
                    context={"data": data, "test_names": [data.names[i] for i in test]})

    def model_alone(self, params, device, record):
        """The alphabet and the languages come from the run's last checkpoint."""
        return Task(model=model_of(params, record), train=None, test=None, record=dict(record))

    def example_input(self, task):
        return encode(["Dostoevsky", "Satoshi"], task.record["letters"])

    # -- results -------------------------------------------------------------------------
    def final_metrics(self, run):
        metrics = super().final_metrics(run)
        metrics["test_majority_accuracy"] = majority_accuracy(run.task)
        return metrics

    def results(self, run):
        task, record = run.task, run.task.record
        languages = record["languages"]
        probabilities = classify(run.model, record["letters"], [to_ascii(n) for n in EXAMPLES], run.device)
        labels = task.train.tensors[1].cpu()
        return {"data": task.context["data"].source, "languages": languages,
                "train_names_per_language": dict(zip(languages, labels.bincount(minlength=len(languages)).tolist())),
                "examples": {name: languages[int(p.argmax())] for name, p in zip(EXAMPLES, probabilities)}}

    def figures(self, run, folder):
        task, languages = run.task, run.task.record["languages"]
        predicted = classify(run.model, task.record["letters"], task.context["test_names"], run.device).argmax(1)
        true = task.test.tensors[1].cpu()
        accuracy = float((predicted == true).float().mean())
        confusion_matrix(true.numpy(), predicted.numpy(), languages, folder / "confusion.png",
                         f"{self.name}: {len(true):,} test names, accuracy {accuracy:.3f}")
        draw_loss(run, folder / "loss.png", f"{self.name}: cross-entropy")

    # -- predict ------------------------------------------------------------------------
    def predict(self, run: FinishedRun, inputs):
        """Each item is a name, or a text file of names (one a line) when it is a Path of an
        existing file; a ``str`` is always a name (what ``--text`` gives)."""
        names = []
        for item in inputs:
            path = Path(item)
            if isinstance(item, Path) and path.is_file():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                names += [(f"{path}:{n}", line) for n, line in enumerate(lines, 1) if line.strip()]
            else:
                names.append((str(item), str(item)))
        return [predict_one(run, shown, text) for shown, text in names]


def majority_accuracy(task: Task) -> float:
    """The accuracy on the test split of always answering the training split's commonest language."""
    train_labels, test_labels = task.train.tensors[1].cpu(), task.test.tensors[1].cpu()
    commonest = int(train_labels.bincount().argmax())
    return float((test_labels == commonest).float().mean())


def predict_one(run: FinishedRun, shown: str, text: str) -> dict:
    name = to_ascii(text)
    if not name:
        return {"file": shown, "error": f"no letters of the alphabet in {text!r} (A-Z, a-z, space, . , ; ' -)"}
    record = run.task.record
    probabilities = classify(run.model, record["letters"], [name], run.device)[0]
    top = probabilities.topk(min(3, len(probabilities)))
    languages = record["languages"]
    return {"file": shown, "label": languages[int(top.indices[0])], "probability": float(top.values[0]),
            "top3": {languages[int(i)]: round(float(p), 4) for p, i in zip(top.values, top.indices)}}
