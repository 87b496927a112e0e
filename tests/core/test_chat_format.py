"""Which chat format the engine host gives a GGUF without a template of its own, and the plain
transcript it uses for base models (the demo model is one). No engine needed."""

from __future__ import annotations

import pytest

from desktop_chat import engine_host
from desktop_chat.engine_host import TRANSCRIPT, chat_format_for, transcript_prompt

DEMO_METADATA = {"general.architecture": "gemma3", "general.name": "Gemma 3 270m",
                 "general.basename": "gemma-3", "general.size_label": "270M"}


@pytest.mark.parametrize(
    ("metadata", "file_name", "expected"),
    [
        (DEMO_METADATA, "gemma-3-270m-q4_k_m.gguf", TRANSCRIPT),  # the demo: a base model
        ({**DEMO_METADATA, "general.finetune": "it"}, "", "gemma"),
        ({"general.architecture": "gemma3"}, "gemma-3-1b-it-Q4_K_M.gguf", "gemma"),
        ({"general.architecture": "gemma2", "general.name": "Gemma 2 9b Instruct"}, "", "gemma"),
        ({**DEMO_METADATA, "tokenizer.chat_template": "{{ messages }}"}, "", None),
        ({"general.architecture": "gemma3"}, "", "gemma"),  # nothing to tell: the family's
        ({"general.architecture": "qwen2", "general.name": "Qwen2.5 0.5B"}, "", "chatml"),
    ],
)
def test_base_gemma_models_get_a_plain_transcript(
    metadata: dict[str, object], file_name: str, expected: str | None,
) -> None:
    assert chat_format_for(metadata, file_name) == expected


def test_transcript_prompt_ends_with_the_assistant_turn() -> None:
    prompt = transcript_prompt([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello. "},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:"}}]},
    ])
    assert prompt == ("You are terse.\n\nUser: Hi\nAssistant: Hello.\nUser: What is this?\n"
                      "Assistant:")
    assert transcript_prompt([{"role": "user", "content": "Hi"}]).startswith(
        engine_host.TRANSCRIPT_PREAMBLE + "\n\nUser: Hi\n")
    assert engine_host.TRANSCRIPT_STOP == ["\nUser:"]  # it stops before writing our turn
