"""Writes the <Language>.txt files beside it from the surname lists of Faker (MIT licence).

Run once, by hand, with Faker importable (pip install faker==40.54.0); the experiment only
reads the files. Russian and Greek names are transliterated to Latin letters with the tables
below; every other list is written as Faker spells it (the reader turns accents into ASCII).
"""
from __future__ import annotations

import importlib
import unicodedata
from pathlib import Path

# Language -> Faker person-provider locales and the attributes holding their surnames.
SOURCES = {
    "Arabic": [("fr_DZ", "last_names")],  # Algerian surnames in French transcription
    "Chinese": [("zh_CN", "last_romanized_names"), ("zh_TW", "last_romanized_names")],
    "Czech": [("cs_CZ", "last_names_male"), ("cs_CZ", "last_names_female")],
    "Dutch": [("nl_NL", "last_names")],
    "English": [("en_US", "last_names"), ("en_GB", "last_names")],
    "French": [("fr_FR", "last_names")],
    "German": [("de_DE", "last_names"), ("de_AT", "last_names")],
    "Greek": [("el_GR", "last_names_male"), ("el_GR", "last_names_female")],
    "Irish": [("ga_IE", "last_names")],
    "Italian": [("it_IT", "last_names")],
    "Japanese": [("ja_JP", "last_romanized_names")],
    "Polish": [("pl_PL", "male_last_names"), ("pl_PL", "unisex_last_names")],
    "Portuguese": [("pt_PT", "last_names"), ("pt_BR", "last_names")],
    "Russian": [("ru_RU", "last_names_male"), ("ru_RU", "last_names_female")],
    "Spanish": [("es_ES", "last_names")],
}

RUSSIAN = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                   "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya".split()))
GREEK_PAIRS = {"ου": "ou", "αυ": "av", "ευ": "ev", "γγ": "ng", "γκ": "gk", "μπ": "mp", "ντ": "nt", "θ": "th",
               "χ": "ch", "ψ": "ps"}
GREEK = dict(zip("αβγδεζηικλμνξοπρσςτυφω", "avgdeziiklmnxoprsstyfo"))


def transliterate(name: str, letters: dict, pairs: dict | None = None) -> str:
    text = "".join(c for c in unicodedata.normalize("NFD", name.lower()) if not unicodedata.combining(c))
    if letters is RUSSIAN:
        text = text[:-2] + "y" if text.endswith(("ий", "ый")) else text  # -sky, as English spells it
    for pair, latin in (pairs or {}).items():
        text = text.replace(pair, latin)
    return "".join(letters.get(c, c) for c in text).replace("-", "").capitalize()


def surnames(locale: str, attribute: str) -> list[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    return [name for name in getattr(provider, attribute) if isinstance(name, str)]


def main() -> None:
    folder = Path(__file__).parent
    for language, sources in SOURCES.items():
        names = {name for locale, attribute in sources for name in surnames(locale, attribute)}
        if language == "Russian":
            names = {transliterate(n, RUSSIAN) for n in names}
        elif language == "Greek":
            names = {transliterate(n, GREEK, GREEK_PAIRS) for n in names}
        (folder / f"{language}.txt").write_text("\n".join(sorted(names)) + "\n", encoding="utf-8")
        print(f"{language}: {len(names)}")


if __name__ == "__main__":
    main()
