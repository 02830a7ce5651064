"""Surnames and their languages, as padded sequences of letter indices.

Where the names come from, in order:

1. ``<data_root>/data/names/*.txt`` (or ``<data_root>/names/*.txt``): one file per language,
   one name a line: the layout of the PyTorch tutorial's ``data.zip``;
2. with ``download`` on, that ``data.zip`` fetched into ``data_root`` and unpacked;
3. else the lists that ship with the package (``data/names/``, made from Faker's surname
   lists: see the README there), in the same layout.
"""
from __future__ import annotations

import hashlib
import io
import string
import unicodedata
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core import files as atomic
from ..core import messages
from ..core.errors import UserError
from .mnist import resolve_root

TUTORIAL_URL = "https://download.pytorch.org/tutorial/data.zip"
BUNDLED = Path(__file__).with_name("names")
LETTERS = string.ascii_letters + " .,;'-"  # the tutorial's letters, and the hyphen of double names
PAD = 0                                    # index 0 is padding; letter i of LETTERS is i + 1
# Letters that Unicode does not decompose into an ASCII letter and an accent.
SPELLED_OUT = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae",
                             "đ": "d", "Đ": "D", "ı": "i", "œ": "oe", "Œ": "Oe"})


def to_ascii(name: str) -> str:
    """'Ślusàrski' -> 'Slusarski': accents dropped, letters outside LETTERS removed (the tutorial's
    unicodeToAscii, plus ł, ß, ø, ... spelled out instead of lost)."""
    decomposed = unicodedata.normalize("NFD", name.translate(SPELLED_OUT))
    return "".join(c for c in decomposed if c in LETTERS).strip()


@dataclass
class Names:
    names: list[str]        # ASCII
    labels: torch.Tensor    # int64 index into languages
    languages: list[str]    # sorted
    source: str


def read_folder(folder: Path) -> Names:
    """Every ``<Language>.txt`` of ``folder``, in sorted order (one language per file)."""
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise UserError(f"{folder}: no <Language>.txt files (one surname a line).")
    names, labels = [], []
    for index, path in enumerate(files):
        for line in path.read_text(encoding="utf-8").splitlines():
            name = to_ascii(line)
            if name:
                names.append(name)
                labels.append(index)
    digest = folder / "data.zip.sha256"
    origin = f" (data.zip sha256 {digest.read_text().strip()})" if digest.is_file() else ""
    return Names(names, torch.tensor(labels), [p.stem for p in files], f"{len(names):,} names from {folder}{origin}")


def tutorial_folder(root: Path) -> Path | None:
    for folder in (root / "data" / "names", root / "names"):
        if any(folder.glob("*.txt")):
            return folder
    return None


# The tutorial's archive: 18 languages, about 2.9 MB. Its publisher gives no checksum; the download is
# checked for what it must hold and its SHA-256 is recorded with the data, so a run says which file it read.
TUTORIAL_LANGUAGES = ("Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish",
                      "Italian", "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish",
                      "Vietnamese")
MAX_ARCHIVE_BYTES = 64 << 20


def download(root: Path) -> Path:
    """The tutorial's data.zip, verified (its CRCs, the 18 languages' files), unpacked into
    ``<root>/data/names/`` with its SHA-256 beside them (``data.zip.sha256``)."""
    with urllib.request.urlopen(TUTORIAL_URL, timeout=60) as response:
        data = response.read(MAX_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise OSError(f"{TUTORIAL_URL} is larger than {MAX_ARCHIVE_BYTES:,} bytes: not the tutorial's archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        broken = archive.testzip()
    except zipfile.BadZipFile as err:
        raise OSError(f"{TUTORIAL_URL} is not a zip archive ({err})") from None
    members = {m for m in archive.namelist() if m.startswith("data/names/") and m.endswith(".txt")}
    missing = [lang for lang in TUTORIAL_LANGUAGES if f"data/names/{lang}.txt" not in members]
    if broken or missing:
        raise OSError(f"{TUTORIAL_URL} is damaged ({broken or 'no ' + ', '.join(missing)})")
    for member in sorted(members):
        atomic.write_bytes(root / member, archive.read(member))
    atomic.write_text(root / "data" / "names" / "data.zip.sha256", hashlib.sha256(data).hexdigest() + "\n")
    return root / "data" / "names"


def load_names(data_root=None, allow_download: bool = False) -> Names:
    root = resolve_root(data_root)
    if data_root not in (None, "") and not root.is_dir():
        raise UserError(f"data_root={data_root}: no such folder. Give the folder that holds data/names/*.txt, "
                        "or leave data_root null for the names that ship with torchclassics.")
    folder = tutorial_folder(root)
    if folder is None and allow_download:
        try:
            folder = download(root)
            messages.status(f"downloaded the tutorial's names into {folder}")
        except OSError as err:  # no network, a proxy, a damaged archive, a full disk
            messages.warn(f"could not download {TUTORIAL_URL} ({err}); using the names that ship with torchclassics.")
    if folder is None:
        data = read_folder(BUNDLED)
        data.source = f"{len(data.names):,} surnames from Faker's lists (shipped with torchclassics)"
        return data
    return read_folder(folder)


def encode(names: list[str], letters: str = LETTERS) -> torch.Tensor:
    """(N, longest) int64 indices into ``letters`` (from 1: 0 pads on the right)."""
    longest = max(1, max((len(n) for n in names), default=1))
    codes = torch.full((len(names), longest), PAD, dtype=torch.long)
    for row, name in enumerate(names):
        codes[row, :len(name)] = torch.tensor([letters.index(c) + 1 for c in name], dtype=torch.long)
    return codes


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices: ``test_fraction`` of every language held out (at least one name
    of a language with two or more), chosen by a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = min(len(members) - 1, max(1, round(test_fraction * len(members))))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
