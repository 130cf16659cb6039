"""Pure logic of the model: frame counts, token choice, repetition-aware unit sampling, the 4x lift."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.exomni.blendshape_generator import frame_count, valid_frame_lengths  # noqa: E402
from backend.models.exomni.sampling import TextSampling, UnitSampling  # noqa: E402


@pytest.mark.parametrize("n, frames", [(3, 7), (13, 31), (205, 491), (410, 983), (820, 1967), (1, 2), (0, 0)])
def test_frame_count_floors_in_float64(n, frames):
    assert frame_count(torch.arange(1, n + 1).view(1, -1)) == frames


def test_frame_count_skips_zero_and_padding_over_the_batch():
    units = torch.tensor([[5, 0, 7, 9], [3, 0, -100, -100]])
    assert frame_count(units) == int(4 * (1 / 12.5) * 30)  # 5, 7, 9, 3 count
    assert valid_frame_lengths(units, 9).tolist() == [9, 4]  # 0 counts as valid here, -100 does not


def _logprobs(values):
    return torch.log_softmax(torch.tensor(values, dtype=torch.float32), dim=-1)


def test_greedy_units_refuse_eos_until_allowed():
    scores = _logprobs([0.0, 1.0, 5.0, 0.5])  # EOS = 2 is the most likely
    greedy = UnitSampling(greedy=True)
    assert greedy.choose(scores, [], eos_id=2, allow_eos=False) == 1
    assert greedy.choose(scores, [], eos_id=2, allow_eos=True) == 2


def test_sampled_units_never_eos_before_allowed():
    g = torch.Generator().manual_seed(0)
    scores = _logprobs([1.0, 1.0, 2.0, 1.0])
    draws = [UnitSampling().choose(scores, [], eos_id=2, allow_eos=False, generator=g) for _ in range(200)]
    # nucleus (top_p 0.8) over EOS 0.47, 0 0.18, 1 0.18: unit 3 falls outside; EOS draws are redone
    assert 2 not in draws and set(draws) == {0, 1}


def test_repetition_sends_the_draw_to_the_full_distribution():
    g = torch.Generator().manual_seed(0)
    scores = _logprobs([8.0, 0.0, 0.0, 0.0, 0.0])
    nucleus_only = UnitSampling(top_k=1)
    fresh = {nucleus_only.choose(scores, [1, 2, 3], eos_id=4, allow_eos=True, generator=g) for _ in range(300)}
    assert fresh == {0}  # top-1 nucleus, unit 0 not recently used
    # unit 0 is in the window: each draw goes back to the full distribution, where 0 still dominates
    repeated = [nucleus_only.choose(scores, [0] * 10, eos_id=4, allow_eos=True, generator=g) for _ in range(3000)]
    assert 0 in repeated and set(repeated) - {0}


def test_nucleus_keeps_the_top_mass():
    g = torch.Generator().manual_seed(1)
    scores = torch.log(torch.tensor([0.5, 0.35, 0.1, 0.05]))
    draws = {UnitSampling(top_p=0.8, top_k=25, window=1).choose(scores, [], eos_id=9, allow_eos=True, generator=g)
             for _ in range(500)}
    assert draws == {0, 1}  # 0.5 < 0.8 so the second joins; 0.85 >= 0.8 stops before the third


def test_text_sampling():
    logits = torch.tensor([1.0, 3.0, 2.0, 0.0])
    assert TextSampling(greedy=True).choose(logits) == 1
    assert TextSampling(temperature=0.0).greedy
    g = torch.Generator().manual_seed(0)
    assert {TextSampling(temperature=1.0, top_k=2).choose(logits, g) for _ in range(300)} == {1, 2}
    assert {TextSampling(temperature=1.0, top_k=0, top_p=0.5).choose(logits, g) for _ in range(100)} == {1}
    assert len({TextSampling(temperature=5.0, top_k=0).choose(logits, g) for _ in range(300)}) == 4
    with pytest.raises(ValueError):
        TextSampling(top_p=1.5)


def test_lift_is_a_strided_split():
    from backend.models.exomni.configuration import SpeechGeneratorConfig, qwen3_config
    from backend.models.exomni.speech_generator import SpeechGenerator

    decoder = qwen3_config(dict(vocab_size=10, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=1, head_dim=4))
    gen = SpeechGenerator(SpeechGeneratorConfig(llm_hidden_size=6, unit_vocab_size=5, decoder=decoder, dim=8,
                                                tqgf_dim_head=4, tqgf_heads=2))
    hidden = torch.randn(1, 3, 6)
    with torch.no_grad():
        flat = gen.input_proj(hidden)  # [1, 3, 32]
        lifted = gen.lift(hidden)  # [1, 12, 8]
    for n in range(3):
        for j in range(4):
            assert torch.equal(lifted[0, 4 * n + j], flat[0, n, j::4])


def test_repetition_penalty_as_transformers_applies_it():
    from backend.models.exomni.sampling import TextSampling

    logits = torch.tensor([2.0, -1.0, 1.9, 0.5])
    plain = TextSampling(greedy=True)
    penalised = TextSampling(greedy=True, repetition_penalty=1.5)
    assert plain.choose(logits, previous=[0]) == 0
    assert penalised.choose(logits, previous=[0]) == 2  # 2.0 / 1.5 falls below 1.9
    scores = penalised.penalise(logits, [0, 1, 1])
    assert torch.allclose(scores, torch.tensor([2.0 / 1.5, -1.5, 1.9, 0.5]))
    assert torch.equal(penalised.penalise(logits, []), logits)
    from transformers import RepetitionPenaltyLogitsProcessor

    reference = RepetitionPenaltyLogitsProcessor(1.5)(torch.tensor([[0, 1, 1]]), logits[None].clone())[0]
    assert torch.allclose(scores, reference)
