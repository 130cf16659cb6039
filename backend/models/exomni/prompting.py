"""Prompts as the released model was trained on them: Qwen's tokenizer, a `<speech>` token and a plain
ChatML template (`<|im_start|>role\\n...<|im_end|>\\n`, generation prompt `<|im_start|>assistant\\n`).
"""

from __future__ import annotations

from .configuration import SPEECH_PLACEHOLDER_ID

SPEECH_TOKEN = "<speech>"
IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SYSTEM_MESSAGE = ("You are a multimodal assistant that understands both speech and text, "
                  "and can respond using natural language or synthesized speech.")
# The user turn before a `say` line; the line itself is then teacher-forced as the reply.
SAY_INSTRUCTION = "Repeat exactly what I write, nothing else: {line}"


def prepare_tokenizer(tokenizer):
    """Add the <speech> token and the chat template, as the released demo does after loading."""
    missing = [t for t in (IM_START, IM_END) if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if missing:
        raise ValueError(f"the tokenizer lacks {', '.join(missing)}; the checkpoint folder must hold Qwen's "
                         f"tokenizer files (tokenizer.json or vocab.json + merges.txt, tokenizer_config.json)")
    tokenizer.add_tokens([SPEECH_TOKEN], special_tokens=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of the conversation plus the generation prompt; <speech> becomes -300."""
    ids = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
    speech_id = tokenizer.convert_tokens_to_ids(SPEECH_TOKEN)
    return [SPEECH_PLACEHOLDER_ID if i == speech_id else int(i) for i in ids]


def chat_messages(prompt: str, with_speech: bool = False, system: str = SYSTEM_MESSAGE,
                  history: list[dict] | None = None) -> list[dict]:
    """System message, earlier turns, then the user's turn (a spoken prompt goes first, as <speech>)."""
    content = prompt
    if with_speech:
        content = f"{SPEECH_TOKEN}\n{prompt}" if prompt else SPEECH_TOKEN
    return [{"role": "system", "content": system}, *(history or []), {"role": "user", "content": content}]


def say_messages(line: str, system: str = SYSTEM_MESSAGE, instruction: str = SAY_INSTRUCTION) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": instruction.format(line=line)}]


def reply_ids(tokenizer, line: str) -> list[int]:
    """The line as the assistant's reply tokens, closed by <|im_end|> as a generated reply would be."""
    return list(tokenizer.encode(line, add_special_tokens=False)) + [tokenizer.convert_tokens_to_ids(IM_END)]


def stop_ids(tokenizer, *extra) -> list[int]:
    """Ids that end a generated reply: <|im_end|>, <|endoftext|> and whatever the configs add."""
    ids = set()
    for token in (IM_END, END_OF_TEXT):
        i = tokenizer.convert_tokens_to_ids(token)
        if i is not None and i != tokenizer.unk_token_id:
            ids.add(int(i))
    for e in extra:
        if e is None:
            continue
        ids.update(int(x) for x in (e if isinstance(e, (list, tuple)) else [e]))
    return sorted(ids)
