"""Languages in dialogue scripts: a character's language from the cast table, a line's own from a
language column or an "(in Spanish)" parenthetical, the voice that speaks it, and the cache key.

The plan is made by the real planner with the real engine registry (eSpeak NG's voices decide which
codes exist); the takes are made by the real phonetic engine."""

import json

import numpy as np
import pytest

from backend.dialogue import cast as castmod
from backend.dialogue.language import LanguageError, language_code, language_of, voice_for_language
from backend.dialogue.plan import plan_lines, plan_script
from backend.dialogue.script import parse_csv, parse_fountain

SCRIPT = """INT. CAFE - DAY

ROSA
Buenos días, ¿qué tal?

HANS
(in Spanish)
Muy bien, gracias.

HANS
(angrily, in German)
Das ist nicht gut!

ROSA
(in English)
Fine, fine.
"""


@pytest.fixture(scope="module")
def registry():
    from backend.engines.registry import default_registry

    return default_registry()


def test_language_names_and_codes():
    assert language_code("Spanish") == "es" and language_code(" es ") == "es" and language_code("pt_BR") == "pt-br"
    assert language_code("Mandarin") == "cmn" and language_code("Brazilian Portuguese") == "pt-br"
    for bad in ("", "Klingon please", 5, "e$"):
        with pytest.raises(LanguageError, match="language"):
            language_code(bad)
    assert language_of(["beat", "in Vietnamese"]) == "vi"
    # A screenplay prints such a line as its subtitle: spoken as written, not by a voice of that language.
    assert language_of(["in Vietnamese, subtitled"], "Did you know Brick and Steel are retired?") is None
    assert language_of(["in Russian"], "Where is the money?") is None
    assert language_of(["in Russian"], "Где деньги?") == "ru" and language_of(["in French"], "Where?") == "fr"
    assert language_of(["angrily, in German"]) == "de" and language_of(["whispering"]) is None
    assert language_of(["within reason"]) is None  # "in" must be followed by a language


def test_a_voice_speaks_the_line_language_with_its_own_timbre():
    assert voice_for_language("en-gb+m3", "es") == "es+m3"
    assert voice_for_language("es+f2", "es") == "es+f2" and voice_for_language("es-419", "es") == "es-419"
    assert voice_for_language("en-us+m7", "en") == "en-us+m7" and voice_for_language("en-us", "en-gb") == "en-us"
    assert voice_for_language("de", "fr") == "fr" and voice_for_language(None, "ja") == "ja"
    assert voice_for_language(None, "en") is None


def test_cast_language_line_override_and_voices(tmp_path, registry):
    cast_file = tmp_path / "cafe.cast.json"
    cast_file.write_text(json.dumps({"ROSA": {"language": "es"}, "HANS": {"voice": "en-gb+m3", "language": "de"}}))
    languages = castmod.read_languages(cast_file)
    assert languages == {"ROSA": "es", "HANS": "de"}
    script = parse_fountain(SCRIPT)
    plan = plan_script(script, [], registry, engine="phonetic", fps=30.0, create_heads=True,
                       voices={"HANS": "en-gb+m3"}, languages=languages)
    got = [(p.line.character, p.request["language"], p.request["voice"], p.request["mood"]) for p in plan.lines]
    rosa_voice = plan.cast.role("ROSA").voice
    assert got[0] == ("ROSA", "es", voice_for_language(rosa_voice, "es"), "neutral")
    assert got[1] == ("HANS", "es", "es+m3", "neutral")  # his timbre, the line's language
    assert got[2] == ("HANS", "de", "de+m3", "angry")  # a mood and a language in one parenthetical
    assert got[3] == ("ROSA", "en", rosa_voice, "neutral")  # "(in English)" overrides her Spanish
    assert plan.cast.role("HANS").to_json()["language"] == "de"
    # A voice cast with no language speaks every line as it always did, an English one included.
    plain = parse_fountain("HANS\nGood morning.\n\nHANS\n(in French)\nBonjour.\n")
    cast = castmod.resolve_cast(plain.characters, [], create_heads=True, voices={"HANS": "de+m3"})
    assert [p.request["voice"] for p in plan_lines(plain, cast, "phonetic", "test", 30.0)] == ["de+m3", "fr+m3"]


def test_a_language_column_and_the_cache_key(registry):
    script = parse_csv("character,line,language\nANA,Hola a todos,Spanish\nANA,Hello everyone,\n")
    assert [l.language for l in script.lines] == ["es", None]
    cast = castmod.resolve_cast(script.characters, [], create_heads=True)
    spanish, english = plan_lines(script, cast, "phonetic", "test", 30.0)
    assert spanish.request["language"] == "es" and english.request["language"] == "en"
    # An English line keeps the cache key it had before languages existed; another language gets its own.
    from backend.dialogue.plan import content_hash

    without = {k: v for k, v in english.request.items() if k != "language"}
    assert content_hash(without, english.delivery, "test") == english.hash
    as_german = dict(spanish.request, language="de")
    assert content_hash(as_german, spanish.delivery, "test") != spanish.hash
    with pytest.raises(Exception, match="row 2: language 'Elvish'"):
        parse_csv("character,line,language\nANA,Hola,Elvish\n")


def test_unknown_languages_are_refused_before_any_take(tmp_path, registry):
    from backend.dialogue.service import plan_dialogue
    from backend.engines.base import EngineError

    body = {"script": SCRIPT, "create_heads": True, "languages": {"ROSA": "xx"}}
    with pytest.raises(EngineError, match="line 1 \\(ROSA\\): unknown language 'xx'") as err:
        plan_dialogue(body, registry)
    assert err.value.code == "bad_request"
    with pytest.raises(EngineError, match="languages: ROSA's language"):
        plan_dialogue(dict(body, languages={"ROSA": "???"}), registry)
    cast_file = tmp_path / "bad.cast.toml"
    cast_file.write_text('[ROSA]\nlanguage = 5\n')
    with pytest.raises(castmod.CastError, match="ROSA's language 5"):
        castmod.read_languages(cast_file)
    with pytest.raises(castmod.CastError, match="--languages: ROSA's language"):
        castmod.parse_languages_arg("ROSA=!!")
    planned = plan_dialogue(dict(body, languages={"ROSA": "Spanish"}), registry)
    assert [l["language"] for l in planned["lines"]] == ["es", "es", "de", "en"]
    assert planned["characters"][0]["language"] == "es"


def test_a_spanish_line_is_spoken_and_keyed_in_spanish(registry):
    """The planned request, made by the phonetic engine, is eSpeak's Spanish: "¿qué tal?" has the
    Spanish /k e t a l/, and its lips close on the b of "buenos"."""
    script = parse_fountain(SCRIPT)
    cast = castmod.resolve_cast(script.characters, [], create_heads=True, languages={"ROSA": "es"})
    line = plan_lines(script, cast, "phonetic", "test", 30.0)[0]
    from backend.engines.base import Progress

    take = registry.get("phonetic", "say").make_take(registry.validate(line.request), Progress())
    phones = "".join(p.symbol for p in take.phonemes)
    assert "ketal" in phones.replace("ˈ", "").replace("ˌ", "")
    assert take.meta.get("voice", "").startswith("es")
    b = next(p for p in take.phonemes if p.symbol in ("b", "β"))
    frames = slice(int(b.start * take.fps), int(np.ceil(b.end * take.fps)) + 1)
    assert take.channel("mouthClose")[frames].max() > 0.2 or take.channel("jawOpen")[frames].min() < 0.1


def test_the_sample_screenplays_subtitled_line_is_spoken_as_written(samples_dir):
    """brick_and_steel.fountain prints JACK's line "(in Vietnamese, subtitled)" in English: it stays
    English, in JACK's own voice."""
    from backend.dialogue.script import load_script

    script = load_script(samples_dir / "brick_and_steel.fountain")
    cast = castmod.resolve_cast(script.characters, [], create_heads=True)
    jack = next(p for p in plan_lines(script, cast, "phonetic", "test", 30.0) if p.line.character == "JACK")
    assert "in Vietnamese, subtitled" in jack.line.parentheticals
    assert jack.request["language"] == "en" and jack.request["voice"] == cast.role("JACK").voice
