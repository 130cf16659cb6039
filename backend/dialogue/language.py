"""Which language each line of a script is spoken in, and the voice that speaks it.

A line's language comes from, in order: its own `language` column (CSV, JSON), a parenthetical
naming one ("(in Spanish)", as screenplays mark a line in another language), the character's
entry in the cast table, and English. Languages are eSpeak NG codes; the English names below are
what people write in parentheticals and cast tables, so both are taken.

A line in another language than its character's voice keeps the voice's timbre variant and takes
that language's eSpeak voice ("en-gb+m3" speaking Spanish becomes "es+m3"): a voice reads text by
its own language's rules, so an English voice would mispronounce every Spanish word.
"""

from __future__ import annotations

import re
from typing import Optional

from exomni_blender.core.request import is_english

DEFAULT_LANGUAGE = "en"

LANGUAGE_NAMES = {
    "english": "en", "american": "en-us", "british": "en-gb", "spanish": "es", "castilian": "es",
    "mexican": "es-419", "latin american spanish": "es-419", "german": "de", "french": "fr", "italian": "it",
    "portuguese": "pt", "brazilian": "pt-br", "brazilian portuguese": "pt-br", "japanese": "ja",
    "mandarin": "cmn", "chinese": "cmn", "cantonese": "yue", "korean": "ko", "russian": "ru", "polish": "pl",
    "dutch": "nl", "swedish": "sv", "norwegian": "nb", "danish": "da", "finnish": "fi", "greek": "el",
    "turkish": "tr", "arabic": "ar", "hebrew": "he", "hindi": "hi", "czech": "cs", "hungarian": "hu",
    "romanian": "ro", "ukrainian": "uk", "catalan": "ca", "vietnamese": "vi", "indonesian": "id",
}

_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
_IN_LANGUAGE = re.compile(r"\bin (" + "|".join(sorted(LANGUAGE_NAMES, key=len, reverse=True)) + r")\b")


class LanguageError(ValueError):
    pass


def language_code(text, where: str = "") -> str:
    """An eSpeak NG language code from a code ("es", "pt-BR") or an English name ("Spanish").

    Whether the engine has a voice for it is the request validator's to say; this only refuses
    what is no language code at all, in words."""
    if not isinstance(text, str) or not text.strip():
        raise LanguageError(f"{where}language {text!r} is not a language; write a code such as es, de or ja, "
                            "or a name such as Spanish")
    value = " ".join(text.strip().lower().replace("_", "-").split())
    if value in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[value]
    if _CODE.match(value):
        return value
    raise LanguageError(f"{where}language {text!r} is neither a language code (es, de, fr, ja, cmn ...) nor one "
                        f"of the names {', '.join(sorted(LANGUAGE_NAMES)[:8])} ...")


# Languages not written in Latin letters: a line "(in Russian)" whose text has none of its letters is
# the line's translation, as screenplays print it.
_OWN_SCRIPT = {"ja", "cmn", "yue", "ko", "ru", "uk", "el", "ar", "he", "hi"}


def language_of(parentheticals, text: str = "") -> Optional[str]:
    """The language a parenthetical names ("in Spanish", "angrily, in French"), or None.

    A screenplay prints a line spoken in another language as its subtitle, "(in Vietnamese,
    subtitled)" above English words: such a line, or one in a language of another script whose text
    is all Latin letters, is spoken as written (a Vietnamese voice reading English is neither)."""
    for paren in parentheticals:
        words = " ".join(paren.lower().split())
        found = _IN_LANGUAGE.search(words)
        if not found:
            continue
        language = LANGUAGE_NAMES[found.group(1)]
        if "subtitle" in words or (language in _OWN_SCRIPT and text and text.isascii()):
            return None
        return language
    return None


def voice_for_language(voice: Optional[str], language: str) -> Optional[str]:
    """The voice that speaks `language` with `voice`'s timbre: unchanged when it already speaks that
    language (es-419 speaks es), otherwise the language's own voice with the same variant."""
    if not voice:
        return None if is_english(language) else language
    name, plus, variant = voice.partition("+")
    name = name.strip().lower()
    same = (name == language or name.startswith(language + "-") or language.startswith(name + "-")
            or (is_english(name) and is_english(language)))
    if same:
        return voice
    return f"{language}{plus}{variant}"
