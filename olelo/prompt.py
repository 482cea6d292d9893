"""The translation prompt: the one definition of the messages a model sees, for
training data (scripts/convert_fornander.py) and evaluation alike."""

from __future__ import annotations

from olelo.cli import UserError

# The one definition of the prompt. Training data (convert_fornander.py) and
# evaluation both build their messages here, so train and eval never differ.
LANGUAGES = {"haw": "Hawaiian", "en": "English"}
DIRECTIONS = ("haw-en", "en-haw")


# Gemma 3's chat template (the instruction-tuned models' format): a system message is
# folded into the first user turn, the assistant is called "model", contents are
# trimmed; a content given as a list of parts contributes its text parts.
GEMMA3_CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set sys = messages[0]['content'] -%}
{%- if sys is not string -%}{%- set sys = sys[0]['text'] -%}{%- endif -%}
{%- set first_user_prefix = sys + '\\n\\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}
{%- if message['content'] is string -%}
{{ message['content'] | trim }}
{%- else -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'image' -%}{{ '<start_of_image>' }}
{%- elif part['type'] == 'text' -%}{{ part['text'] | trim }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<start_of_turn>model\\n' }}
{%- endif -%}
"""


def system_prompt(direction: str) -> str:
    src, tgt = _langs(direction)
    return (
        f"You are a careful translator. Translate the {LANGUAGES[src]} text the user "
        f"gives you into {LANGUAGES[tgt]}. Reply with the translation only."
    )


def prompt_messages(source: str, direction: str) -> list[dict]:
    """The messages a model sees before it translates `source`."""
    return [
        {"role": "system", "content": system_prompt(direction)},
        {"role": "user", "content": source},
    ]


def fewshot_messages(source: str, direction: str, examples: list[tuple[str, str]]) -> list[dict]:
    """The training prompt with worked examples as earlier turns: a base model that
    is not instruction-tuned sees the pattern instead of only an instruction."""
    messages = [{"role": "system", "content": system_prompt(direction)}]
    for example_source, example_target in examples:
        messages += [{"role": "user", "content": example_source}, {"role": "assistant", "content": example_target}]
    messages.append({"role": "user", "content": source})
    return messages


# A pretrained model (not instruction-tuned) has never seen a chat turn: given the chat
# template it echoes the system prompt or copies the source. Its fair zero-shot row is a
# plain completion, cut at the end of its first line (the references are one line each).
COMPLETION_TEMPLATE = "{source_language}: {source}\n{target_language}:"
INSTRUCTION_TUNED_MARKS = ("-it", "instruct", "chat")
COMPLETION_RULE = ("a model whose name (folder or Hub id) contains none of " + ", ".join(INSTRUCTION_TUNED_MARKS)
                   + " (case-insensitive) is taken as pretrained, not instruction-tuned, and its base is also "
                     "evaluated with a plain completion prompt")


def is_instruction_tuned(model: str) -> bool:
    """The lab's rule (COMPLETION_RULE), by the model's name alone: no weights are read."""
    name = str(model).rstrip("/").rsplit("/", 1)[-1].lower()
    return any(mark in name for mark in INSTRUCTION_TUNED_MARKS)


def completion_prompt(source: str, direction: str) -> str:
    src, tgt = _langs(direction)
    return COMPLETION_TEMPLATE.format(source_language=LANGUAGES[src], source=" ".join(source.split()),
                                      target_language=LANGUAGES[tgt])


def completion_answer(text: str) -> str:
    """What a completion says: its first non-empty line."""
    return next((line.strip() for line in text.strip().splitlines() if line.strip()), "")


def chat_record(source: str, target: str, direction: str, pair_id: str) -> dict:
    """One mlx-lm chat training example: system + user turn + assistant turn."""
    messages = prompt_messages(source, direction)
    messages.append({"role": "assistant", "content": target})
    return {"id": pair_id, "direction": direction, "messages": messages}


def retrieval_content(source: str, examples: list[tuple[str, str]]) -> str:
    """The user turn of a retrieval-augmented prompt: the nearest training pairs, then the
    sentence to translate. The system prompt stays the plain one."""
    lines = ["Examples from the same collection:"]
    for example_source, example_target in examples:
        lines += [example_source, f"=> {example_target}"]
    lines += ["Translate:", source]
    return "\n".join(lines)


def retrieval_record(record: dict, examples: list[tuple[str, str]], example_ids: list[str]) -> dict:
    """A chat record (chat_record's) whose user turn carries `examples` (retrieval_content).
    The plain sentence stays in "source", which record_source_target reads, so pair identity,
    references and every yardstick see the sentence, while training and evaluation
    (prompt_for_record) see the augmented turn; "retrieved" names the examples' record ids."""
    source, target = record_source_target(record)
    messages = [{"role": "system", "content": system_prompt(record["direction"])},
                {"role": "user", "content": retrieval_content(source, examples)},
                {"role": "assistant", "content": target}]
    return {**record, "messages": messages, "source": source, "retrieved": list(example_ids)}


def prompt_for_record(record: dict) -> list[dict]:
    """The messages a model sees before it translates a record: the record's own prompt turns
    for a retrieval-augmented record (retrieval_record), else prompt_messages of its source."""
    if "source" in record:
        return [m for m in record["messages"] if m["role"] != "assistant"]
    return prompt_messages(record_source_target(record)[0], record.get("direction", "haw-en"))


def record_source_target(record: dict) -> tuple[str, str]:
    """The (source, reference) of a chat record written by chat_record, or by retrieval_record
    (whose plain source is its "source" field: its user turn carries examples too)."""
    by_role = {m["role"]: m["content"] for m in record["messages"]}
    return record.get("source", by_role["user"]), by_role["assistant"]


def _langs(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise UserError(f"unknown direction {direction!r}; use one of {', '.join(DIRECTIONS)}")
    src, tgt = direction.split("-")
    return src, tgt

