"""Scripts in: Fountain (the spec's elements, the real sample screenplay), CSV and JSON."""

import json

import pytest

from backend.dialogue.script import ScriptError, load_script, parse_csv, parse_fountain, parse_json, parse_time


def _speech(script):
    return [(line.character, line.text) for line in script.lines]


def test_sample_screenplay_lines_in_order(samples_dir):
    script = load_script(samples_dir / "brick_and_steel.fountain")
    raw = (samples_dir / "brick_and_steel.fountain").read_text()
    chars = script.characters
    # The real script: at least three speaking characters, the two leads first.
    assert chars[:2] == ["BRICK", "STEEL"] and len(chars) >= 3
    # Title page is not dialogue; the first line is Brick's, under the first scene heading.
    assert script.title["author"] == "Stu Maschwitz"
    first = script.lines[0]
    assert first.character == "BRICK" and first.text.startswith("Hey steel") and first.scene == "EXT. BRICK'S PATIO - DAY"
    # Lines come in the order of the source file, each pointing at its cue.
    source_lines = raw.splitlines()
    assert [l.source_line for l in script.lines] == sorted(l.source_line for l in script.lines)
    for line in script.lines:
        cue = source_lines[line.source_line - 1].strip().lstrip("@").rstrip("^").strip()
        assert cue.upper().startswith(line.character.upper())
    # Dual dialogue: BRICK ^ answers STEEL at the same time.
    duals = [l for l in script.lines if l.dual]
    assert [(d.character, d.text) for d in duals] == [("BRICK", "Screw retirement.")]
    assert script.lines[duals[0].index - 1].character == "STEEL"
    # Parentheticals, also indented, are not spoken; emphasis marks are removed.
    jack = next(l for l in script.lines if l.character == "JACK")
    assert jack.parentheticals == ["in Vietnamese, subtitled"]
    assert jack.text == "Did you know Brick and Steel are retired?"
    dan = next(l for l in script.lines if l.character == "DAN")
    assert dan.text == "Then let's retire them. Permanently."
    # (pause) inside a speech becomes a pause, not a word.
    call = next(l for l in script.lines if l.text.startswith("They're coming"))
    assert "pause" not in call.text and call.text.count("...") == 2
    # Extensions are stripped from the name; a forced cue keeps its case; lowercase cues are action.
    cheese = [l for l in script.lines if l.character == "I LIKE CHEESE"]
    assert cheese and cheese[0].extension == "cont."
    assert "character" in chars
    assert not any("tegme" == c.lower() for c in chars)
    assert not any("Stgeme go vroom" in l.text for l in script.lines)
    # Scene headings (also forced with '.'), transitions and centred text are never speech.
    spoken = " ".join(l.text for l in script.lines)
    for never in ("CUT TO", "BURN TO PINK", "OPENING TITLES", "BRICK BRADDOCK", "the end", "TEST", "EXT."):
        assert never not in spoken
    assert [h.text for h in script.scenes][:2] == ["EXT. BRICK'S PATIO - DAY", "INT. TRAILER HOME - DAY"]
    assert "OPENING TITLES" in [h.text for h in script.scenes]


def test_fountain_elements_from_the_spec():
    text = """Title: A Test
Author: Nobody

INT. HOUSE - NIGHT

Rain. /* cut this:
MARY
Never said. */

MARY (V.O.)
(whispering)
I heard *something* [[a note]] out there.

JOHN (CONT'D) ^
What?

@McCLANE
Yippee-ki-yay.

mary
Not a cue, just action.

CUT TO:

> THE END <

BOB
(slowly,
 and sadly)
Well.
  
Well well.

!LOUD ACTION
Is action, not dialogue.
"""
    script = parse_fountain(text)
    assert _speech(script) == [("MARY", "I heard something out there."), ("JOHN", "What?"),
                               ("McCLANE", "Yippee-ki-yay."), ("BOB", "Well. Well well.")]
    mary, john, mcclane, bob = script.lines
    assert mary.extension == "V.O." and mary.parentheticals == ["whispering"] and not mary.dual
    assert john.dual and john.extension == "CONT'D"
    assert bob.parentheticals == ["slowly, and sadly"]
    assert script.title == {"title": "A Test", "author": "Nobody"}
    assert [h.text for h in script.scenes] == ["INT. HOUSE - NIGHT"]
    assert all(l.scene == "INT. HOUSE - NIGHT" for l in script.lines)


def test_a_caret_without_dialogue_before_is_not_dual():
    script = parse_fountain("He walks in.\n\nSTEEL ^\nHi.\n")
    assert script.lines[0].character == "STEEL" and not script.lines[0].dual


def test_no_dialogue_is_an_error(tmp_path):
    path = tmp_path / "empty.fountain"
    path.write_text("EXT. FIELD - DAY\n\nNothing is said.\n")
    with pytest.raises(ScriptError, match="no dialogue"):
        load_script(path)


def test_csv_and_json_scripts(tmp_path):
    csv_text = 'Character,Line,Start,Voice,Parenthetical\nBRICK,"Hello, Steel.",1.5,en-gb+m3,\nSteel,Hi.,0:03.25,,(shouting)\n,,,,\n'
    script = parse_csv(csv_text)
    assert _speech(script) == [("BRICK", "Hello, Steel."), ("Steel", "Hi.")]
    assert script.lines[0].start == 1.5 and script.lines[0].voice == "en-gb+m3"
    assert script.lines[1].start == 3.25 and script.lines[1].voice is None
    assert script.lines[1].parentheticals == ["shouting"]

    data = {"title": "x", "lines": [{"character": "A", "text": "One."}, {"speaker": "B", "line": "Two.", "start": 2}]}
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(data))
    script = load_script(path)
    assert _speech(script) == [("A", "One."), ("B", "Two.")]
    assert script.lines[1].start == 2.0
    assert _speech(parse_json(json.dumps(data["lines"]))) == _speech(script)


@pytest.mark.parametrize("text,message", [
    ("who,what\nA,B\n", "header"),
    ("character,line\nA,\n", "empty line"),
    ("character,line\n,Hello\n", "no character"),
    ("character,line,start\nA,Hi,soon\n", "not a time"),
    ("character,line,start\nA,Hi,-2\n", "zero or more"),
])
def test_bad_csv_says_what_to_fix(text, message):
    with pytest.raises(ScriptError, match=message):
        parse_csv(text, source="scene.csv")


def test_bad_json_and_unknown_types(tmp_path):
    with pytest.raises(ScriptError, match="not valid JSON"):
        parse_json("{nope")
    with pytest.raises(ScriptError, match="list of lines"):
        parse_json('{"lines": 3}')
    odd = tmp_path / "scene.docx"
    odd.write_text("x")
    with pytest.raises(ScriptError, match="unknown script type"):
        load_script(odd)
    with pytest.raises(ScriptError, match="no such script"):
        load_script(tmp_path / "missing.fountain")


def test_times():
    assert parse_time("1:02.5") == 62.5
    assert parse_time("1:00:01") == 3601.0
    assert parse_time(4) == 4.0
    assert parse_time("") is None
